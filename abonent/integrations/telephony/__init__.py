"""Telephony: call events from Asterisk (AMI) and cloud PBXs (a signed webhook), screen-pop over SSE, call history,
recordings and operator KPIs (docs/telephony.md)."""
