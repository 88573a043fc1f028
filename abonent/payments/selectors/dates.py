"""Bounds on the dates and moments that console pages and API parameters take.

A date picker offers 9999-12-31 and a URL can say 0001-01-01: the day after the last one does not exist
(``OverflowError``), and on SQLite an aware moment at the edge of the calendar cannot be turned into UTC. Queries
clamp what they are given to ``[EARLIEST, LATEST]`` (no payment lies outside, so the answer is the same: empty);
reports of one day accept only a sane day (``is_sane_day``: from 2000 to a year ahead) and refuse the rest.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from abonent.core import clock

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
FIRST_SANE_DAY = dt.date(2000, 1, 1)
SANE_DAYS_AHEAD = 366


def clamp_day(day: dt.date) -> dt.date:
    return min(max(day, EARLIEST.date()), LATEST.date())


def clamp_moment(moment: dt.datetime) -> dt.datetime:
    """``moment`` (aware) within ``[EARLIEST, LATEST]``; compared without converting it, so nothing overflows."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.get_current_timezone())
    try:
        if moment < EARLIEST:
            return EARLIEST
        if moment > LATEST:
            return LATEST
    except OverflowError:
        return EARLIEST if moment.year < 2000 else LATEST
    return moment


def is_sane_day(day: dt.date) -> bool:
    """A day a report, a register row or a statement line may be of: from 2000 to a year after today."""
    return FIRST_SANE_DAY <= day <= clock.today() + dt.timedelta(days=SANE_DAYS_AHEAD)
