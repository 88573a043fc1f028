"""Traffic of a period, counted in a plan's direction: the one rule the FUP speed cut (``selectors``) and the
billing side's traffic rating (``abonent.billing.rating``) both apply, so the subscriber is cut and charged
on the same number.

``UsageDay`` keeps the two counters as the NAS reports them: ``input_octets`` from the subscriber (upload),
``output_octets`` to the subscriber (download). A period's usage is the sum of its local days ``[start,
end)``; "greater" is the greater of the period's two totals, not a sum of daily maxima.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import OperationalError, connection

from abonent.catalog.models import TrafficDirection


def counted_bytes(direction: str, input_octets: int, output_octets: int) -> int:
    """The bytes that count against the included volume, of a period's totals."""
    if direction == TrafficDirection.DOWNLOAD:
        return output_octets
    if direction == TrafficDirection.UPLOAD:
        return input_octets
    if direction == TrafficDirection.GREATER:
        return max(input_octets, output_octets)
    return input_octets + output_octets


def period_usage(subscriber_id: int, start: dt.date, end: dt.date) -> tuple[int, int]:
    """``(input, output)`` totals of one subscriber's days ``[start, end)``."""
    return span_usage([(0, subscriber_id, start, end)]).get(0, (0, 0))


def span_usage(spans: Iterable[tuple[object, int, dt.date, dt.date]]) -> dict[object, tuple[int, int]]:
    """``{key: (input, output)}`` summed over each span's days ``[start, end)`` of its subscriber, in one
    aggregate query however many spans (a chunk of the rating run has tens of thousands). PostgreSQL: summed per
    subscriber and bucket of days (``_postgresql``); SQLite: the spans joined to the days in a temporary table.
    Keys without usage are absent. Sums are exact integers on both engines (days saturated at the bigint's
    limit: see ``_sqlite``)."""
    spans = list(spans)
    if not spans:
        return {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            return _postgresql(cursor, spans)
        keys = {n: span[0] for n, span in enumerate(spans)}
        return {keys[n]: (int(i), int(o)) for n, i, o in _sqlite(cursor, spans)}


def _postgresql(cursor, spans) -> dict[object, tuple[int, int]]:
    """One scan of the subscribers' days between the earliest start and the latest end, summed per subscriber
    and *bucket*: the days between two consecutive span boundaries (``width_bucket`` over the sorted distinct
    starts and ends: a handful per chunk, the month starts and the odd plan change). A span is the sum of its
    buckets. Twice as fast as joining the spans to the days (hash or nested loop) at a chunk of 10,000."""
    bounds = sorted({span[2] for span in spans} | {span[3] for span in spans})
    cursor.execute(
        "SELECT subscriber_id, width_bucket(day, %s::date[]), SUM(input_octets), SUM(output_octets) "
        "FROM network_usageday WHERE subscriber_id = ANY(%s) AND day >= %s AND day < %s GROUP BY 1, 2",
        [bounds, sorted({span[1] for span in spans}), bounds[0], bounds[-1]],
    )
    buckets = {(subscriber, bucket): (int(i), int(o)) for subscriber, bucket, i, o in cursor.fetchall()}
    # Bucket k holds the days [bounds[k - 1], bounds[k]): a span [bounds[a - 1], bounds[b - 1]) is buckets a…b − 1.
    position = {day: n + 1 for n, day in enumerate(bounds)}
    result: dict[object, tuple[int, int]] = {}
    for key, subscriber, start, end in spans:
        total_in = total_out = 0
        found = False
        for bucket in range(position[start], position[end]):
            pair = buckets.get((subscriber, bucket))
            if pair is not None:
                found = True
                total_in += pair[0]
                total_out += pair[1]
        if found:
            result[key] = (total_in, total_out)
    return result


def _sqlite(cursor, spans) -> list[tuple[int, int, int]]:
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS network_usage_span (n integer, subscriber_id integer, d0 text, d1 text)"
    )
    cursor.execute("DELETE FROM network_usage_span")
    cursor.executemany(
        "INSERT INTO network_usage_span (n, subscriber_id, d0, d1) VALUES (%s, %s, %s, %s)",
        [(n, span[1], span[2].isoformat(), span[3].isoformat()) for n, span in enumerate(spans)],
    )
    join = (
        "FROM network_usage_span s JOIN network_usageday u "
        "ON u.subscriber_id = s.subscriber_id AND u.day >= s.d0 AND u.day < s.d1"
    )
    try:
        cursor.execute(f"SELECT s.n, SUM(u.input_octets), SUM(u.output_octets) {join} GROUP BY s.n")
        rows = cursor.fetchall()
    except OperationalError:
        # SQLite's sum() of integers raises past 2^63 (days saturated at the bigint's limit, issue 12): the rows
        # summed here instead, as Python integers.
        cursor.execute(f"SELECT s.n, u.input_octets, u.output_octets {join}")
        totals: dict[int, list[int]] = {}
        for n, i, o in cursor.fetchall():
            pair = totals.setdefault(n, [0, 0])
            pair[0] += i
            pair[1] += o
        rows = [(n, i, o) for n, (i, o) in totals.items()]
    cursor.execute("DELETE FROM network_usage_span")
    return rows
