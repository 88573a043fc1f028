"""Bonuses listen to payments: a payment credited earns points, a payment cancelled takes them back. Both run after
the payment's commit (``core.events``) and are idempotent; the daily sweep (``tasks.accrue_missed``) catches what
an event did not bring (the terminal fast path emits none; a crash between commit and handler)."""

from abonent.core.events import on


@on("payments.payment_received")
def accrue_for_payment(*, event: str, payment_id: int, **_payload) -> None:
    from .actions import do_accrue_for_payment

    do_accrue_for_payment(payment_id)


@on("payments.payment_cancelled")
def take_back_for_payment(*, event: str, payment_id: int, **_payload) -> None:
    from .actions import do_take_back_for_payment

    do_take_back_for_payment(payment_id)
