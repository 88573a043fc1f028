"""Helpers for tests that walk subscribers through time (used by tests/billing)."""

import datetime as dt
from decimal import Decimal

from abonent.core import clock

from .engine import RunResult, run_billing
from .models import Charge, ChargeKind, LedgerAccount


def balance(subscriber) -> Decimal:
    return LedgerAccount.objects.get(subscriber=subscriber).balance


def run_on(day: dt.date) -> RunResult:
    """The daily billing run as the worker would do it on ``day``."""
    from .actions import do_finish_due_freezes

    with clock.travel_to(day):
        do_finish_due_freezes()
        return run_billing(day)


def charged_for(subscription, start: dt.date, end: dt.date) -> Decimal:
    """What the subscription's fees, credits and reversals of fees net to for charges over ``[start, end)``, their
    discount lines (billing/pricing) included."""
    kinds = [
        ChargeKind.FEE,
        ChargeKind.PRORATION_CHARGE,
        ChargeKind.PRORATION_CREDIT,
        ChargeKind.REVERSAL,
        ChargeKind.DISCOUNT,
    ]
    charges = Charge.objects.filter(
        subscription=subscription, kind__in=kinds, period_start__lt=end, period_end__gt=start
    ).values_list("amount", flat=True)
    return sum(charges, Decimal("0.00"))
