"""The heavy reports' results: computed by the worker, kept per set of filters, shown with the time computed.

A page asks for a result (``outcome``); a fresh one (younger than the report's ``max_age``) is shown as it is. A
missing or stale one is asked of the worker (``reports.compute_report``), once however many pages ask at once
(``requested_at`` is claimed by one conditional UPDATE), and the page shows the stale one meanwhile, saying so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.db import transaction
from django.db.models import Q

from abonent.core import clock

from .models import ReportResult
from .pages import Report, ReportQuery, get_report
from .replica import reading_db

# A page asks the worker again when its request is older than this (a worker that was down, a lost task).
REQUEST_AGAIN = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class Outcome:
    """What a page shows: the rows, when the worker computed them (``None`` for a report computed live), and
    whether a newer result is on its way."""

    rows: list[dict]
    computed_at: dt.datetime | None = None
    pending: bool = False


def _encode(value):
    if isinstance(value, Decimal):
        return {"n": str(value)}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    return value


def _decode(value):
    if isinstance(value, dict):
        if "n" in value:
            return Decimal(value["n"])
        if "d" in value:
            return dt.date.fromisoformat(value["d"])
    return value


def encode_rows(rows: list[dict]) -> list[dict]:
    return [{name: _encode(value) for name, value in row.items()} for row in rows]


def decode_rows(rows: list[dict]) -> list[dict]:
    return [{name: _decode(value) for name, value in row.items()} for row in rows]


# Part of every result's key: raised when the rows' shape changes (2: codes instead of translated labels), so that a
# result kept in the old shape is computed again rather than shown.
ROWS_VERSION = 2


def result_key(query: ReportQuery) -> str:
    return hashlib.sha256(f"{ROWS_VERSION}:{query.key()}".encode()).hexdigest()


def outcome(report: Report, query: ReportQuery) -> Outcome:
    """The rows the page shows for ``query``: computed now for a light report, the worker's for a heavy one."""
    if not report.in_worker:
        return Outcome(report.rows(query, using=reading_db()))
    key, now = result_key(query), clock.now()
    result = ReportResult.objects.filter(slug=report.slug, key=key).first()
    fresh = result is not None and result.computed_at is not None and now - result.computed_at <= report.max_age
    if not fresh:
        _request(report, query, key, now)
    if result is None or result.computed_at is None:
        return Outcome([], None, True)
    return Outcome(decode_rows(result.rows), result.computed_at, not fresh)


def _request(report: Report, query: ReportQuery, key: str, now: dt.datetime) -> None:
    from .tasks import compute_report

    with transaction.atomic():
        result, _created = ReportResult.objects.get_or_create(slug=report.slug, key=key)
        claimed = (
            ReportResult.objects.filter(pk=result.pk)
            .filter(Q(requested_at__isnull=True) | Q(requested_at__lt=now - REQUEST_AGAIN))
            .update(requested_at=now)
        )
        if claimed:
            transaction.on_commit(partial(compute_report.enqueue, slug=report.slug, params=query.as_params()))


def do_compute_report(slug: str, params: dict) -> ReportResult:
    """Compute a heavy report for ``params`` (read from the replica when there is one) and keep the result."""
    report, query = get_report(slug), ReportQuery.from_params(params)
    started = time.monotonic()
    rows = report.rows(query, using=reading_db())
    duration_ms = int((time.monotonic() - started) * 1000)
    result, _created = ReportResult.objects.update_or_create(
        slug=slug,
        key=result_key(query),
        defaults={"rows": encode_rows(rows), "computed_at": clock.now(), "duration_ms": duration_ms},
    )
    return result
