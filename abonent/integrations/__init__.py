"""Integrations with systems outside the ISP: telephony (PBX call events, screen-pop), CRM webhooks."""
