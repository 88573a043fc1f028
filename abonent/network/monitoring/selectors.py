"""Reads of the monitoring rows for the NAS list and card, the pool list, the dashboard and ``/metrics``: a few
small queries each, never a count over the sessions table."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Sum

from abonent.core import clock
from abonent.staff.permissions import scope_to_branches

from ..models import CoaRequest, CoaStatus, IpPool, Nas
from .health import PoolFill, nas_is_silent, pool_fill
from .models import NasSample, pool_size

DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class NasState:
    """A NAS as monitoring sees it: sessions online and newest accounting at the last sample, and silence."""

    nas: Nas
    open_sessions: int
    sampled_at: dt.datetime | None
    last_accounting_at: dt.datetime | None
    silent: bool


def nas_states(now: dt.datetime | None = None) -> list[NasState]:
    """Every NAS with its health, by name: one query."""
    now = now or clock.now()
    states = []
    for nas in Nas.objects.select_related("health").order_by("name"):
        health = getattr(nas, "health", None)
        states.append(
            NasState(
                nas=nas,
                open_sessions=health.open_sessions if health else 0,
                sampled_at=health.sampled_at if health else None,
                last_accounting_at=health.last_accounting_at if health else None,
                silent=nas_is_silent(nas, now),
            )
        )
    return states


def nas_state(nas: Nas, now: dt.datetime | None = None) -> NasState:
    health = getattr(nas, "health", None)
    return NasState(
        nas=nas,
        open_sessions=health.open_sessions if health else 0,
        sampled_at=health.sampled_at if health else None,
        last_accounting_at=health.last_accounting_at if health else None,
        silent=nas_is_silent(nas, now or clock.now()),
    )


@dataclass(frozen=True)
class PoolState:
    pool: IpPool
    fill: PoolFill
    sampled_at: dt.datetime | None


def pool_states() -> list[PoolState]:
    """Every pool with its use at the last sample, fullest first: one query."""
    states = []
    for pool in IpPool.objects.select_related("usage").order_by("name"):
        usage = getattr(pool, "usage", None)
        states.append(
            PoolState(
                pool=pool,
                fill=pool_fill(usage.used if usage else 0, pool_size(pool.network)),
                sampled_at=usage.sampled_at if usage else None,
            )
        )
    return sorted(states, key=lambda s: -s.fill.percent)


def coa_failures_by_nas(since: dt.datetime) -> dict[int, int]:
    """CoA/Disconnect requests refused or unanswered since ``since``, per NAS id (the index on ``finished_at``)."""
    rows = (
        CoaRequest.objects.filter(finished_at__gte=since, status__in=[CoaStatus.NAKED, CoaStatus.FAILED])
        .values("nas_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["nas_id"]: row["n"] for row in rows}


def coa_pending_by_nas() -> dict[int, int]:
    """Requests waiting to be sent or retried, per NAS id (the partial index of waiting requests)."""
    rows = CoaRequest.objects.filter(status=CoaStatus.PENDING).values("nas_id").annotate(n=Count("id")).order_by()
    return {row["nas_id"]: row["n"] for row in rows}


def recent_coa_failures(nas: Nas, *, visible_to=None, limit: int = 10) -> list[CoaRequest]:
    """The NAS's newest refused or unanswered requests. ``visible_to`` (a staff user): only those of subscribers in
    the user's branches, as the NAS card's sessions (``network.selectors.open_sessions``)."""
    requests = CoaRequest.objects.filter(nas=nas, status__in=[CoaStatus.NAKED, CoaStatus.FAILED])
    if visible_to is not None:
        requests = scope_to_branches(requests, visible_to, "subscriber__branch")
    newest = requests.exclude(finished_at__isnull=True).select_related("subscriber").order_by("-finished_at")
    return list(newest[:limit])


# --- series for the charts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """Points of a chart: Unix seconds and, per name, a value or None (a gap) at each."""

    x: list[int]
    values: dict[str, list]

    def as_json(self) -> dict:
        return {"x": self.x, **self.values}


def _bucket_start(moment: dt.datetime, seconds: int) -> int:
    epoch = int(moment.timestamp())
    return epoch - epoch % seconds


def nas_series(nas: Nas, *, since: dt.datetime, bucket_seconds: int = 0) -> Series:
    """Sessions online and traffic (bit/s, both directions) of one NAS since ``since``, a point per sample or,
    with ``bucket_seconds``, per bucket (sessions: the bucket's highest; traffic: its average rate)."""
    rows = (
        NasSample.objects.filter(nas=nas, taken_at__gte=since)
        .order_by("taken_at")
        .values_list("taken_at", "open_sessions", "input_octets", "output_octets", "interval_seconds")
    )
    buckets: dict[int, list] = {}
    for taken_at, sessions, octets_in, octets_out, seconds in rows:
        key = _bucket_start(taken_at, bucket_seconds) if bucket_seconds else int(taken_at.timestamp())
        bucket = buckets.setdefault(key, [0, 0, 0, 0])
        bucket[0] = max(bucket[0], sessions)
        bucket[1] += octets_in
        bucket[2] += octets_out
        bucket[3] += seconds
    x = sorted(buckets)
    rate = lambda octets, seconds: round(octets * 8 / seconds) if seconds else None  # noqa: E731
    return Series(
        x=x,
        values={
            "sessions": [buckets[k][0] for k in x],
            "download": [rate(buckets[k][2], buckets[k][3]) for k in x],
            "upload": [rate(buckets[k][1], buckets[k][3]) for k in x],
        },
    )


def online_series(*, since: dt.datetime, bucket_seconds: int = 0) -> Series:
    """Sessions online over the whole network since ``since``: the samples of a run summed (they share its
    ``taken_at``), per run or per bucket's highest. One aggregate over the samples' time index."""
    rows = (
        NasSample.objects.filter(taken_at__gte=since)
        .values("taken_at")
        .annotate(total=Sum("open_sessions"))
        .order_by("taken_at")
        .values_list("taken_at", "total")
    )
    buckets: dict[int, int] = {}
    for taken_at, total in rows:
        key = _bucket_start(taken_at, bucket_seconds) if bucket_seconds else int(taken_at.timestamp())
        buckets[key] = max(buckets.get(key, 0), int(total or 0))
    x = sorted(buckets)
    return Series(x=x, values={"sessions": [buckets[k] for k in x]})


def interval_totals(nas: Nas, *, since: dt.datetime) -> dict[str, int]:
    """Traffic, authentications and CoA failures of one NAS since ``since``, summed over its samples."""
    totals = NasSample.objects.filter(nas=nas, taken_at__gte=since).aggregate(
        input_octets=Sum("input_octets"),
        output_octets=Sum("output_octets"),
        accepts=Sum("accepts"),
        rejects=Sum("rejects"),
        coa_failures=Sum("coa_failures"),
    )
    return {key: int(value or 0) for key, value in totals.items()}
