"""Integrations with the ISP's other systems: telephony and CRM webhooks."""
