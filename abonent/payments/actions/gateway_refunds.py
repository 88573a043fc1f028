"""Refunds sent back through the gateway that took the payment: asked with our key ``refund:<id>`` (a repeat is
the same refund at the provider), finished when the gateway says done or refused (refused: the amount goes back
onto the balance), asked about again by the worker while pending."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.utils.translation import gettext as _

from .. import gateways
from ..gateways import GatewayError, GatewayRefund
from ..models import (
    Refund,
    RefundStatus,
)
from .refunds import do_finish_refund

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
    try:
        if refund.external_id:
            found = gateway.get_refund(refund.external_id)
        else:
            found = gateway.refund(
                payment_id=refund.payment.external_id,
                amount=refund.amount,
                key=f"refund:{refund.pk}",
                description=refund.reason,
            )
    except GatewayError as exc:
        if exc.retryable:
            logger.warning("refund %s: to be asked again: %s", refund.pk, exc)
            return refund
        return do_finish_refund(refund, succeeded=False, failure=f"{exc.code}: {exc}")
    return apply_gateway_refund(refund, found)


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
