"""What the portal's usage page shows: traffic per day of a month and per month of the last year (network's
``UsageDay``), time online per day (from the sessions), and the sessions themselves, newest first, a page at a
time by keyset (``before``: the last session of the previous page).

Days are the operator's days (``TIME_ZONE``), as ``UsageDay`` counts them. Traffic is named from the
subscriber's side: "download" is what the NAS sent to the subscriber (its output octets), "upload" what it
received (input octets). Sums are taken in Python over at most a year of daily rows: exact on both engines
(SQLite's ``sum()`` overflows on days near the bigint limit, see ``network.selectors.usage_between``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing.calculations import add_months
from abonent.core import clock
from abonent.network.models import TERMINATE_CAUSES, Session, SessionStatus, UsageDay
from abonent.network.panels import format_duration

MONTHS_SHOWN = 12
# The earliest month the portal shows: nothing of an ISP's billing is older, and it bounds absurd input.
EARLIEST_MONTH = dt.date(2000, 1, 1)
SESSIONS_PER_PAGE = 20
MAX_SESSIONS_PER_PAGE = 100
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits only: \d would take other scripts' digits too


def _month_error(message: str, code: str) -> ValidationError:
    return ValidationError({"month": ValidationError(message, code=code)})


def parse_month(text: str | None, today: dt.date) -> dt.date:
    """The first day of the month ``YYYY-MM``; empty means this month. A month that is not one, before
    ``EARLIEST_MONTH`` or after this month is a ``ValidationError`` on ``month``, with its code."""
    this_month = today.replace(day=1)
    if not text:
        return this_month
    match = _MONTH.fullmatch(text.strip()) if len(text) <= 20 else None
    if match is None or not 1 <= int(match[2]) <= 12:
        raise _month_error(_("Give the month as YYYY-MM, for example 2026-11."), "month_invalid")
    year, number = int(match[1]), int(match[2])
    if year < EARLIEST_MONTH.year:
        raise _month_error(_("There is no usage before 2000."), "month_too_early")
    month = dt.date(year, number, 1)
    if month > this_month:
        raise _month_error(_("This month has not come yet."), "month_in_future")
    return month


@dataclass(frozen=True)
class DayUsage:
    day: dt.date
    download_bytes: int
    upload_bytes: int
    online_seconds: int

    @property
    def online(self) -> str:
        return hours_minutes(self.online_seconds)


@dataclass(frozen=True)
class MonthUsage:
    month: dt.date  # its first day
    days: list[DayUsage]  # every day of the month, up to today for this month
    download_bytes: int
    upload_bytes: int
    online_seconds: int
    previous: dt.date | None  # the months to link to (None: nothing to go to)
    next: dt.date | None

    @property
    def online(self) -> str:
        return hours_minutes(self.online_seconds)


@dataclass(frozen=True)
class MonthTotal:
    month: dt.date
    download_bytes: int
    upload_bytes: int


def month_usage(subscriber_id: int, month: dt.date) -> MonthUsage:
    """Traffic and time online per day of ``month`` (two queries)."""
    now = clock.now()
    today = timezone.localdate(now)
    end = add_months(month, 1)
    last = min(end - dt.timedelta(days=1), today)
    traffic = {
        day: (out, inp)
        for day, inp, out in UsageDay.objects.filter(subscriber_id=subscriber_id, day__gte=month, day__lt=end)
        .values_list("day", "input_octets", "output_octets")
        .order_by("day")
    }
    online = online_seconds_by_day(subscriber_id, month, end, now)
    days = []
    day = month
    while day <= last:
        download, upload = traffic.get(day, (0, 0))
        days.append(DayUsage(day, download, upload, online.get(day, 0)))
        day += dt.timedelta(days=1)
    return MonthUsage(
        month=month,
        days=days,
        download_bytes=sum(d.download_bytes for d in days),
        upload_bytes=sum(d.upload_bytes for d in days),
        online_seconds=sum(d.online_seconds for d in days),
        previous=add_months(month, -1) if month > EARLIEST_MONTH else None,
        next=end if end <= today.replace(day=1) else None,
    )


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


def online_seconds_by_day(subscriber_id: int, start: dt.date, end: dt.date, now: dt.datetime) -> dict[dt.date, int]:
    """Seconds online per local day of ``[start, end)``: each session from its start to its stop (an open one to
    now), cut at midnights. Sessions that began before ``start`` and were still going count from ``start``."""
    lower, upper = _local_midnight(start), _local_midnight(end)
    sessions = (
        Session.objects.filter(subscriber_id=subscriber_id, started_at__lt=upper)
        .filter(Q(stopped_at__isnull=True) | Q(stopped_at__gt=lower))
        .values_list("started_at", "stopped_at")
    )
    # Two sessions at once (two devices) are online once: the intervals are merged before they are counted.
    intervals = sorted((max(b, lower), min(f or now, upper, now)) for b, f in sessions)
    merged: list[list[dt.datetime]] = []
    for begin, finish in intervals:
        if begin >= finish:
            continue
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], finish)
        else:
            merged.append([begin, finish])
    seconds: dict[dt.date, float] = {}
    for begin, finish in merged:
        while begin < finish:
            day = timezone.localdate(begin)
            piece_end = min(finish, _local_midnight(day + dt.timedelta(days=1)))
            seconds[day] = seconds.get(day, 0) + (piece_end - begin).total_seconds()
            begin = piece_end
    return {day: int(total) for day, total in seconds.items()}


def months_usage(subscriber_id: int, *, count: int = MONTHS_SHOWN) -> list[MonthTotal]:
    """Traffic per month for the last ``count`` months, this one included, oldest first (one query)."""
    this_month = timezone.localdate(clock.now()).replace(day=1)
    first = max(add_months(this_month, -(count - 1)), EARLIEST_MONTH)
    totals: dict[dt.date, list[int]] = {}
    month = first
    while month <= this_month:
        totals[month] = [0, 0]
        month = add_months(month, 1)
    rows = UsageDay.objects.filter(subscriber_id=subscriber_id, day__gte=first, day__lt=add_months(this_month, 1))
    for day, inp, out in rows.values_list("day", "input_octets", "output_octets"):
        total = totals[day.replace(day=1)]
        total[0] += out
        total[1] += inp
    return [MonthTotal(month, download, upload) for month, (download, upload) in totals.items()]


@dataclass(frozen=True)
class SessionLine:
    id: int
    started_at: dt.datetime
    stopped_at: dt.datetime | None
    online: bool
    duration_seconds: int
    ip_address: str
    mac: str
    download_bytes: int
    upload_bytes: int
    end_reason: str  # as the NAS named it (Acct-Terminate-Cause)
    end_reason_label: str

    @property
    def duration(self) -> str:
        return format_duration(self.duration_seconds)


@dataclass(frozen=True)
class SessionsPage:
    items: list[SessionLine]
    next_before: int | None  # pass as ``before`` for the next page; None on the last one


def sessions_page(subscriber_id: int, *, before: Session | None = None, limit: int = SESSIONS_PER_PAGE) -> SessionsPage:
    """The subscriber's sessions, newest first, after ``before`` (a session of theirs, already checked by the
    caller with ``access.own``). Keyset on (started_at, id): the (subscriber, -started_at) index serves it, and a
    page does not shift when a new session starts while the subscriber reads."""
    limit = max(1, min(limit, MAX_SESSIONS_PER_PAGE))
    rows = Session.objects.filter(subscriber_id=subscriber_id)
    if before is not None:
        rows = rows.filter(Q(started_at__lt=before.started_at) | Q(started_at=before.started_at, id__lt=before.pk))
    found = list(rows.order_by("-started_at", "-id")[: limit + 1])
    now = clock.now()
    items = [_line(s, now) for s in found[:limit]]
    return SessionsPage(items, items[-1].id if len(found) > limit else None)


def _line(session: Session, now: dt.datetime) -> SessionLine:
    online = session.status == SessionStatus.OPEN
    seconds = session.session_time
    if online:
        seconds = max(seconds, int((now - session.started_at).total_seconds()))
    elif session.stopped_at is not None and not seconds:
        seconds = int((session.stopped_at - session.started_at).total_seconds())
    cause = session.terminate_cause
    return SessionLine(
        id=session.pk,
        started_at=session.started_at,
        stopped_at=session.stopped_at,
        online=online,
        duration_seconds=max(seconds, 0),
        ip_address=session.framed_ip or "",
        mac=session.calling_station_id,
        download_bytes=session.output_octets,
        upload_bytes=session.input_octets,
        end_reason=cause,
        end_reason_label=str(TERMINATE_CAUSES.get(cause, cause)),
    )


def chart_data(month: MonthUsage, months: list[MonthTotal]) -> dict:
    """The two charts' series for ``usage.js`` (uPlot): x as Unix seconds of each day's or month's local start,
    traffic in bytes (the script picks the unit)."""

    def stamp(day: dt.date) -> int:
        return int(_local_midnight(day).timestamp())

    return {
        "days": {
            "x": [stamp(d.day) for d in month.days],
            "download": [d.download_bytes for d in month.days],
            "upload": [d.upload_bytes for d in month.days],
        },
        "months": {
            "x": [stamp(m.month) for m in months],
            "download": [m.download_bytes for m in months],
            "upload": [m.upload_bytes for m in months],
        },
    }


def hours_minutes(seconds: int) -> str:
    """``5400`` → ``1:30``: time online in a day."""
    hours, rest = divmod(max(int(seconds), 0), 3600)
    return f"{hours}:{rest // 60:02d}"
