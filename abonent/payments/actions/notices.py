"""A gateway's notices: authenticated by their source, stored once per ``(provider, event_id)`` before they are
handled, and acted on only through the provider's own answer about the object, re-read with our credentials
(YooKassa's notices are unsigned: the content of a notice is a hint of what to look at, never a fact)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _
from prometheus_client import Counter

from abonent.core import clock

from .. import gateways
from ..gateways import GatewayError, GatewayPayment, Notification, NotificationRejected
from ..models import (
    Checkout,
    EventOutcome,
    Payment,
    ProviderEvent,
    Refund,
    RefundStatus,
)
from .checkouts import ForeignPayment, apply_gateway_payment, mark_of
from .gateway_refunds import apply_gateway_refund, do_record_gateway_refund

logger = logging.getLogger(__name__)

REFUSED = Counter(
    "abonent_gateway_notices_refused_total", "Requests to a gateway's notice address refused", ["provider", "status"]
)


BODY_MAX = 20_000  # characters of a notice kept
# A stored notice still "received" this long after its handler took it has lost its handler (a crash, the
# database gone mid-way): a redelivery takes it over. Longer than any handling can last (a gateway call's
# deadlines plus the database's).
HANDLER_LOST_AFTER = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class NoticeAnswer:
    status: int
    body: str
    event: ProviderEvent | None


def do_handle_notification(provider: str, *, body: bytes, headers: dict, remote_addr: str) -> NoticeAnswer:
    """A provider's notice: authenticated by its source, stored once, then acted on through the provider's own
    answer about the object (re-read with our credentials), never through the notice's content.

    Answers: the provider's acknowledgement (200) when handled, repeated or irrelevant; 403/400 for a refused
    request (stored as rejected); 503 when it could not be handled now (the gateway or the database failed), so
    that the provider delivers it again. A repeat of a notice that failed is handled again.
    """
    gateway = gateways.get(provider)
    text = body.decode("utf-8", "replace").replace("\x00", "")[:BODY_MAX]
    addr = (remote_addr or "")[:45]
    try:
        notice = gateway.parse_notification(body, headers, remote_addr)
    except NotificationRejected as exc:
        REFUSED.labels(provider=provider, status=str(exc.status)).inc()
        event = None
        if _room_for_rejected(addr):
            event = _store_rejected(provider, text, addr, str(exc))
            logger.warning("%s notice refused from %s: %s", provider, addr, exc)
        return NoticeAnswer(exc.status, "", event)
    event, created = _store(provider, notice, text, addr)
    if not created and not _claim(event):
        # A repeat of a notice handled (or being handled right now): acknowledged, nothing done.
        status, answer = gateway.acknowledge(notice)
        return NoticeAnswer(status, answer, event)
    try:
        outcome, checkout, detail = _handle(gateway, provider, notice)
    except GatewayError as exc:
        _finish_event(event, EventOutcome.FAILED, None, str(exc))
        logger.warning("%s notice %s not handled now: %s", provider, notice.event_id, exc)
        return NoticeAnswer(503, "", event)
    except DatabaseError:
        # The database gone: the event may stay "received"; a redelivery takes it over after HANDLER_LOST_AFTER.
        with contextlib.suppress(DatabaseError):
            _finish_event(event, EventOutcome.FAILED, None, "database error")
        raise
    except Exception as exc:
        # A bug or an answer we cannot use (an amount the intake refuses): kept as failed for staff, and answered
        # 503 so that the provider delivers it again rather than being told it was done.
        logger.exception("%s notice %s could not be handled", provider, notice.event_id)
        _finish_event(event, EventOutcome.FAILED, None, f"{exc.__class__.__name__}: {exc}")
        return NoticeAnswer(503, "", event)
    _finish_event(event, outcome, checkout, detail)
    status, answer = gateway.acknowledge(notice)
    return NoticeAnswer(status, answer, event)


def _store(provider: str, notice: Notification, text: str, addr: str) -> tuple[ProviderEvent, bool]:
    try:
        with transaction.atomic():
            return (
                ProviderEvent.objects.create(
                    provider=provider,
                    event_id=notice.event_id,
                    event=notice.event,
                    object_id=notice.object_id,
                    body=text,
                    remote_addr=addr,
                    received_at=clock.now(),
                    claimed_at=clock.now(),
                ),
                True,
            )
    except IntegrityError:
        return ProviderEvent.objects.get(provider=provider, event_id=notice.event_id), False


def _claim(event: ProviderEvent) -> bool:
    """Take a stored notice over for another try: one that failed, or one whose handler was lost. One UPDATE,
    so that of concurrent redeliveries only one takes it."""
    now = clock.now()
    lost = Q(outcome=EventOutcome.RECEIVED, claimed_at__lt=now - HANDLER_LOST_AFTER)
    return bool(
        ProviderEvent.objects.filter(Q(outcome=EventOutcome.FAILED) | lost, pk=event.pk).update(
            outcome=EventOutcome.RECEIVED, claimed_at=now, attempts=F("attempts") + 1
        )
    )


def _room_for_rejected(addr: str) -> bool:
    """Whether a refused request may still be kept as a row: at most ``ABONENT_GATEWAY_REJECTED_PER_MINUTE`` per
    address and ``ABONENT_GATEWAY_REJECTED_TOTAL_PER_MINUTE`` in all in the last minute. The rest are only counted
    (``abonent_gateway_notices_refused_total``): a stranger POSTing as fast as they can writes a few rows a
    minute, not one per request, and cannot bury the real notices (nor fill the log: it is written per row kept)."""
    since = clock.now() - dt.timedelta(minutes=1)
    recent = ProviderEvent.objects.filter(outcome=EventOutcome.REJECTED, received_at__gte=since)
    total = settings.ABONENT_GATEWAY_REJECTED_TOTAL_PER_MINUTE
    if recent[:total].count() >= total:
        return False
    per_address = settings.ABONENT_GATEWAY_REJECTED_PER_MINUTE
    return recent.filter(remote_addr=addr)[:per_address].count() < per_address


def _store_rejected(provider: str, text: str, addr: str, reason: str) -> ProviderEvent:
    now = clock.now()
    return ProviderEvent.objects.create(
        provider=provider,
        event_id=f"rejected:{uuid.uuid4().hex}",
        body=text[:2000],
        remote_addr=addr,
        received_at=now,
        handled_at=now,
        outcome=EventOutcome.REJECTED,
        error=reason[:500],
    )


def _finish_event(event: ProviderEvent, outcome: str, checkout: Checkout | None, detail: str) -> None:
    ProviderEvent.objects.filter(pk=event.pk).update(
        outcome=outcome, checkout=checkout, error=(detail or "")[:500], handled_at=clock.now()
    )
    event.outcome, event.checkout, event.error = outcome, checkout, (detail or "")[:500]


def _handle(gateway, provider: str, notice: Notification) -> tuple[str, Checkout | None, str]:
    claimed = str((notice.raw.get("object") or {}).get("status") or "")
    if notice.event.startswith("payment."):
        try:
            found = gateway.get_payment(notice.object_id)
        except GatewayError as exc:
            if exc.code == "not_found":
                return EventOutcome.REJECTED, None, _("The gateway knows no such payment.")
            raise
        said = "" if claimed == found.status else f" (the notice said {claimed!r})"
        checkout = _checkout_of(provider, found)
        if checkout is None:
            return EventOutcome.IGNORED, None, f"not a payment of ours: {found.status}{said}"
        try:
            checkout = apply_gateway_payment(checkout, found)
        except ForeignPayment as exc:
            return EventOutcome.REJECTED, checkout, str(exc)
        return EventOutcome.HANDLED, checkout, f"{found.status}{said}"
    if notice.event.startswith("refund."):
        try:
            found = gateway.get_refund(notice.object_id)
        except GatewayError as exc:
            if exc.code == "not_found":
                return EventOutcome.REJECTED, None, _("The gateway knows no such refund.")
            raise
        refund = Refund.objects.filter(payment__channel=provider, external_id=found.id).first()
        if refund is None and found.payment_id:
            # Ours whose POST was never answered (its id unknown to us): the pending one of that amount.
            refund = (
                Refund.objects.filter(
                    payment__channel=provider,
                    payment__external_id=found.payment_id,
                    status=RefundStatus.PENDING,
                    external_id="",
                    amount=found.amount,
                )
                .order_by("pk")
                .first()
            )
        if refund is None:
            payment = Payment.objects.filter(channel=provider, external_id=found.payment_id).first()
            if payment is None or not found.payment_id:
                return EventOutcome.IGNORED, None, f"not a refund of ours: {found.status}"
            # One of our payments refunded in the provider's cabinet: the money left; so must the balance.
            outcome, detail = do_record_gateway_refund(payment, found)
            return outcome, None, detail
        apply_gateway_refund(refund, found)
        return EventOutcome.HANDLED, None, found.status
    return EventOutcome.IGNORED, None, ""


def _checkout_of(provider: str, found: GatewayPayment) -> Checkout | None:
    checkout = Checkout.objects.filter(provider=provider, provider_payment_id=found.id).first()
    if checkout is not None:
        return checkout
    mark = str(found.metadata.get("abonent") or "")
    prefix = mark_of(0)[:-1]
    if mark.startswith(prefix) and mark[len(prefix) :].isdigit():
        # Our create call timed out before we learnt the id: the provider's metadata names the checkout.
        return Checkout.objects.filter(
            pk=int(mark[len(prefix) :]), provider=provider, provider_payment_id__in=("", found.id)
        ).first()
    return None
