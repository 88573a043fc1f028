"""The monitoring sampler: every five minutes one ``NasSample`` per NAS, ``NasHealth`` and ``PoolUsage`` brought
up to date, old samples pruned (``network.tasks.sample_network``).

One pass over the open sessions (the partial index of open sessions) gives, per NAS, how many are online, the
newest accounting update and the traffic of the interval; one over their addresses gives the pools' use. Both are
the same on PostgreSQL and SQLite.

**Traffic is an estimate.** A session row holds cumulative counters and the growth of its last write
(``last_delta_in/out``), not a history, so the traffic of an interval is the last growth of each session updated
within it, scaled by how many interims its NAS sends in the interval (``max(1, interval / interim interval)``).
It is exact when the NAS's interim interval is at least the sampling interval (the default 300 s is) and the
interims are regular; the final piece of a session that stops is not counted. Billing never reads it: rating
counts from ``UsageDay``.

**One writer at a time.** Two runs started together (two workers, a manual run beside the scheduled one) and the
stale-session sweeper's ``note_stranded`` would each create the ``NasHealth`` and ``PoolUsage`` row of a NAS or
pool that has none yet, and the second insert would fail on the primary key. On PostgreSQL each takes a
transaction-scoped advisory lock first and reads the rows it updates only once it holds it, so the second run
waits for the first to commit and continues from what it wrote; SQLite lets one writer in at a time anyway
(IMMEDIATE transactions, settings).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
from bisect import bisect_right
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q, Sum

from abonent.core import clock

from ..models import CoaRequest, CoaStatus, IpPool, Nas, RadiusNode, Session, SessionStatus
from .models import NasHealth, NasSample, PoolUsage

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL = dt.timedelta(minutes=5)
# An interval longer than this (the worker was down) is not used to scale traffic: the figure would be a guess.
LONGEST_INTERVAL = dt.timedelta(hours=1)


_LOCK_KEY = int.from_bytes(hashlib.sha256(b"abonent.network.monitoring.sampler").digest()[:8], "big", signed=True)


def _serialise() -> None:
    """Wait, inside the caller's transaction, for any other writer of the monitoring rows to commit (module
    docstring)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


@dataclass(frozen=True)
class SampleRun:
    taken_at: dt.datetime
    samples: int
    pools: int
    pruned: int


def take_samples(now: dt.datetime | None = None) -> SampleRun:
    """Sample every NAS and every pool at ``now``; prune samples past ``ABONENT_NETWORK_SAMPLE_DAYS``. Safe to run
    twice: a second run at the same moment writes nothing new (one sample per NAS and moment)."""
    now = now or clock.now()
    samples = []
    with transaction.atomic():
        _serialise()
        nas_list = list(Nas.objects.all())
        health = {h.nas_id: h for h in NasHealth.objects.all()}
        previous = [h.sampled_at for h in health.values() if h.sampled_at is not None and h.sampled_at < now]
        since = max(previous) if previous else now - SAMPLE_INTERVAL
        interval = now - since
        sessions = _session_figures(since)
        failures = _coa_failures(since, now)
        counters = _radius_counters()
        for nas in nas_list:
            figures = sessions.get(nas.pk, _NO_SESSIONS)
            row = health.get(nas.pk) or NasHealth(nas=nas)
            accepts, rejects, row.auth_counters = _auth_growth(row.auth_counters, counters.get(nas.name))
            scale = _traffic_scale(interval, nas.interim_interval)
            samples.append(
                NasSample(
                    nas=nas,
                    taken_at=now,
                    interval_seconds=int(interval.total_seconds()),
                    open_sessions=figures.open,
                    input_octets=int(figures.delta_in * scale),
                    output_octets=int(figures.delta_out * scale),
                    accepts=accepts,
                    rejects=rejects,
                    coa_failures=failures.get(nas.pk, 0),
                )
            )
            row.sampled_at = now
            row.open_sessions = figures.open
            if figures.newest is not None and (
                row.last_accounting_at is None or figures.newest > row.last_accounting_at
            ):
                row.last_accounting_at = figures.newest
            row.save()
        NasSample.objects.bulk_create(samples, ignore_conflicts=True)
        pools = _sample_pools(now)
    pruned = prune_samples(now)
    return SampleRun(taken_at=now, samples=len(samples), pools=pools, pruned=pruned)


def prune_samples(now: dt.datetime | None = None) -> int:
    cutoff = (now or clock.now()) - dt.timedelta(days=settings.ABONENT_NETWORK_SAMPLE_DAYS)
    deleted, _by_model = NasSample.objects.filter(taken_at__lt=cutoff).delete()
    return deleted


@dataclass(frozen=True)
class _SessionFigures:
    open: int
    newest: dt.datetime | None
    delta_in: int
    delta_out: int


_NO_SESSIONS = _SessionFigures(0, None, 0, 0)


def _session_figures(since: dt.datetime) -> dict[int, _SessionFigures]:
    """Per NAS: the open sessions, their newest update, and the last growth of those updated since ``since``."""
    recent = Q(updated_at__gte=since)
    rows = (
        Session.objects.filter(status=SessionStatus.OPEN)
        .values("nas_id")
        .annotate(
            n=Count("id"),
            newest=Max("updated_at"),
            delta_in=Sum("last_delta_in", filter=recent),
            delta_out=Sum("last_delta_out", filter=recent),
        )
        .order_by()
    )
    return {
        row["nas_id"]: _SessionFigures(row["n"], row["newest"], int(row["delta_in"] or 0), int(row["delta_out"] or 0))
        for row in rows
    }


