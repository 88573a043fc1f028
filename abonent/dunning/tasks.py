"""Periodic jobs of this app."""
