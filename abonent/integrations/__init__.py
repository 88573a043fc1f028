"""Integrations with the ISP's other systems: telephony (PBX call events, screen-pop) and CRM webhooks."""
