"""Reads of bonus points: a subscriber's balance, history, the points expiring soon (FIFO), the rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Sum

from abonent.core.money import quantize

from .models import ACCRUALS, BonusEntry, BonusRules, ReferralCode

ZERO = Decimal("0.00")


def rules() -> BonusRules:
    found = BonusRules.objects.filter(pk=1).first()
    return found if found is not None else BonusRules(pk=1)


def balance_of(subscriber_id: int) -> Decimal:
    # Quantized: SQLite sums decimals as floats.
    return quantize(BonusEntry.objects.filter(subscriber_id=subscriber_id).aggregate(s=Sum("points"))["s"] or ZERO)


def history_of(subscriber_id: int, *, limit: int = 50):
    return BonusEntry.objects.filter(subscriber_id=subscriber_id).order_by("-created_at", "-pk")[:limit]


def unexpired_by(subscriber_id: int, day: dt.date) -> Decimal:
    """Points of accruals expiring on or before ``day`` that are still unused, first in first out: every debit
    (spent, expired, taken back) used up the earliest-expiring points first, so what is left of the accruals due
    by ``day`` is their sum less all debits, never below zero. (Accruals expire in the order they were earned
    while the expiry rule stays the same; a rule changed shortens or lengthens only what is earned afterwards.)"""
    entries = BonusEntry.objects.filter(subscriber_id=subscriber_id)
    due = entries.filter(kind__in=ACCRUALS, expires_on__lte=day).aggregate(s=Sum("points"))["s"] or ZERO
    debits = -(entries.exclude(kind__in=ACCRUALS).aggregate(s=Sum("points"))["s"] or ZERO)
    return max(ZERO, quantize(due - debits))


def expiring_soon(subscriber_id: int, today: dt.date, *, days: int = 30) -> list[tuple[dt.date, Decimal]]:
    """``(day, points)`` for each of the next ``days`` days on which unused points expire."""
    days_due = (
        BonusEntry.objects.filter(
            subscriber_id=subscriber_id, kind__in=ACCRUALS, expires_on__gte=today,
            expires_on__lte=today + dt.timedelta(days=days),
        )
        .values_list("expires_on", flat=True)
        .distinct()
        .order_by("expires_on")
    )  # fmt: skip
    result, counted = [], unexpired_by(subscriber_id, today - dt.timedelta(days=1))
    for day in days_due:
        upto = unexpired_by(subscriber_id, day)
        if upto - counted > 0:
            result.append((day, upto - counted))
        counted = upto
    return result


def referral_code_of(subscriber_id: int) -> str | None:
    return ReferralCode.objects.filter(subscriber_id=subscriber_id).values_list("code", flat=True).first()
