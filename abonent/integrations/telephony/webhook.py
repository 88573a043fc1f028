"""The generic signed webhook of cloud PBXs (Mango Office, Zadarma, Yandex Telephony… through a small adapter of
theirs or the PBX's own "custom webhook" setting): one JSON shape of ours, docs/telephony.md, "Webhook".

Signature: ``X-Abonent-Timestamp: <unix seconds>`` and ``X-Abonent-Signature: sha256=<hex>``, the HMAC-SHA256 of
``<timestamp>.<raw body>`` with ABONENT_TELEPHONY_WEBHOOK_SECRET. A wrong signature or a timestamp more than
``TOLERANCE`` away from our clock is refused with 403 and a log line (a replay of a captured request fails the
timestamp; a forged one the signature). Each ``(provider, call_id, event)`` is acted on once: the sender's retry
gets 200 ``duplicate``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from abonent.core import clock

from . import actions, pops
from .models import CallStatus, WebhookEvent

logger = logging.getLogger(__name__)

RESERVED_SOURCE = "ami"  # asterisk.SOURCE
TOLERANCE = 300  # seconds, either way
MAX_BODY = 16 * 1024
EVENTS = ("ringing", "answered", "ended", "recording")
# How far an event's ``at`` may be from our clock: a PBX retries a failed post for a day or so, clocks drift.
AT_PAST = -dt.timedelta(days=30)
AT_FUTURE = dt.timedelta(days=1)
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The value of ``X-Abonent-Signature`` (also what a sender computes)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _refuse(status: int, code: str, message: str, field: str | None = None) -> JsonResponse:
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


class BadField(Exception):
    def __init__(self, field: str, code: str = "invalid"):
        super().__init__(field)
        self.field, self.code = field, code


def _text(data: dict, name: str, *, required: bool = False, limit: int = 100) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise BadField(name)
    if required and not value.strip():
        raise BadField(name, "required")
    return value.strip()


def parse_event(data) -> dict:
    """The body as the fields we act on, or ``BadField`` naming the first bad one."""
    if not isinstance(data, dict):
        raise BadField("body")
    event = _text(data, "event", required=True, limit=20)
    if event not in EVENTS:
        raise BadField("event")
    provider = _text(data, "provider", required=True, limit=30)
    call_id = _text(data, "call_id", required=True)
    for name, value in (("provider", provider), ("call_id", call_id)):
        if not set(value) <= _ID_CHARS:
            raise BadField(name)
    if provider.lower() == RESERVED_SOURCE:
        # The AMI listener's calls: a cloud adapter must not change Asterisk's rows (their recordings, statuses).
        raise BadField("provider", "reserved")
    at_text = _text(data, "at", limit=40)
    try:
        at = parse_datetime(at_text) if at_text else None
    except ValueError:  # well-formed but impossible: month 13
        raise BadField("at") from None
    if at_text and (at is None or at.tzinfo is None):
        raise BadField("at")
    if at is not None and not (AT_PAST <= at - clock.now() <= AT_FUTURE):
        # Year 1 or 9999 is no call's time; it would also overflow when converted to UTC.
        raise BadField("at", "out_of_range")
    duration = data.get("duration")
    if duration is not None and (
        not isinstance(duration, int) or isinstance(duration, bool) or not 0 <= duration < 86400 * 7
    ):
        raise BadField("duration")
    status = _text(data, "status", limit=10)
    if status and status not in (CallStatus.ANSWERED, CallStatus.MISSED, CallStatus.BUSY, CallStatus.FAILED):
        raise BadField("status")
    extension = _text(data, "extension", limit=20)
    if event == "ringing" and not extension:
        raise BadField("extension", "required")
    return {
        "event": event,
        "provider": provider,
        "call_id": call_id,
        "at": at,
        "from": _text(data, "from", limit=40),
        "to": _text(data, "to", limit=40),
        "extension": extension,
        "duration": duration,
        "status": status,
        "recording_file": _text(data, "recording_file", limit=255),
    }


@csrf_exempt
@require_POST
def telephony_hook(request):
    secret = settings.ABONENT_TELEPHONY_WEBHOOK_SECRET
    if not secret:
        logger.warning("telephony webhook: refused, ABONENT_TELEPHONY_WEBHOOK_SECRET is not set")
        return _refuse(503, "not_configured", "The telephony webhook is not configured.")
    body = request.body
    if len(body) > MAX_BODY:
        return _refuse(413, "too_large", "The body is too large.")
    timestamp = request.headers.get("X-Abonent-Timestamp", "")
    signature = request.headers.get("X-Abonent-Signature", "")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        logger.warning("telephony webhook: wrong signature from %s", request.META.get("REMOTE_ADDR"))
        return _refuse(403, "bad_signature", "The signature does not match.")
    try:
        sent = int(timestamp)
    except ValueError:
        return _refuse(403, "bad_timestamp", "The timestamp is not a number.")
    # In integers: a signed absurd timestamp (10^400) does not overflow a float into a 500.
    if abs(int(time.time()) - sent) > TOLERANCE:
        logger.warning("telephony webhook: timestamp %.20s is too far off; refused", timestamp)
        return _refuse(403, "stale_timestamp", "The timestamp is too old or in the future.")
    try:
        fields = parse_event(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        logger.info("telephony webhook: body is not JSON")
        return _refuse(400, "malformed_body", "The body is not JSON.")
    except BadField as exc:
        logger.info("telephony webhook: field %s is %s", exc.field, exc.code)
        return _refuse(400, exc.code, f"Field {exc.field} is {exc.code}.", exc.field)
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                provider=fields["provider"], call_id=fields["call_id"], event=fields["event"], received_at=clock.now()
            )
            call = apply(fields)
    except IntegrityError:
        return JsonResponse({"status": "duplicate"})
    return JsonResponse({"status": "ok", "call": call.pk})


def apply(fields: dict):
    source, cid, at = fields["provider"], fields["call_id"], fields["at"] or clock.now()
    event = fields["event"]
    if event == "ringing":
        pops.send_pop(source, cid, extension=fields["extension"], caller_number=fields["from"])
        return actions.do_register_ring(
            source, cid, extension=fields["extension"], caller_number=fields["from"], called_number=fields["to"], at=at
        )
    if event == "answered":
        return actions.do_register_answer(source, cid, extension=fields["extension"], at=at)
    if event == "ended":
        call = actions.do_register_end(source, cid, at=at, status=fields["status"] or None)
        if fields["duration"] is not None or fields["status"]:
            call = actions.do_register_cdr(
                source,
                cid,
                status=fields["status"] or call.status,
                duration_seconds=fields["duration"],
                recording_file=fields["recording_file"],
            )
        return call
    return actions.do_register_recording(source, cid, recording_file=fields["recording_file"], at=at)
