"""Refunds sent back through the gateway that took the payment: asked with our key ``refund:<id>`` (a repeat is
the same refund at the provider), finished when the gateway says done or refused (refused: the amount goes back
onto the balance), asked about again by the worker while pending."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock

from .. import gateways
from ..gateways import GatewayError, GatewayRefund
from ..models import (
    EventOutcome,
    Payment,
    Refund,
    RefundStatus,
)
from .refunds import _refund, do_finish_refund

logger = logging.getLogger(__name__)


def start_gateway_refund(refund_id: int) -> None:
    """The refund starter a gateway registers (``channels.register_gateway``): called after the refund's commit.
    It must never raise into the caller's request: whatever fails, the worker asks again."""
    try:
        do_push_refund(Refund.objects.get(pk=refund_id))
    except Exception:
        logger.exception("refund %s: the gateway could not be asked now", refund_id)


def do_push_refund(refund: Refund) -> Refund:
    """Ask the gateway to refund (our key ``refund:<id>``: a repeat is the same refund) or, once it has an id,
    how the refund went; finish it when the gateway says done or refused."""
    refund = Refund.objects.select_related("payment").get(pk=refund.pk)
    if refund.status != RefundStatus.PENDING:
        return refund
    gateway = gateways.get(refund.payment.channel)
    if not refund.external_id and clock.now() - refund.created_at > key_window():
        # The provider may have forgotten our key: the same POST now could be a second refund. Look it up instead.
        return _look_up(refund, gateway)
    try:
        if refund.external_id:
            found = gateway.get_refund(refund.external_id)
        else:
            found = gateway.refund(
                payment_id=refund.payment.external_id,
                amount=refund.amount,
                key=gateways.our_key("refund", refund.pk),
                description=refund.reason,
            )
    except GatewayError as exc:
        if exc.retryable:
            logger.warning("refund %s: to be asked again: %s", refund.pk, exc)
            return refund
        return do_finish_refund(refund, succeeded=False, failure=f"{exc.code}: {exc}")
    return apply_gateway_refund(refund, found)


def key_window() -> dt.timedelta:
    """How long a repeated POST with our key is safe (YooKassa keeps a key 24 hours; the autopay setting's margin)."""
    return dt.timedelta(hours=settings.ABONENT_AUTOPAY_KEY_HOURS)


def _look_up(refund: Refund, gateway) -> Refund:
    """A refund whose POST was never answered, past the key's life: found in the payment's refunds at the provider
    (one of the same amount no refund of ours claims), or left pending for staff with a note, never sent again."""
    lister = getattr(gateway, "list_refunds", None)
    try:
        found = lister(refund.payment.external_id) if lister is not None else None
    except GatewayError as exc:
        logger.warning("refund %s: the gateway's refunds could not be listed: %s", refund.pk, exc)
        return refund
    known = set(
        Refund.objects.filter(payment_id=refund.payment_id)
        .exclude(external_id="")
        .values_list("external_id", flat=True)
    )
    for item in found or []:
        if (
            item.id not in known
            and item.amount == refund.amount
            and item.status in ("succeeded", "pending", "canceled")
        ):
            return apply_gateway_refund(refund, item)
    note = _("The gateway never answered and does not show this refund: check its cabinet, then settle it by hand.")
    if refund.failure != note:
        Refund.objects.filter(pk=refund.pk).update(failure=note[:500])
        logger.error("refund %s: outcome unknown past the key's life; left for staff", refund.pk)
    return refund


def do_record_gateway_refund(payment: Payment, found: GatewayRefund) -> tuple[str, str]:
    """A refund the provider made that we did not start (a manager refunded in the provider's cabinet), for one of
    our payments: recorded as our refund (off the balance, through the channel's account) once per provider refund
    id. When the balance cannot take it (spent on fees) or it exceeds what is left of the payment, nothing is
    overdrawn: it is logged and audited for staff, who settle it by hand. Returns (outcome, detail)."""
    if found.status != "succeeded":
        return EventOutcome.IGNORED, f"a refund we did not start: {found.status}"
    key = f"gateway:{payment.channel}:{found.id}"[:200]
    reason = _("Refunded at the gateway (%(id)s)") % {"id": found.id}
    try:
        with transaction.atomic():
            payment = Payment.objects.select_for_update().get(pk=payment.pk)
            if (
                Refund.objects.filter(key=key).exists()
                or Refund.objects.filter(payment=payment, external_id=found.id).exists()
            ):
                return EventOutcome.HANDLED, "recorded before"
            refund = _refund(payment, amount=found.amount, reason=reason, acting_user=None, key=key)
            Refund.objects.filter(pk=refund.pk).update(
                status=RefundStatus.SUCCEEDED, external_id=found.id[:100], finished_at=clock.now()
            )
    except ValidationError as exc:
        detail = _("A refund of %(amount)s made at the gateway could not be recorded (%(why)s): settle it by hand.") % {
            "amount": found.amount,
            "why": "; ".join(exc.messages),
        }
        logger.error("payment %s: %s", payment.pk, detail)
        audit.record(
            actor=None,
            action="payments.gateway_refund_unrecorded",
            obj=payment,
            subscriber_id=payment.subscriber_id,
            after={"refund": found.id, "amount": found.amount},
            reason=detail[:500],
        )
        return EventOutcome.FAILED, detail
    return EventOutcome.HANDLED, _("refund made at the gateway recorded")


def apply_gateway_refund(refund: Refund, found: GatewayRefund) -> Refund:
    if found.status == "succeeded":
        return do_finish_refund(refund, succeeded=True, external_id=found.id)
    if found.status == "canceled":
        return do_finish_refund(
            refund, succeeded=False, external_id=found.id, failure=found.decline_code or _("Refused by the gateway")
        )
    Refund.objects.filter(pk=refund.pk, external_id="").update(external_id=found.id[:100])
    refund.external_id = refund.external_id or found.id[:100]
    return refund


def push_pending_refunds(limit: int = 100) -> int:
    """The worker's sweep of refunds a gateway has not finished yet. Returns how many were asked about."""
    from ..channels import online_refund

    channels = [code for code in gateways.registered() if online_refund(code) is not None]
    refunds = list(
        Refund.objects.filter(status=RefundStatus.PENDING, payment__channel__in=channels).order_by("created_at")[:limit]
    )
    for refund in refunds:
        try:
            do_push_refund(refund)
        except DatabaseError:
            logger.exception("refund %s could not be finished", refund.pk)
    return len(refunds)
