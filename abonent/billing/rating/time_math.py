"""The arithmetic of time rating, pure: how a session is cut into parts and what a part costs.

A session is cut at every local midnight, which is also where every billing period starts and ends (periods
are whole days), so each part lies in one day and one period and is priced with that day's price. Two rules make
the total of a session independent of how it was cut and of when rating ran:

- free minutes count from the session's start: a part is billable only for its time past them;
- units are counted over the session's paid time, not per part: a part owes the units that *start* in it
  (``ceil(paid after / unit) - ceil(paid before / unit)``), so a minute begun before midnight is not charged
  twice, and the session pays for every started unit of its paid time exactly once.

The minimum charge is applied once per session, on the part where its paid time begins: that part costs at
least the minimum. Time taken from packages is not paid time (it counts no units and no minimum).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from abonent.core.money import quantize


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of a session within one local day: ``[start, end)``, ``[offset_start, offset_end)`` seconds
    from the session's start."""

    index: int
    start: dt.datetime
    end: dt.datetime
    day: dt.date
    offset_start: int
    offset_end: int
    ends_at_midnight: bool

    @property
    def seconds(self) -> int:
        return self.offset_end - self.offset_start


def _next_midnight(moment: dt.datetime) -> tuple[dt.date, dt.datetime]:
    day = timezone.localdate(moment)
    return day, timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def split(started_at: dt.datetime, ended_at: dt.datetime) -> list[Part]:
    """``[started_at, ended_at)`` cut at each local midnight (a DST day is simply 23 or 25 hours long)."""
    parts: list[Part] = []
    cursor = started_at
    while cursor < ended_at:
        day, midnight = _next_midnight(cursor)
        end = min(ended_at, midnight)
        parts.append(
            Part(
                index=len(parts),
                start=cursor,
                end=end,
                day=day,
                offset_start=int((cursor - started_at).total_seconds()),
                offset_end=int((end - started_at).total_seconds()),
                ends_at_midnight=end == midnight,
            )
        )
        cursor = end
    return parts


def billable_seconds(part: Part, free_seconds: int) -> int:
    """The part's time past the session's free minutes."""
    return max(0, part.offset_end - free_seconds) - max(0, part.offset_start - free_seconds)


def _started_units(seconds: int, unit_seconds: int) -> int:
    return -(-seconds // unit_seconds)


@dataclass(frozen=True, slots=True)
class Priced:
    package_seconds: int
    money_seconds: int
    units: int
    amount: Decimal


def price_part(
    billable: int,
    *,
    package_available: int,
    paid_before: int,
    unit_seconds: int,
    unit_price: Decimal,
    minimum: Decimal,
) -> Priced:
    """What a part with ``billable`` seconds owes: packages first, then the units of paid time that start in it.
    ``paid_before`` is the session's paid seconds in the parts before this one."""
    from_packages = min(billable, max(0, package_available))
    paid = billable - from_packages
    units = _started_units(paid_before + paid, unit_seconds) - _started_units(paid_before, unit_seconds)
    amount = quantize(unit_price * units)
    if paid_before == 0 and paid > 0 and amount < minimum:
        amount = quantize(minimum)
    return Priced(from_packages, paid, units, amount)
