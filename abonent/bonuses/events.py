"""Bonuses listen to payments: a payment credited earns points, a payment cancelled or refunded takes them back.
Accrual and cancellation run after the payment's commit (``core.events``); a refund's take-back runs inside the
refund's transaction (``payments.signals.refund_recorded``), so points of refunded money are never spendable. All
are idempotent; the hourly sweep (``tasks.accrue_missed``) catches what an event did not bring (the terminal fast
path emits none; a crash between commit and handler; a take-back that failed)."""

import logging

from django.db import transaction
from django.dispatch import receiver

from abonent.core.events import on
from abonent.payments.signals import refund_recorded

logger = logging.getLogger(__name__)


@on("payments.payment_received")
def accrue_for_payment(*, event: str, payment_id: int, **_payload) -> None:
    from .actions import do_accrue_for_payment

    do_accrue_for_payment(payment_id)


@on("payments.payment_cancelled")
def take_back_for_payment(*, event: str, payment_id: int, **_payload) -> None:
    from .actions import do_take_back_for_payment

    do_take_back_for_payment(payment_id)


@receiver(refund_recorded, dispatch_uid="bonuses.refund_recorded")
def take_back_for_refund(sender, *, payment_id: int, **_kwargs) -> None:
    """In its own savepoint: a take-back that fails (a lock deadline on the referrer's account) must not fail the
    refund; the sweep takes the points back within the hour."""
    from .actions import do_take_back_for_payment

    try:
        with transaction.atomic():
            do_take_back_for_payment(payment_id)
    except Exception:
        logger.exception("bonuses: take-back failed for refunded payment %s", payment_id)
