"""Outgoing webhooks to the ISP's CRM (signed, retried, logged) and API tokens per integration with scopes."""
