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


def period_parts(sub, start: dt.date, end: dt.date, history) -> list[tuple[int, dt.date, dt.date]]:
    """The segments ``[(plan, from, until)]`` of the period ``[start, end)`` the subscription was served in:
    from its start, through the day it ended (that day's traffic was used), each on the plan then in force."""
    served_from = max(start, sub.started_on)
    served_until = min(end, sub.ended_on + dt.timedelta(days=1)) if sub.ended_on else end
    if served_from >= served_until:
        return []
    if not history:  # most subscriptions: one plan all along
        return [(sub.plan_id, served_from, served_until)]
    return segments(
        served_from, served_until, plan_at(history, served_from, sub.plan_id), [(d, to) for d, _f, to in history]
    )


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
