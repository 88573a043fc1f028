"""Reads of bonus points: a subscriber's balance and what of it can be spent, history, the lots (FIFO) and the points
expiring soon, the rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from abonent.core.money import quantize

from .models import ACCRUALS, BonusEntry, BonusRules, EntryKind, ReferralCode

ZERO = Decimal("0.00")


def rules() -> BonusRules:
    found = BonusRules.objects.filter(pk=1).first()
    return found if found is not None else BonusRules(pk=1)


def balance_of(subscriber_id: int) -> Decimal:
    # Quantized: SQLite sums decimals as floats.
    return quantize(BonusEntry.objects.filter(subscriber_id=subscriber_id).aggregate(s=Sum("points"))["s"] or ZERO)


def history_of(subscriber_id: int, *, limit: int = 50):
    return BonusEntry.objects.filter(subscriber_id=subscriber_id).order_by("-created_at", "-pk")[:limit]


@dataclass
class Lot:
    """What is left of one accrual: ``remaining`` unused, ``spent`` on services (``charged`` of it taken back as
    money when its payment was cancelled)."""

    pk: int
    expires_on: dt.date | None
    points: Decimal
    remaining: Decimal
    spent: Decimal = ZERO
    charged: Decimal = ZERO


_NEVER = dt.date.max


def _use(lots: list[Lot], points: Decimal, *, spend: bool) -> Decimal:
    """Use up ``points`` from ``lots`` in their order; what none of them had left."""
    for lot in lots:
        if points <= 0:
            break
        used = min(lot.remaining, points)
        lot.remaining -= used
        points -= used
        if spend:
            lot.spent += used
    return max(points, ZERO)


def spendable_of(subscriber_id: int, today: dt.date) -> Decimal:
    """Points that can be spent ``today``: the balance less points past their last day that the daily job has not
    expired yet."""
    return quantize(
        sum((lot.remaining for lot in lots_of(subscriber_id).values() if (lot.expires_on or _NEVER) >= today), ZERO)
    )


def unexpired_by(subscriber_id: int, day: dt.date) -> Decimal:
    """Points of accruals whose last day is ``day`` or earlier and that are still unused (FIFO, ``lots_of``)."""
    return quantize(
        sum((lot.remaining for lot in lots_of(subscriber_id).values() if (lot.expires_on or _NEVER) <= day), ZERO)
    )


def expiring_soon(subscriber_id: int, today: dt.date, *, days: int = 30) -> list[tuple[dt.date, Decimal]]:
    """``(day, points)`` for each of the next ``days`` days on which unused points expire."""
    last = today + dt.timedelta(days=days)
    by_day: dict[dt.date, Decimal] = {}
    for lot in lots_of(subscriber_id).values():
        if lot.remaining > 0 and lot.expires_on is not None and today <= lot.expires_on <= last:
            by_day[lot.expires_on] = by_day.get(lot.expires_on, ZERO) + lot.remaining
    return sorted(by_day.items())


def lots_of(subscriber_id: int) -> dict[int, Lot]:
    """Each accrual of the subscriber with what is left of it, replaying their entries in the order written: a
    spend uses up the lots still valid on its day, the earliest to expire first (never-expiring last); an expiry
    uses up the earliest-expiring lots (exactly those past their last day: it was written as their sum); a
    take-back uses up its own lot. The replay is deterministic over an append-only history, so it is the record of
    which lot each debit consumed."""
    lots: dict[int, Lot] = {}
    rows = (
        BonusEntry.objects.filter(subscriber_id=subscriber_id)
        .order_by("pk")
        .values_list("pk", "kind", "points", "expires_on", "lot_id", "charged_points", "created_at")
    )
    for pk, kind, points, expires_on, lot_id, charged, created_at in rows:
        points = quantize(points)
        if kind in ACCRUALS:
            lots[pk] = Lot(pk, expires_on, points, points)
            continue
        by_expiry = sorted((lot for lot in lots.values() if lot.remaining > 0),
                           key=lambda lot: (lot.expires_on or _NEVER, lot.pk))  # fmt: skip
        if kind == EntryKind.SPEND:
            day = timezone.localdate(created_at)
            valid = [lot for lot in by_expiry if lot.expires_on is None or lot.expires_on >= day]
            # Before lapsed points were refused (an older history), a spend could reach past the valid lots.
            _use(by_expiry, _use(valid, -points, spend=True), spend=True)
        elif kind == EntryKind.CLAWBACK and lot_id in lots:
            own = lots[lot_id]
            used = min(own.remaining, -points)
            own.remaining -= used
            own.charged += quantize(charged)
            _use(by_expiry, -points - used, spend=False)
        else:
            _use(by_expiry, -points, spend=False)
    return lots


def referral_code_of(subscriber_id: int) -> str | None:
    return ReferralCode.objects.filter(subscriber_id=subscriber_id).values_list("code", flat=True).first()
