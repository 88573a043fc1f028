"""Transports per channel behind one interface (``base.Transport``): e-mail over SMTP, SMS through SMS.ru or
SMSC, Telegram through the Bot API. ``transport_for(channel)`` picks the configured one.

A transport is built once per configuration and kept (its HTTP client keeps connections open between batches);
a change of the settings (tests, a reload) builds a new one.
"""

from __future__ import annotations

import threading

from django.conf import settings

from ..models import Channel
from .base import Transport

_lock = threading.Lock()
_cache: dict[tuple, Transport | None] = {}

_SETTINGS = {
    Channel.EMAIL: (
        "EMAIL_BACKEND",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_HOST_USER",
        "EMAIL_USE_TLS",
        "EMAIL_USE_SSL",
        "EMAIL_TIMEOUT",
        "ABONENT_NOTIFY_EMAIL_FROM",
        "ABONENT_PUBLIC_URL",
    ),
    Channel.SMS: (
        "ABONENT_SMS_PROVIDER",
        "ABONENT_SMS_SENDER",
        "ABONENT_SMSRU_URL",
        "ABONENT_SMSRU_API_ID",
        "ABONENT_SMSC_URL",
        "ABONENT_SMSC_LOGIN",
        "ABONENT_SMSC_PASSWORD",
        "ABONENT_SMSC_APIKEY",
        "ABONENT_NOTIFY_HTTP_DEADLINE",
        "ABONENT_NOTIFY_CONCURRENCY",
        "ABONENT_PHONE_REGION",
    ),
    Channel.TELEGRAM: (
        "ABONENT_TELEGRAM_API_URL",
        "ABONENT_TELEGRAM_BOT_TOKEN",
        "ABONENT_NOTIFY_HTTP_DEADLINE",
        "ABONENT_NOTIFY_CONCURRENCY",
    ),
}


def _build(channel: str) -> Transport | None:
    if channel == Channel.EMAIL:
        from .email import EmailTransport

        return EmailTransport()
    if channel == Channel.SMS:
        from .sms import sms_transport

        return sms_transport()
    if channel == Channel.TELEGRAM:
        from .telegram import TelegramTransport

        return TelegramTransport() if settings.ABONENT_TELEGRAM_BOT_TOKEN else None
    return None


def transport_for(channel: str) -> Transport | None:
    """The transport of ``channel`` as configured now, or ``None`` when the channel is not set up."""
    key = (channel, *(repr(getattr(settings, name, None)) for name in _SETTINGS.get(channel, ())))
    with _lock:
        if key not in _cache:
            _cache[key] = _build(channel)
        return _cache[key]
