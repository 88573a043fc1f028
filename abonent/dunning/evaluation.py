"""Computing access states from money and subscriptions, for one subscriber or a million.

``evaluate(subscriber_ids)`` (after a balance change) and ``sweep()`` (every few minutes in the worker) share
one path: the facts of a range of subscribers are read in one set-based query (``facts``), the state each
should be in is decided in Python (``decide``: the same rule whatever the engine), and only the subscribers
whose state, debt, exemption or reminder changed are written, in one transaction per chunk (``writing``, which
also says how an evaluation and a sweep that meet on one subscriber write its change once).

The sweep reads the next chunk's facts in a second thread (its own connection) while this one decides and
writes the current chunk: the database and Python work at the same time, on the two cores of a small server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from django.db import OperationalError, connection, connections, transaction

from abonent.core import clock
from abonent.core.deadlines import db_deadline

from .decide import MONTH_DAYS, Verdict, days_left, decide
from .facts import Facts, Scope, count_in_range, decode, fetch_rows, read_facts
from .models import AccessStateKind, TransitionCause
from .writing import changed, lock_states, write_changes

logger = logging.getLogger(__name__)

State = AccessStateKind
# Subscribers read per query and written per transaction by the sweep.
CHUNK = 50_000
# Subscribers per query of an evaluation (a list of ids in the statement).
EVALUATE_CHUNK = 500
EVALUATE_ATTEMPTS = 3
DEADLOCK = "40P01"  # SQLSTATE deadlock_detected
# The sweep leaves to SQL the subscribers whose money lasts this many days beyond every threshold (``facts``).
QUIET_MARGIN_DAYS = 1

__all__ = ["CHUNK", "MONTH_DAYS", "Facts", "Verdict", "days_left", "decide", "evaluate", "read_facts", "sweep"]


def evaluate(subscriber_ids: Iterable[int], *, cause: str = TransitionCause.BALANCE, actor=None) -> list[int]:
    """Bring the listed subscribers' states up to date now; returns those whose state changed.

    Each chunk is decided under the lock of its rows (``_evaluate_chunk``): a payment must not wait for the next
    sweep because a sweep got there first with older facts (it may just have suspended the subscriber who paid)."""
    ids = sorted({int(sid) for sid in subscriber_ids})
    if not ids:
        return []
    now, today = clock.now(), clock.today()
    scope = Scope.now(today)
    moved = []
    for start in range(0, len(ids), EVALUATE_CHUNK):
        moved += _evaluate_chunk(
            ids[start : start + EVALUATE_CHUNK], scope, now=now, today=today, cause=cause, actor=actor
        )
    return moved


def _evaluate_chunk(ids: list[int], scope: Scope, *, now, today, cause: str, actor) -> list[int]:
    """Lock the state rows of ``ids`` first (waiting for a sweep writing them to commit), then read and decide: what
    was read cannot change before it is written. Only a row inserted meanwhile for a subscriber that had none (by
    a sweep or an operator) makes the write drop that subscriber; it is read again, now with its row locked. A
    deadlock with a sweep (PostgreSQL aborts one of the two) is tried again the same way."""
    moved: list[int] = []
    for attempt in range(EVALUATE_ATTEMPTS):
        stale: list[int] = []
        try:
            with transaction.atomic():
                db_deadline(lock=5, statement=60, unless_set=True)
                lock_states(ids)
                pairs = []
                for f in decode(fetch_rows(scope, today=today, ids=ids), scope):
                    v = decide(f, today=today, now=now, remind_days=scope.remind_days)
                    if changed(f, v):
                        pairs.append((f, v))
                moved += write_changes(pairs, cause=cause, actor=actor, now=now, stale=stale)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != DEADLOCK or attempt + 1 == EVALUATE_ATTEMPTS:
                raise
            stale = ids
        if not stale:
            return moved
        ids = sorted(stale)
    logger.warning("access states of %s kept changing under evaluation; the sweep will settle them", ids)
    return moved


def _prefetching() -> bool:
    """Whether the next chunk may be read on another connection: not inside a transaction (another connection
    would not see its uncommitted rows: a test's, or a caller's), and not on SQLite (one writer, and a test's
    in-memory database is not shared)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _read(scope: Scope, today, id_range, *, own_connection: bool) -> tuple[list, int]:
    """A chunk's rows (the quiet ones left out) and how many subscribers it covers."""
    try:
        rows = fetch_rows(scope, today=today, id_range=id_range, quiet_beyond=QUIET_MARGIN_DAYS)
        return rows, count_in_range(id_range)
    finally:
        if own_connection:
            connections.close_all()  # this thread's connection only


def sweep(*, chunk: int = CHUNK, timings: dict[str, float] | None = None) -> dict[str, int]:
    """Every subscriber, chunk by chunk of ids; returns counts for the job's log. ``timings``, if given, gets
    the seconds spent per phase (``facts`` is the wait for a chunk's rows, which the prefetch mostly hides;
    ``write`` includes ``notify``)."""
    from abonent.subscribers.models import Subscriber

    now, today = clock.now(), clock.today()
    scope = Scope.now(today)
    spent = {"facts": 0.0, "decode": 0.0, "decide": 0.0, "write": 0.0}
    top = Subscriber.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    ranges = [(lo, min(lo + chunk, top)) for lo in range(0, top, chunk)]
    seen = written = moved = 0
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dunning-facts") if _prefetching() else None
    try:
        pending = None
        for index, id_range in enumerate(ranges):
            started = time.perf_counter()
            if pool is None:
                rows, count = _read(scope, today, id_range, own_connection=False)
            else:
                if pending is None:
                    pending = pool.submit(_read, scope, today, id_range, own_connection=True)
                rows, count = pending.result()
                pending = None
                if index + 1 < len(ranges):
                    pending = pool.submit(_read, scope, today, ranges[index + 1], own_connection=True)
            lap = _lap(spent, "facts", started)
            facts = decode(rows, scope)
            lap = _lap(spent, "decode", lap)
            pairs = []
            for f in facts:
                v = decide(f, today=today, now=now, remind_days=scope.remind_days)
                if changed(f, v):
                    pairs.append((f, v))
            seen += count
            lap = _lap(spent, "decide", lap)
            written += len(pairs)
            moved += len(write_changes(pairs, cause=TransitionCause.SWEEP, now=now, timings=timings))
            _lap(spent, "write", lap)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    if timings is not None:
        for name, seconds in spent.items():
            timings[name] = timings.get(name, 0.0) + seconds
    return {"subscribers": seen, "written": written, "moved": moved}


def _lap(spent: dict[str, float], name: str, since: float) -> float:
    now = time.perf_counter()
    spent[name] += now - since
    return now
