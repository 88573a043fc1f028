"""Abonent: billing and subscriber management for internet service providers."""

__version__ = "0.1.0"
