"""Pure calculations of payments (no ORM): when an autopay debit is due, how much it takes, when it is retried."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import ROUND_CEILING, Decimal

from abonent.billing.calculations import add_months
from abonent.core.money import ZERO, quantize


def debit_day_in(month_of: dt.date, debit_day: int) -> dt.date:
    """The debit date in ``month_of``'s month: ``debit_day``, or the month's last day when it is shorter."""
    return add_months(month_of.replace(day=1), 0, anchor_day=debit_day)


def cycle_due_on(today: dt.date, debit_day: int) -> dt.date:
    """The debit date of the cycle ``today`` belongs to: this month's debit day."""
    return debit_day_in(today, debit_day)


def next_cycle_due_on(due_on: dt.date, debit_day: int) -> dt.date:
    return add_months(due_on, 1, anchor_day=debit_day)


def cover_amount(fees_due: Decimal, available: Decimal, *, minimum: Decimal, maximum: Decimal | None) -> Decimal:
    """What to debit so ``available`` (balance + credit limit) covers ``fees_due``: the shortfall rounded up to whole
    roubles, at least ``minimum``, at most ``maximum``; zero when nothing is short."""
    short = fees_due - available
    if short <= 0:
        return ZERO
    amount = max(short.to_integral_value(rounding=ROUND_CEILING), minimum)
    if maximum is not None:
        amount = min(amount, maximum)
    return quantize(amount)


def retry_on(due_on: dt.date, number: int, retry_days: Iterable[int]) -> dt.date | None:
    """The date of the try after try ``number`` (1 = the debit day) of the cycle due on ``due_on``: the
    ``number``-th retry offset after the debit day, or None when the tries are used up."""
    days = list(retry_days)
    if number < 1 or number > len(days):
        return None
    return due_on + dt.timedelta(days=days[number - 1])


def low_balance_debit_day(
    available: Decimal, charges: Iterable[tuple[dt.date, Decimal]], today: dt.date, *, lead_days: int
) -> dt.date | None:
    """When to debit so the balance never falls short: ``lead_days`` before the first upcoming charge that
    ``available`` will not cover (never before today), today when the balance is already short; None when every
    charge in ``charges`` is covered."""
    if available < 0:
        return today
    running = ZERO
    for day, amount in sorted(charges):
        running += amount
        if running > available:
            return max(today, day - dt.timedelta(days=lead_days))
    return None
