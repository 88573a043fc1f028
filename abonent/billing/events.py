"""Billing's reactions to other apps' events."""
