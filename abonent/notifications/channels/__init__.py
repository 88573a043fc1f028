"""Transports per channel behind one interface (``base.Transport``): e-mail over SMTP, SMS through SMS.ru or
SMSC, Telegram through the Bot API. ``transport_for(channel)`` picks the configured one."""
