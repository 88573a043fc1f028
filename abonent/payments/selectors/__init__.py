"""Reads of payments, one module per concern."""
