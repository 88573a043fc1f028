"""Working time: when an SLA clock runs, and how far it has run. Pure: values in, values out, no ORM.

A ``Calendar`` is per-weekday opening hours in one time zone, minus holiday dates, or around the clock. The two
functions answer the SLA's two questions: ``add_working_time`` (a target of N working minutes from a start: when is
it due?) and ``working_time_between`` (how much working time has passed?). They are inverse:
``working_time_between(start, add_working_time(start, d)) == d`` for every start and d >= 0 (the property tests in
tests/helpdesk/test_working_time.py check it over random calendars).

Arithmetic happens in UTC: Python subtracts two aware datetimes of the same ``ZoneInfo`` as wall-clock times, which
is an hour off across a DST change. A day's window is built from the local date and hours, then converted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

UTC = dt.UTC
ZERO = dt.timedelta(0)
# A calendar with no working window in this many days in a row (every day a holiday for years) is a mistake, not a
# reason to loop forever. It bounds a gap, not the whole search: a target of years, or one moved by a pause of years
# (a ticket waiting for its subscriber since long ago), is still found.
SEARCH_DAYS = 3 * 366
# How far ahead a due moment is looked for at all: a target beyond it is as good as never (and looping day by day to
# the year 9999 would take seconds).
HORIZON_DAYS = 30 * 366


class CalendarError(ValueError):
    """The calendar has no working time in the searched range (no weekday open, or every day a holiday)."""


@dataclass(frozen=True)
class Calendar:
    """``hours[weekday] = (opens, closes)`` with 0 = Monday and ``opens < closes`` (a weekday missing is a day
    off); ``holidays`` are local dates off whatever the weekday; ``around_the_clock`` ignores both."""

    time_zone: str = "Europe/Moscow"
    hours: dict[int, tuple[dt.time, dt.time]] = field(default_factory=dict)
    holidays: frozenset[dt.date] = frozenset()
    around_the_clock: bool = False

    def __post_init__(self):
        for weekday, (opens, closes) in self.hours.items():
            if not 0 <= weekday <= 6 or not opens < closes:
                raise CalendarError(f"bad hours for weekday {weekday}: {opens}-{closes}")
        if not self.around_the_clock and not self.hours:
            raise CalendarError("a calendar needs working hours on at least one weekday")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The working window of local ``day`` in UTC, or None for a day off."""
        if day in self.holidays or day.weekday() not in self.hours:
            return None
        opens, closes = self.hours[day.weekday()]
        zone = self.zone
        window = (
            dt.datetime.combine(day, opens, tzinfo=zone).astimezone(UTC),
            dt.datetime.combine(day, closes, tzinfo=zone).astimezone(UTC),
        )
        # A window that starts in a spring-forward gap (02:30 on the day clocks jump from 02:00 to 03:00) may close
        # before it opens in UTC: no working time that day rather than a negative amount.
        return window if window[0] < window[1] else None


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is needed")
    return moment.astimezone(UTC)


def _windows_from(calendar: Calendar, start: dt.datetime, until: dt.datetime | None = None):
    """The working windows that end after ``start``, in order, each cut to begin no earlier than ``start``; up to
    the day of ``until`` when given, else until ``SEARCH_DAYS`` days in a row without one or ``HORIZON_DAYS``."""
    day = start.astimezone(calendar.zone).date() - dt.timedelta(days=1)  # a window may start the day before in UTC
    last = until.astimezone(calendar.zone).date() + dt.timedelta(days=1) if until is not None else None
    empty = 0
    for offset in range(HORIZON_DAYS if last is None else (last - day).days + 1):
        try:
            window = calendar.window(day + dt.timedelta(days=offset))
        except OverflowError:  # past the year 9999
            return
        if window is None or window[1] <= start:
            empty += 1
            if last is None and empty >= SEARCH_DAYS:
                return
            continue
        empty = 0
        yield max(window[0], start), window[1]


def add_working_time(calendar: Calendar, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
    """The moment ``duration`` of working time after ``start`` (in UTC). A zero duration is ``start`` itself; a
    duration that ends exactly at a window's close is that close, not the next day's opening."""
    start = _utc(start)
    if duration < ZERO:
        raise ValueError("duration must not be negative")
    if calendar.around_the_clock or duration == ZERO:
        return start + duration
    left = duration
    for opens, closes in _windows_from(calendar, start):
        if left <= closes - opens:
            return opens + left
        left -= closes - opens
    raise CalendarError(f"no working time for {SEARCH_DAYS} days in a row, or the target is beyond {HORIZON_DAYS} days")


def working_time_between(calendar: Calendar, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """The working time in ``[start, end)``; zero when ``end`` is not after ``start``."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return ZERO
    if calendar.around_the_clock:
        return end - start
    total = ZERO
    for opens, closes in _windows_from(calendar, start, until=end):
        if opens >= end:
            break
        total += min(closes, end) - opens
    return total


def is_working(calendar: Calendar, moment: dt.datetime) -> bool:
    """Whether ``moment`` falls inside a working window (closes excluded)."""
    if calendar.around_the_clock:
        return True
    local = _utc(moment).astimezone(calendar.zone)
    window = calendar.window(local.date())
    return window is not None and window[0] <= _utc(moment) < window[1]
