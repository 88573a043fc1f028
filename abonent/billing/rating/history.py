"""A subscription's plans over a usage period, and the raw reads the rating run and the estimate share.

A plan change takes effect on the local day of its ``PLAN_CHANGED`` event (that day belongs to the new plan);
a period is cut into segments, one per plan in force, over the days the subscription was served.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from abonent.core import bulk
from abonent.core.money import quantize

from .common import segments


@dataclass(frozen=True, slots=True)
class Sub:
    """What rating needs of a subscription, read in one query per chunk."""

    id: int
    subscriber_id: int
    plan_id: int
    service_id: int
    anchor_day: int
    started_on: dt.date
    ended_on: dt.date | None


def period_parts(sub, start: dt.date, end: dt.date, history, rivals=()) -> list[tuple[int, dt.date, dt.date]]:
    """The segments ``[(plan, from, until)]`` of the period ``[start, end)`` the subscription was served in:
    from its start, through the day it ended (that day's traffic was used), each on the plan then in force.
    ``rivals``: the subscriber's other internet subscriptions; the days one of them owns (``owned_ranges``) are
    left out, so a day's traffic is counted by one subscription only."""
    served_from = max(start, sub.started_on)
    served_until = min(end, sub.ended_on + dt.timedelta(days=1)) if sub.ended_on else end
    if served_from >= served_until:
        return []
    if not history:  # most subscriptions: one plan all along
        parts = [(sub.plan_id, served_from, served_until)]
    else:
        parts = segments(
            served_from, served_until, plan_at(history, served_from, sub.plan_id), [(d, to) for d, _f, to in history]
        )
    if not rivals:
        return parts
    owned = owned_ranges(sub, rivals, served_from, served_until)
    return [(plan, max(a, x), min(b, y)) for plan, a, b in parts for x, y in owned if max(a, x) < min(b, y)]


def _served(sub, day: dt.date) -> bool:
    return sub.started_on <= day and (sub.ended_on is None or day <= sub.ended_on)


def _strength(sub, day: dt.date) -> tuple:
    # Live at the day's end first (a subscription ended that day hands the day over), then the newest.
    return (sub.ended_on is None or sub.ended_on > day, sub.started_on, sub.id)


def owned_ranges(sub, rivals, start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The days of ``[start, end)`` whose traffic ``sub`` counts, as ranges: a subscriber's traffic is one
    (``UsageDay``), so when several of their internet subscriptions are served on a day, it belongs to the one
    live at the day's end (the new one on the day of a move), else to the newest. Only a subscriber with more
    than one such subscription in the window comes here: a walk over the period's days is cheap."""
    ranges: list[list[dt.date]] = []
    day = start
    while day < end:
        mine = _strength(sub, day)
        if not any(_served(rival, day) and _strength(rival, day) > mine for rival in rivals):
            following = day + dt.timedelta(days=1)
            if ranges and ranges[-1][1] == day:
                ranges[-1][1] = following
            else:
                ranges.append([day, following])
        day += dt.timedelta(days=1)
    return [(a, b) for a, b in ranges]


def uncovered(start: dt.date, end: dt.date, rated: list[tuple[dt.date, dt.date]]) -> list[tuple[dt.date, dt.date]]:
    """The pieces of the period ``[start, end)`` to rate: the ratings within it (re-checked as they were cut), and
    the days no rating covers. After a move between a calendar and an anniversary plan the new anchor's periods
    overlap the ones rated on the old: a day already rated is never rated again (``rated`` are the
    subscription's rated periods ``(start, end)``)."""
    overlapping = sorted((a, b) for a, b in rated if a < end and b > start)
    if not overlapping or overlapping == [(start, end)]:
        return [(start, end)]
    pieces = [(a, b) for a, b in overlapping if a >= start and b <= end]
    day = start
    for a, b in overlapping:
        if a > day:
            pieces.append((day, min(a, end)))
        day = max(day, b)
    if day < end:
        pieces.append((day, end))
    return sorted(pieces)


def plan_at(history: list[tuple[dt.date, int, int]], day: dt.date, current: int) -> int:
    """The plan in force on ``day``: the last change's on or before it, else what the first later change
    changed from, else the subscription's plan now."""
    before = [to for d, _f, to in history if d <= day]
    if before:
        return before[-1]
    later = [f for d, f, _t in history if d > day and f is not None]
    return later[0] if later else current


def plan_changes(ids) -> dict[int, list[tuple[dt.date, int, int]]]:
    """``{subscription: [(local day, from plan, to plan)]}`` in order, of the subscriptions' plan changes."""
    result: dict[int, list[tuple[dt.date, int, int]]] = {}
    rows = select(
        "SELECT subscription_id, effective_at, from_plan_id, to_plan_id FROM billing_subscriptionevent "
        "WHERE {ids} AND kind = 'plan_changed' AND to_plan_id IS NOT NULL ORDER BY effective_at, id",
        list(ids),
        "subscription_id",
    )
    for sid, at, from_plan, to_plan in rows:
        if not isinstance(at, dt.datetime):  # SQLite: text, or a naive datetime, in UTC
            at = dt.datetime.fromisoformat(at)
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        result.setdefault(sid, []).append((timezone.localtime(at).date(), from_plan, to_plan))
    return result


def select(sql: str, ids: list[int], column: str, params: list | None = None) -> list[tuple]:
    """Rows of ``sql`` whose ``{ids}`` is ``column`` among ``ids``: an array bound on the server on PostgreSQL
    (Django's cursor quotes every element into the text in Python), a list of parameters on SQLite."""
    if not ids:
        return []
    with bulk.server_cursor() as cursor:
        if connection.vendor == "postgresql":
            # %b: the ids in binary, not each one formatted and checked for quoting as text.
            cursor.execute(sql.format(ids=f"{column} = ANY(%b::bigint[])"), [list(ids), *(params or [])])
        else:
            marks = ", ".join(["%s"] * len(ids))
            cursor.execute(sql.format(ids=f"{column} IN ({marks})"), [*ids, *(params or [])])
        return cursor.fetchall()


def as_money(value) -> Decimal:
    return value if isinstance(value, Decimal) else quantize(Decimal(str(value)))  # SQLite gives floats


def as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