def _traffic_scale(interval: dt.timedelta, interim_interval: int) -> float:
    """How many interims of a session fall into ``interval``, at least one (module docstring)."""
    if interval > LONGEST_INTERVAL or interim_interval <= 0:
        return 1.0
    return max(1.0, interval.total_seconds() / interim_interval)


def _coa_failures(since: dt.datetime, until: dt.datetime) -> dict[int, int]:
    """CoA/Disconnect requests that ended refused or unanswered in ``[since, until)``, per NAS (the index on
    ``finished_at``)."""
    rows = (
        CoaRequest.objects.filter(
            finished_at__gte=since, finished_at__lt=until, status__in=[CoaStatus.NAKED, CoaStatus.FAILED]
        )
        .values("nas_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["nas_id"]: row["n"] for row in rows}


def _radius_counters() -> dict[str, dict[str, list]]:
    """NAS name → {RADIUS process: [its start, accepts, rejects]} from the processes' published counters."""
    result: dict[str, dict[str, list]] = {}
    for node in RadiusNode.objects.all():
        for nas_name, values in (node.counters or {}).items():
            accepts = sum(int(v) for k, v in values.items() if k.startswith("accepts"))
            rejects = sum(int(v) for k, v in values.items() if k.startswith("rejects_"))
            result.setdefault(nas_name, {})[node.node] = [node.started_at.isoformat(), accepts, rejects]
    return result


def _auth_growth(before: dict, now: dict | None) -> tuple[int | None, int | None, dict]:
    """Accepts and rejects since the last sample, summed over the RADIUS processes: a process seen before with
    the same start counts its growth, a new or restarted one all it has counted. None when no process reports."""
    if not now:
        return None, None, {}
    accepts = rejects = 0
    for node, (started, node_accepts, node_rejects) in now.items():
        earlier = (before or {}).get(node)
        if earlier and earlier[0] == started:
            accepts += max(node_accepts - earlier[1], 0)
            rejects += max(node_rejects - earlier[2], 0)
        else:
            accepts += node_accepts
            rejects += node_rejects
    return accepts, rejects, now


def _sample_pools(now: dt.datetime) -> int:
    """``PoolUsage`` of every pool: the distinct addresses of the open sessions inside its network. One read of the
    open sessions' addresses, bucketed here by each pool's integer range (pools may nest; each counts its own)."""
    pools = list(IpPool.objects.all())
    if not pools:
        return 0
    ranges: list[tuple[int, int, int, int]] = []  # (version, first, last, pool id)
    for pool in pools:
        try:
            net = ipaddress.ip_network(pool.network.strip(), strict=False)
        except ValueError:
            continue
        ranges.append((net.version, int(net.network_address), int(net.broadcast_address), pool.pk))
    ranges.sort()
    starts = [(version, first) for version, first, _last, _pk in ranges]
    # The furthest end among the ranges up to each one (of its version): the walk back stops where none reaches.
    reach: list[int] = []
    for i, (version, _first, last, _pk) in enumerate(ranges):
        same = i > 0 and ranges[i - 1][0] == version
        reach.append(max(last, reach[-1]) if same else last)
    used: dict[int, set[int]] = {pool.pk: set() for pool in pools}
    addresses = (
        Session.objects.filter(status=SessionStatus.OPEN, framed_ip__isnull=False)
        .values_list("framed_ip", flat=True)
        .iterator(chunk_size=10_000)
    )
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        value = int(address)
        # Every range starting at or before the address may hold it (nested pools): walk back while they do.
        index = bisect_right(starts, (address.version, value)) - 1
        while index >= 0 and ranges[index][0] == address.version and reach[index] >= value:
            _version, first, last, pk = ranges[index]
            if first <= value <= last:
                used[pk].add(value)
            index -= 1
    for pool in pools:
        PoolUsage.objects.update_or_create(pool=pool, defaults={"sampled_at": now, "used": len(used[pool.pk])})
    return len(pools)


@transaction.atomic
def note_stranded(newest_by_nas: dict[int, dt.datetime], now: dt.datetime) -> None:
    """The stale-session sweeper closed sessions of these NAS (with the newest update among them): where none is
    left open, the NAS had subscribers online and stopped reporting them (``health.is_silent``)."""
    if not newest_by_nas:
        return
    _serialise()
    still_open = set(
        Session.objects.filter(status=SessionStatus.OPEN, nas_id__in=list(newest_by_nas))
        .values_list("nas_id", flat=True)
        .distinct()
    )
    for nas_id, newest in newest_by_nas.items():
        if nas_id in still_open:
            continue
        row = NasHealth.objects.select_for_update().filter(nas_id=nas_id).first() or NasHealth(nas_id=nas_id)
        row.stranded_at = now
        row.open_sessions = 0
        if row.last_accounting_at is None or newest > row.last_accounting_at:
            row.last_accounting_at = newest
        row.save()
