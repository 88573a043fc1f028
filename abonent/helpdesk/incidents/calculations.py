"""The compensation's arithmetic: pure, no ORM."""

from __future__ import annotations

from decimal import Decimal

from abonent.core.money import quantize


def days_of_fee(period_fee: Decimal, period_days: int, days: int) -> Decimal:
    """``days`` days of a fee of ``period_fee`` for ``period_days`` days, rounded half-up to kopecks once."""
    if period_days <= 0 or days <= 0 or period_fee <= 0:
        return Decimal("0.00")
    return quantize(Decimal(period_fee) * days / period_days)
