"""A portal login code in the outbox: readable in ``Message.body`` only while its message waits to go out.

The worker (``delivery``) calls these: once a code's message is final (sent, failed, undeliverable, skipped,
cancelled) its digits are replaced by dots in the stored subject and text, and one still queued when the code's
lifetime has passed is cancelled (``expired``) instead of being sent: the code no longer works. Queueing stores
a code message that is final at once (skipped) already redacted. Staff screens showed the code as dots before;
now the table does too, so a backup or a reporting user cannot read a live code off a delivered message.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from .calculations import SECRET_CODE_EVENTS, shown_text
from .errors import MessageError
from .models import FINAL_STATUSES, Message, MessageStatus


def code_lifetime() -> dt.timedelta:
    """How long a login code works (the portal's ``ABONENT_PORTAL_CODE_SECONDS``): past it, its message is no use."""
    return dt.timedelta(seconds=getattr(settings, "ABONENT_PORTAL_CODE_SECONDS", 600))


def cancel_expired_codes(rows: list[Message], now: dt.datetime) -> list[Message]:
    """``rows`` (claimed, locked) without the login codes older than a code lives: those are cancelled, redacted."""
    cutoff = now - code_lifetime()
    expired = [row for row in rows if row.event in SECRET_CODE_EVENTS and row.created_at < cutoff]
    if not expired:
        return rows
    Message.objects.filter(pk__in=[row.pk for row in expired]).update(
        status=MessageStatus.CANCELLED, finished_at=now, next_attempt_at=now, error=MessageError.EXPIRED
    )
    redact_codes(expired)
    gone = {row.pk for row in expired}
    return [row for row in rows if row.pk not in gone]


def redact_codes(messages: list[Message]) -> int:
    """Replace a login code's digits by dots in the stored subject and text of those of ``messages`` that are
    final (see the module docstring); a message still queued (a retry) keeps its code to be sent. Returns how
    many were redacted. One UPDATE per code message: they are few."""
    redacted = 0
    for message in messages:
        if message.event not in SECRET_CODE_EVENTS:
            continue
        subject, body = shown_text(message.event, message.subject), shown_text(message.event, message.body)
        if (subject, body) == (message.subject, message.body):
            continue
        redacted += Message.objects.filter(pk=message.pk, status__in=FINAL_STATUSES).update(subject=subject, body=body)
    return redacted
