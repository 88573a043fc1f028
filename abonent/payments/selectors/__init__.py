"""Reads of payments, one module per concern (``gateway``: gateways, their notices, checkouts)."""
