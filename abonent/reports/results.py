"""The heavy reports' results: computed by the worker, kept per set of filters, shown with the time computed.

A page asks for a result (``outcome``); a fresh one (younger than the report's ``max_age``) is shown as it is. A
missing or stale one is asked of the worker (``reports.compute_report``), once however many pages ask at once
(``requested_at`` is claimed by one conditional UPDATE), and the page shows the stale one meanwhile, saying so.

Every new set of filters is a new result and a new computation, so they are bounded: a user has at most
``PENDING_PER_USER`` computations waiting (``PENDING_TOTAL`` for everyone); past that a page is refused a new one
and says why, and nothing is kept or queued. A task whose result was computed after it was asked for (a duplicate)
does nothing. Results are pruned daily (``reports.prune_results``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q

from abonent.core import clock

from .models import ReportResult
from .pages import Report, ReportQuery, get_report
from .replica import reading_db

# A page asks the worker again when its request is older than this (a worker that was down, a lost task).
REQUEST_AGAIN = dt.timedelta(minutes=2)
# Computations waiting at once, per user and in all; a request older than PENDING_FOR no longer counts (a worker that
# was down, a lost task), so a refusal never outlives it.
PENDING_PER_USER = 5
PENDING_TOTAL = 50
PENDING_FOR = dt.timedelta(minutes=10)
# A result not computed again for this long is deleted; one asked for and never computed, after a day.
KEEP_RESULTS = dt.timedelta(days=7)


@dataclass(frozen=True)
class Outcome:
    """What a page shows: the rows, when the worker computed them (``None`` for a report computed live), and
    whether a newer result is on its way."""

    rows: list[dict]
    computed_at: dt.datetime | None = None
    pending: bool = False
    # Too many computations are waiting (``PENDING_PER_USER``/``PENDING_TOTAL``): none was asked for this one.
    refused: bool = False


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


def outcome(report: Report, query: ReportQuery, *, user=None) -> Outcome:
    """The rows the page shows for ``query``: computed now for a light report, the worker's for a heavy one (asked
    for on behalf of ``user``, who counts towards ``PENDING_PER_USER``)."""
    if not report.in_worker:
        return Outcome(report.rows(query, using=reading_db()))
    key, now = result_key(query), clock.now()
    result = ReportResult.objects.filter(slug=report.slug, key=key).first()
    fresh = result is not None and result.computed_at is not None and now - result.computed_at <= report.max_age
    refused = False if fresh else not _request(report, query, key, now, user)
    if result is None or result.computed_at is None:
        return Outcome([], None, not refused, refused)
    return Outcome(decode_rows(result.rows), result.computed_at, not fresh and not refused, refused)


def _pending(now: dt.datetime):
    return ReportResult.objects.filter(requested_at__gte=now - PENDING_FOR).filter(
        Q(computed_at__isnull=True) | Q(computed_at__lt=F("requested_at"))
    )


def _request(report: Report, query: ReportQuery, key: str, now: dt.datetime, user) -> bool:
    """Ask the worker for the result of ``key`` unless it was asked for lately (then the one request serves every
    page). False when it is refused: the user, or everyone, has too many computations waiting."""
    from .tasks import compute_report

    with transaction.atomic():
        if user is not None and user.pk is not None:
            # One user's requests one at a time, so that two pages at once cannot both pass the limit.
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        existing = ReportResult.objects.select_for_update().filter(slug=report.slug, key=key).first()
        if existing is not None and existing.requested_at is not None and existing.requested_at >= now - REQUEST_AGAIN:
            return True
        others = _pending(now).exclude(slug=report.slug, key=key)
        if user is not None and user.pk is not None and others.filter(requested_by=user).count() >= PENDING_PER_USER:
            return False
        if others.count() >= PENDING_TOTAL:
            return False
        result = existing or ReportResult.objects.get_or_create(slug=report.slug, key=key)[0]
        claimed = (
            ReportResult.objects.filter(pk=result.pk)
            .filter(Q(requested_at__isnull=True) | Q(requested_at__lt=now - REQUEST_AGAIN))
            .update(requested_at=now, requested_by=user if user is not None and user.pk is not None else None)
        )
        if claimed:
            transaction.on_commit(partial(compute_report.enqueue, slug=report.slug, params=query.as_params()))
    return True


def do_prune_report_results(now: dt.datetime | None = None) -> int:
    """Delete the results nobody has had computed for ``KEEP_RESULTS``, and those asked for a day ago and never
    computed (a lost task, a refused filter). Returns how many."""
    now = now or clock.now()
    stale = Q(computed_at__lt=now - KEEP_RESULTS) & (
        Q(requested_at__isnull=True) | Q(requested_at__lt=now - KEEP_RESULTS)
    )
    never = Q(computed_at__isnull=True) & (
        Q(requested_at__isnull=True) | Q(requested_at__lt=now - dt.timedelta(days=1))
    )
    deleted, _by_model = ReportResult.objects.filter(stale | never).delete()
    return deleted


def do_compute_report(slug: str, params: dict) -> ReportResult:
    """Compute a heavy report for ``params`` (read from the replica when there is one) and keep the result."""
    report, query = get_report(slug), ReportQuery.from_params(params)
    kept = ReportResult.objects.filter(slug=slug, key=result_key(query)).first()
    if kept is not None and kept.requested_at and kept.computed_at and kept.computed_at >= kept.requested_at:
        return kept  # a task queued twice for one request (``REQUEST_AGAIN`` while the worker was busy)
    started = time.monotonic()
    rows = report.rows(query, using=reading_db())
    duration_ms = int((time.monotonic() - started) * 1000)
    result, _created = ReportResult.objects.update_or_create(
        slug=slug,
        key=result_key(query),
        defaults={"rows": encode_rows(rows), "computed_at": clock.now(), "duration_ms": duration_ms},
    )
    return result
