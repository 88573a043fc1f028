"""Traffic by NAS and plan over a period, from the daily traffic (``UsageDay``) that rating charges by.

``UsageDay`` is per subscriber and day; it names neither a NAS nor a plan, so each subscriber who had traffic in
the period is attributed once, set-based in the database: to the NAS of their newest session started before the
period's end, and to the plan of their newest internet subscription started by then (a subscriber who moved NAS
or plan within the period counts wholly on the last one). Two statements, the same SQL on PostgreSQL and SQLite;
the figures are summed there and only the groups travel (days × NAS × plans rows).

With ``branch_ids`` only the subscribers of those branches count (a branch-limited user's view): their traffic,
their number, and so only the NAS and plans they were attributed to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connections
from django.utils import timezone

from abonent.billing.models import Subscription
from abonent.catalog.models import Plan, Service, ServiceKind
from abonent.subscribers.models import Subscriber

from ..models import Nas, Session, UsageDay

# The longest period one page sums: a year of days.
MAX_DAYS = 366


@dataclass
class TrafficRow:
    """One NAS and plan over the period (``nas_id`` / ``plan_id`` None: no session / no internet plan known)."""

    nas_id: int | None
    plan_id: int | None
    subscribers: int = 0
    input_octets: int = 0
    output_octets: int = 0
    nas_name: str = ""
    plan_name: str = ""

    @property
    def total_octets(self) -> int:
        return self.input_octets + self.output_octets


@dataclass
class TrafficReport:
    start: dt.date
    end: dt.date  # inclusive
    rows: list[TrafficRow]
    # Per day (the operator's dates) and NAS id: bytes sent to subscribers (download), for the chart.
    days: list[dt.date] = field(default_factory=list)
    download_by_nas: dict[int | None, list[int]] = field(default_factory=dict)
    nas_names: dict[int | None, str] = field(default_factory=dict)

    @property
    def input_octets(self) -> int:
        return sum(r.input_octets for r in self.rows)

    @property
    def output_octets(self) -> int:
        return sum(r.output_octets for r in self.rows)

    @property
    def subscribers(self) -> int:
        return sum(r.subscribers for r in self.rows)


def _sum(conn) -> str:
    # PostgreSQL's sum(bigint) is numeric and cannot overflow; SQLite's sum() of integers raises past 2^63 (days
    # saturated at the bigint's limit, issue 12), so there it is total(), a float (exact to 9 PB).
    return "TOTAL" if conn.vendor == "sqlite" else "SUM"


def _attribution_sql(branch_params: list[str] | None) -> str:
    session, subscription = Session._meta.db_table, Subscription._meta.db_table
    service, usage = Service._meta.db_table, UsageDay._meta.db_table
    in_branches = ""
    if branch_params is not None:
        placeholders = ", ".join(f"%({name})s" for name in branch_params) or "NULL"
        in_branches = (
            f"AND subscriber_id IN (SELECT id FROM {Subscriber._meta.db_table} WHERE branch_id IN ({placeholders}))"
        )
    # Correlated subqueries rather than LATERAL (SQLite has none): one index probe each per subscriber, on
    # (subscriber, -started_at) of sessions and the subscriber index of subscriptions.
    return f"""
        WITH who AS (
            SELECT u.subscriber_id,
                (SELECT s.nas_id FROM {session} s
                  WHERE s.subscriber_id = u.subscriber_id AND s.started_at < %(until)s
                  ORDER BY s.started_at DESC LIMIT 1) AS nas_id,
                (SELECT b.plan_id FROM {subscription} b JOIN {service} c ON c.id = b.service_id
                  WHERE b.subscriber_id = u.subscriber_id AND c.kind = %(internet)s AND b.started_on <= %(end)s
                  ORDER BY b.started_on DESC, b.id DESC LIMIT 1) AS plan_id
            FROM (SELECT DISTINCT subscriber_id FROM {usage}
                  WHERE day >= %(start)s AND day <= %(end)s {in_branches}) u
        )
    """


def usage_groups(
    start: dt.date, end: dt.date, *, branch_ids: set[int] | None = None, using: str = "default"
) -> tuple[list[tuple], list[tuple]]:
    """The attributed traffic of ``[start, end]`` (inclusive; the caller bounds it) as the database sums it:
    ``(day, nas_id, plan_id, input_octets, output_octets, subscribers)`` per day and group (``subscribers``: those
    with traffic that day), and ``(nas_id, plan_id, subscribers)`` over the period. Read through ``using`` (the
    reports read a replica); writes nothing."""
    conn = connections[using]
    until = timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min))
    ops = conn.ops
    params = {
        "start": ops.adapt_datefield_value(start),
        "end": ops.adapt_datefield_value(end),
        "until": ops.adapt_datetimefield_value(until),
        "internet": str(ServiceKind.INTERNET),
    }
    branch_params = None
    if branch_ids is not None:
        branch_params = [f"branch{n}" for n in range(len(branch_ids))]
        params.update(zip(branch_params, sorted(branch_ids), strict=True))
    attribution = _attribution_sql(branch_params)
    usage, total = UsageDay._meta.db_table, _sum(conn)
    with conn.cursor() as cursor:
        cursor.execute(
            attribution
            + f"""
            SELECT d.day, w.nas_id, w.plan_id, {total}(d.input_octets), {total}(d.output_octets), COUNT(*)
            FROM {usage} d JOIN who w ON w.subscriber_id = d.subscriber_id
            WHERE d.day >= %(start)s AND d.day <= %(end)s
            GROUP BY d.day, w.nas_id, w.plan_id
            """,
            params,
        )
        by_day = cursor.fetchall()
        cursor.execute(attribution + "SELECT nas_id, plan_id, COUNT(*) FROM who GROUP BY nas_id, plan_id", params)
        counts = cursor.fetchall()
    return by_day, counts


def traffic_report(start: dt.date, end: dt.date, *, branch_ids: set[int] | None = None) -> TrafficReport:
    """Traffic of ``[start, end]`` (inclusive, at most ``MAX_DAYS`` days) by NAS and plan, and per day by NAS;
    with ``branch_ids``, of those branches' subscribers only (``None``: every subscriber)."""
    if end < start:
        start, end = end, start
    # Within the calendar at both edges: the day after ``end`` and the earliest start must exist.
    end = min(end, dt.date.max - dt.timedelta(days=1))
    start = min(max(start, dt.date.fromordinal(max(1, end.toordinal() - (MAX_DAYS - 1)))), end)
    by_day, counts = usage_groups(start, end, branch_ids=branch_ids)
    rows: dict[tuple, TrafficRow] = {}
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    index = {day: n for n, day in enumerate(days)}
    download: dict[int | None, list[int]] = {}
    for day, nas_id, plan_id, octets_in, octets_out, _n in by_day:
        if isinstance(day, str):  # SQLite hands dates back as text from raw SQL
            day = dt.date.fromisoformat(day)
        row = rows.setdefault((nas_id, plan_id), TrafficRow(nas_id, plan_id))
        row.input_octets += int(octets_in or 0)
        row.output_octets += int(octets_out or 0)
        series = download.setdefault(nas_id, [0] * len(days))
        series[index[day]] += int(octets_out or 0)
    for nas_id, plan_id, n in counts:
        rows.setdefault((nas_id, plan_id), TrafficRow(nas_id, plan_id)).subscribers = n
    nas_names = dict(Nas.objects.filter(pk__in=[k[0] for k in rows if k[0]]).values_list("pk", "name"))
    plan_names = dict(Plan.objects.filter(pk__in=[k[1] for k in rows if k[1]]).values_list("pk", "name"))
    for row in rows.values():
        row.nas_name = nas_names.get(row.nas_id, "")
        row.plan_name = plan_names.get(row.plan_id, "")
    ordered = sorted(rows.values(), key=lambda r: (r.nas_name or "\uffff", -r.total_octets, r.plan_name))
    return TrafficReport(
        start=start,
        end=end,
        rows=ordered,
        days=days,
        download_by_nas=download,
        nas_names={nas_id: nas_names.get(nas_id, "") for nas_id in download},
    )
