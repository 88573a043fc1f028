"""Reads of payments, one module per concern.

- ``agents``: payment agents as the protocol endpoint sees them (cached briefly), and their daily reconciliation.
"""
