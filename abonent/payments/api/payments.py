"""Payments through the API: list, get, create (cash and manual channels), refund, cancel."""
