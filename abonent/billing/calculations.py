"""Pure money and period arithmetic of charging. No ORM, no clock: values in, values out.

Every function here has Hypothesis properties in tests/billing/test_calculations.py: the daily charges of a
month add up to the fee exactly; proration is the whole fee from the period's start and nothing from its end,
falls day by day, and equals the daily charges it replaces except on a half kopeck.
"""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from abonent.core.money import KOPECK

ZERO = Decimal("0.00")


def days_in_month(day: dt.date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int, *, anchor_day: int | None = None) -> dt.date:
    """``day`` moved by whole months, its day of month clamped to the month's end and returning to the
    anchor afterwards (31 Jan → 28 Feb → 31 Mar; Kill Bill #127)."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    wanted = anchor_day or day.day
    return dt.date(year, month + 1, min(wanted, calendar.monthrange(year, month + 1)[1]))


def _round(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


def daily_split(monthly_fee: Decimal, day: dt.date) -> Decimal:
    """The share of ``monthly_fee`` charged for ``day``, by cumulative rounding.

    Day k of an n-day month costs round(fee·k/n) − round(fee·(k−1)/n): each day is within a kopeck of
    fee/n, and the days of a month always add up to the fee exactly.
    """
    n = days_in_month(day)
    k = day.day
    return _round(monthly_fee * k / n) - _round(monthly_fee * (k - 1) / n)


def monthly_period(day: dt.date, *, anniversary_day: int | None = None) -> tuple[dt.date, dt.date]:
    """The monthly billing period ``[start, end)`` containing ``day``.

    Calendar periods run from the 1st; anniversary periods from the activation day of month, clamped.
    """
    if anniversary_day is None:
        start = month_start(day)
        return start, add_months(start, 1)
    start = add_months(day, 0, anchor_day=anniversary_day)
    if start > day:
        start = add_months(day, -1, anchor_day=anniversary_day)
    return start, add_months(start, 1, anchor_day=anniversary_day)


def prorate(
    fee: Decimal, *, period: tuple[dt.datetime | dt.date, dt.datetime | dt.date], used_from: dt.datetime | dt.date
) -> Decimal:
    """The part of ``fee`` for ``[used_from, period end)``, by days (dates) or seconds (datetimes).

    Clamped to ``[0, fee]``: a date outside the period never charges more than the fee or less than nothing.
    """
    start, end = period
    total = _length(start, end)
    used_from = min(max(used_from, start), end)
    remaining = _length(used_from, end)
    if total <= 0:
        return ZERO
    return _round(fee * remaining / total)


def _length(start, end) -> int:
    delta = end - start
    return delta.days if not isinstance(start, dt.datetime) else int(delta.total_seconds())


def proration_fraction(*, period, used_from) -> tuple[int, int]:
    """Numerator and denominator stored on a prorated charge, so the amount can be re-derived."""
    start, end = period
    used_from = min(max(used_from, start), end)
    return _length(used_from, end), _length(start, end)
