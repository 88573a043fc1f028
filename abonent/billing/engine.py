"""The billing run: charge every active subscription for each period due up to a date, exactly once.

How exactly-once holds (DESIGN.md §4, invariant 4):
- each subscription carries a cursor, ``next_charge_on``, advanced in the same database transaction as the
  charges it covers, so a run killed at any point leaves every subscription either charged and advanced or
  untouched;
- rows are taken with ``FOR UPDATE`` (PostgreSQL); a second run over the same rows waits, then re-reads the
  advanced cursor and finds nothing due;
- behind both, the unique ``(subscription, period_start, cycle)`` of fees makes a double charge impossible
  even if a cursor were stale: charges are inserted ``ON CONFLICT DO NOTHING``, and only the new ones are posted.
  The cycle is the subscription's ``charge_cycle``, which an unfreeze moves on: a period credited back by a
  freeze and served again is owed again, so its new fee must not collide with the one credited back.

What a chunk writes (ADR 0010): a charge per fee (the fee's detail: subscription, period, amount, price,
proration) and, per distinct period start in the chunk (normally one: the run's day), one ledger transaction
(``fees:<date>:<id>``) whose postings are the new charges summed per subscriber account and per revenue
account. That is about one charge, one posting and two HOT updates (the balance, the cursor) per fee, where a
transaction and two postings per fee were before. The ledger still balances per transaction (the statement
trigger checks each batch), each subscriber's balance is still the sum of its postings, and one charge is
still reversed on its own (``ledger.reverse_charge``). The card's ledger shows each batch line with the
subscriber's charges in it.

Work is set-based: the due subscriptions are split into chunks of consecutive ids; a chunk is locked and read in
one statement, priced in Python with the pure functions of ``calculations`` (each distinct (plan, period) once
per run), and written in its own transaction: on PostgreSQL COPYed into a temporary table and written by one
statement (charges ``ON CONFLICT DO NOTHING``, then the batches that got a new charge and their postings) plus
one UPDATE of the cursors; on SQLite with ``executemany``, under a page cache raised for the run.
On PostgreSQL, outside a caller's transaction, two worker threads with their own connections take chunks in
turn (``ABONENT_BILLING_WORKERS``), so the database's work on one chunk overlaps the other's; a chunk a
deadlock aborts is retried whole. docs/scaling.md has the measurements behind these choices.
A subscription whose plan has no price for a period, or whose balance is beyond what an account can sanely
hold (``PARK_BALANCE``: a fee would overflow the column and abort the whole chunk), is parked: skipped,
reported, never retried in a loop. Each run leaves a ``BillingRunRecord`` with what it parked and why (billing/runs:
one INSERT when it starts, one UPDATE when it ends).

Online-only daily plans charge a day after a day online. Accounting may record that day after the run (an
interim after 00:05, a spool replayed after an outage), so a day the run skips is kept as an ``UnbilledDay``
and looked at again by the runs of the next ``UNBILLED_LOOKBACK_DAYS`` days (``late_days``). A chunk is written by
``chunk_writes``.

A scheduled plan change (a downgrade waits for the next period) is applied by the run, in the UPDATE of the
cursors. The few subscriptions it switches get a history event and are sent as ``plans_switched`` inside the
chunk's transaction, so what the receivers write (the RADIUS policy-change feed, the CoA with the new speed)
commits with the switch, or is rolled back and written again with a retried chunk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from abonent.core import clock
from abonent.core.parallel import run_in_threads

from . import chunk_writes
from .late_days import charge_late_online_days
from .models import (
    OnlineDay,
    SubscriptionEvent,
    SubscriptionEventKind,
)
from .run_catalog import RunCatalog, RunPeriod
from .runs import recording
from .runs.models import ParkReason

logger = logging.getLogger(__name__)

# A subscription more than this many periods behind is parked instead of charged in one go: years of
# arrears appearing at once is a data problem for a person to look at, not something to bill blindly.
MAX_PERIODS_PER_RUN = 400
# Parallel chunk workers on PostgreSQL (setting ``ABONENT_BILLING_WORKERS``): one per core of the database server.
DEFAULT_WORKERS = 2
# deadlock_detected, serialization_failure, lock_not_available: the chunk's transaction is retried whole.
RETRYABLE_SQLSTATES = {"40P01", "40001", "55P03"}
CHUNK_ATTEMPTS = 3
# SQLite's page cache during a run, in KiB (negative ``cache_size`` means KiB), given back afterwards.
SQLITE_RUN_CACHE_KIB = 256 * 1024
# A balance this far from zero is a broken account, not a customer: charging it could overflow numeric(14, 2)
# and abort the chunk for everyone in it. Actions refuse amounts long before (core.money.BALANCE_LIMIT, five times
# less, so credits given back near that limit never get a subscription parked).
PARK_BALANCE = Decimal("500000000000.00")


@dataclass(frozen=True, slots=True)
class PlanSwitch:
    """A subscription whose scheduled plan the run put in force from ``effective_on`` (a period start)."""

    subscription_id: int
    subscriber_id: int
    from_plan_id: int
    to_plan_id: int
    effective_on: dt.date


# Sent with ``switched`` (a list of ``PlanSwitch``) inside the chunk's transaction that switched them, so a
# receiver's writes commit or roll back with the switch. ``core.events`` handlers run only after the commit,
# and a crash in between would leave the RADIUS processes on the old plan until a restart. The network app
# receives it (network/events.py): the billing app does not know about the NAS.
plans_switched = Signal()
# Sent with ``subscriber_ids`` (those the chunk charged), inside the chunk's transaction, when it charged any: a
# subscriber on a time plan besides the one charged spends the same money online (network/events.py reloads
# their Session-Timeout).
fees_charged = Signal()


class Parked(NamedTuple):
    """A subscription the run left uncharged: ``why`` in words for the log, ``reason`` a ``ParkReason``."""

    subscription_id: int
    why: str
    reason: str


@dataclass
class RunResult:
    as_of: dt.date
    charges: int = 0
    amount: Decimal = Decimal("0.00")
    subscriptions: int = 0
    chunks: int = 0
    seconds: float = 0.0
    parked: list[Parked] = field(default_factory=list)
    workers: int = 1
    # Days of online-only plans left for a later run (``UnbilledDay``): no day online before them yet.
    unbilled: int = 0


@dataclass
class _Outcome:
    """What one committed chunk did, merged into the run's result."""

    subscriptions: int = 0
    charges: int = 0
    amount: Decimal = Decimal("0.00")
    parked: list[Parked] = field(default_factory=list)
    unbilled: int = 0


class BillingRun:
    def __init__(self, as_of: dt.date, *, chunk_size: int | None = None, workers: int | None = None):
        self.as_of = as_of
        self.pg = connection.vendor == "postgresql"
        self.chunk_size = chunk_size or (10_000 if self.pg else 5_000)
        self.workers = workers
        self.result = RunResult(as_of=as_of)
        self.catalog = RunCatalog()
        self.created_at = clock.now()
        self._merge_lock = threading.Lock()  # the chunk workers' outcomes merged into ``result``

    def charge_subscriptions(self, ids: list[int]) -> RunResult:
        """Charge what is due now for these subscriptions only (activation, unfreeze), in the caller's transaction."""
        self.catalog.load()
        self._charge_chunk(ids=list(ids))
        return self.result

    def run(self) -> RunResult:
        """Charge everything due, chunk by chunk, and leave a ``BillingRunRecord`` of it (billing/runs)."""
        record = recording.start(self.as_of)
        try:
            self._run()
        except BaseException as exc:
            recording.fail(record, self.result, exc)
            raise
        recording.finish(record, self.result)
        return self.result

    def _run(self) -> None:
        started = time.monotonic()
        self.catalog.load()
        bounds = self._chunk_bounds()
        workers = self._worker_count(len(bounds))
        if workers > 1:
            self._run_parallel(bounds, workers)
        else:
            with self._sqlite_cache():
                for low, high in bounds:
                    self._charge_chunk(bounds=(low, high))
        charge_late_online_days(self.as_of, self.result, pg=self.pg)
        self.result.chunks = len(bounds)
        self.result.workers = workers
        self.result.parked.sort()
        self.result.seconds = time.monotonic() - started
        logger.info(
            "billing run %s: %d charges, %s, %d subscriptions, %d parked, %.1fs (%d chunks, %d workers)",
            self.as_of,
            self.result.charges,
            self.result.amount,
            self.result.subscriptions,
            len(self.result.parked),
            self.result.seconds,
            len(bounds),
            workers,
        )

    @contextlib.contextmanager
    def _sqlite_cache(self):
        """SQLite's page cache raised for the run, then put back: its default (2 MB) holds little of a large
        ledger's indexes, and every insert would read index pages back through the operating system."""
        if self.pg:
            yield
            return
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            previous = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA cache_size = {-SQLITE_RUN_CACHE_KIB}")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA cache_size = {int(previous)}")

    # --- splitting the run ------------------------------------------------------------------------------

    def _chunk_bounds(self) -> list[tuple[int, int]]:
        """``(first id, last id)`` of each chunk of ``chunk_size`` due subscriptions, in id order.

        Chunks are disjoint id ranges, so parallel workers never wait for each other's rows; a subscription
        whose cursor another run advances meanwhile is simply not found due when its chunk locks it.
        """
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT MIN(id), MAX(id) FROM (SELECT id, (ROW_NUMBER() OVER (ORDER BY id) - 1) / %s AS chunk "
                "FROM billing_subscription WHERE status = 'active' AND next_charge_on <= %s) AS due "
                "GROUP BY chunk ORDER BY chunk",
                [self.chunk_size, self.as_of],
            )
            return cursor.fetchall()

    def _worker_count(self, chunks: int) -> int:
        """Parallel workers only on PostgreSQL and outside a caller's transaction (a worker's own connection
        could not see what the caller has not committed)."""
        if not self.pg or connection.in_atomic_block or chunks < 2:
            return 1
        wanted = self.workers or getattr(settings, "ABONENT_BILLING_WORKERS", DEFAULT_WORKERS)
        return max(1, min(wanted, chunks))

    def _run_parallel(self, bounds: list[tuple[int, int]], workers: int) -> None:
        """Chunks handed out to ``workers`` threads, each with its own connection and transactions.

        Pricing is Python (one thread at a time) while the database works for the others: with two workers
        the server's inserts, index updates and reference checks of one chunk overlap the next one's pricing
        and the other server process.
        """
        run_in_threads(bounds, lambda item: self._charge_chunk(bounds=item), workers=workers, name="billing-run")

    # --- one chunk, one transaction --------------------------------------------------------------------

    def _charge_chunk(self, *, ids: list[int] | None = None, bounds: tuple[int, int] | None = None) -> None:
        nested = connection.in_atomic_block
        for attempt in range(1, CHUNK_ATTEMPTS + 1):
            try:
                with transaction.atomic():
                    outcome = self._charge_locked(ids, bounds)
                break
            except OperationalError as exc:
                # Two runs over the same subscribers (or a run and an action on one subscriber's account) can
                # deadlock on account rows; the chunk's transaction was rolled back whole, so it is retried.
                code = getattr(exc.__cause__, "sqlstate", None)
                if nested or code not in RETRYABLE_SQLSTATES or attempt == CHUNK_ATTEMPTS:
                    raise
                logger.warning("billing run %s: chunk %s retried after %s", self.as_of, bounds or "ids", code)
        with self._merge_lock:
            self.result.subscriptions += outcome.subscriptions
            self.result.charges += outcome.charges
            self.result.amount += outcome.amount
            self.result.parked.extend(outcome.parked)
            self.result.unbilled += outcome.unbilled

    def _charge_locked(self, ids, bounds) -> _Outcome:
        with connection.cursor() as cursor:
            if self.pg:
                # Per transaction: the trigger's aggregates over a chunk's postings stay in memory, and no
                # JIT compilation (hundreds of milliseconds) for statements that run a few milliseconds.
                cursor.execute("SET LOCAL work_mem = '64MB'")
                cursor.execute("SET LOCAL jit = off")
            rows = self._lock_due(cursor, ids, bounds)
            online = self._online_days(rows)
            # The few subscriptions an individual, group or bundle price or a personal promotion touches.
            contexts = (
                {}
                if self.catalog.pricing.empty
                else self.catalog.pricing.contexts([(r[0], r[1], r[2], r[5]) for r in rows])
            )
            charges, cursors, switched, parked, unbilled = self._price(rows, online, contexts)
            outcome = _Outcome(subscriptions=len(rows), parked=parked, unbilled=len(unbilled))
            if self.pg:
                outcome.charges, outcome.amount = chunk_writes.write_postgresql(
                    cursor, charges, cursors, created_at=self.created_at, as_of=self.as_of
                )
            else:
                outcome.charges, outcome.amount = chunk_writes.write_sqlite(
                    cursor, charges, cursors, created_at=self.created_at, as_of=self.as_of
                )
            if unbilled:
                chunk_writes.write_unbilled(cursor, unbilled, pg=self.pg)
        if switched:
            self._plans_switched(switched)
        if charges and fees_charged.has_listeners(BillingRun):
            fees_charged.send(sender=BillingRun, subscriber_ids=sorted({c[1] for c in charges}), as_of=self.as_of)
        return outcome

    def _plans_switched(self, switched: list[PlanSwitch]) -> None:
        """What an immediate plan change does besides the ledger, for the subscriptions the UPDATE switched: a
        history event, and ``plans_switched`` for the RADIUS side. A retried or concurrent run finds their
        plans switched already and writes nothing again."""
        SubscriptionEvent.objects.bulk_create(
            [
                SubscriptionEvent(
                    subscription_id=s.subscription_id,
                    kind=SubscriptionEventKind.PLAN_CHANGED,
                    effective_at=timezone.make_aware(dt.datetime.combine(s.effective_on, dt.time.min)),
                    from_plan_id=s.from_plan_id,
                    to_plan_id=s.to_plan_id,
                    created_at=self.created_at,
                )
                for s in switched
            ]
        )
        plans_switched.send(sender=BillingRun, switched=switched, as_of=self.as_of)

    def _lock_due(self, cursor, ids, bounds) -> list[tuple]:
        # The account through a subquery: an index lookup per row. As a join, the planner (no idea how few rows
        # a chunk has) hashes the whole accounts table for every chunk, which at a million accounts is most
        # of the run's reads.
        sql = (
            "SELECT s.id, s.subscriber_id, s.plan_id, s.next_charge_on, s.anchor_day, s.pending_plan_id, "
            "s.pending_plan_from, a.id, s.charge_cycle, a.balance "
            "FROM billing_subscription s LEFT JOIN {account} "
            "WHERE {where} AND s.status = 'active' AND s.next_charge_on <= %s ORDER BY s.id"
        )
        if bounds is not None:
            where, params = "s.id BETWEEN %s AND %s", [*bounds]
        elif self.pg:
            where, params = "s.id = ANY(%s)", [ids]
        else:
            where, params = f"s.id IN ({','.join(['%s'] * len(ids))})", [*ids]
        # PostgreSQL: a LATERAL subquery with OFFSET 0, so the planner cannot flatten it into a join (it did, and
        # hashed all the accounts for every chunk: 0.7 s a chunk); an index lookup per row. SQLite's planner does
        # that for a plain join.
        account = (
            "LATERAL (SELECT a.id, a.balance FROM billing_ledgeraccount a WHERE a.subscriber_id = s.subscriber_id "
            "OFFSET 0) a ON true"
            if self.pg
            else "billing_ledgeraccount a ON a.subscriber_id = s.subscriber_id"
        )
        cursor.execute(
            sql.format(where=where, account=account) + (" FOR UPDATE OF s" if self.pg else ""), [*params, self.as_of]
        )
        rows = cursor.fetchall()
        if not self.pg:  # SQLite hands dates back as text, and decimals as floats
            rows = [
                (
                    *r[:3],
                    _as_date(r[3]),
                    r[4],
                    r[5],
                    _as_date(r[6]) if r[6] else None,
                    r[7],
                    r[8],
                    Decimal(str(r[9])) if r[9] is not None else None,
                )
                for r in rows
            ]
        return rows

    def _online_days(self, rows: list[tuple]) -> set[tuple[int, dt.date]]:
        online_only = {pk for pk, info in self.catalog.plans.items() if info.plan.charge_only_if_online}
        wanted = [r[1] for r in rows if r[2] in online_only or r[5] in online_only]
        if not wanted:
            return set()
        start = min(r[3] for r in rows) - dt.timedelta(days=1)
        return set(
            OnlineDay.objects.filter(subscriber_id__in=wanted, day__gte=start, day__lt=self.as_of).values_list(
                "subscriber_id", "day"
            )
        )

    def _price(
        self, rows: list[tuple], online: set, contexts: dict | None = None
    ) -> tuple[list[tuple], list[tuple], list[PlanSwitch], list[Parked], list[tuple]]:
        """The charges due for the locked rows, their new cursors, the plan changes they put in force and the
        days of online-only plans left unbilled; pure Python, no queries."""
        as_of, catalog, one_day = self.as_of, self.catalog, dt.timedelta(days=1)
        periods = catalog.periods
        charges: list[tuple[int, int, int, RunPeriod, int]] = []
        cursors: list[tuple] = []
        switched: list[PlanSwitch] = []
        parked: list[Parked] = []
        unbilled: list[tuple[int, dt.date, int, int]] = []
        for (
            subscription_id,
            subscriber_id,
            plan_id,
            next_on,
            anchor_day,
            pending_id,
            pending_from,
            account_id,
            cycle,
            balance,
        ) in rows:
            start, current, count, why, reason = next_on, plan_id, 0, None, ParkReason.NO_PRICE
            context = contexts.get(subscription_id) if contexts else None
            if balance is not None and abs(balance) >= PARK_BALANCE:
                why = f"balance {balance} is beyond {PARK_BALANCE}"
                parked.append(Parked(subscription_id, why, ParkReason.BALANCE))
                logger.warning("billing run %s: subscription %s parked: balance %s", as_of, subscription_id, balance)
                continue
            while start <= as_of:
                if pending_id and start >= pending_from:
                    current, pending_id, pending_from = pending_id, None, None  # the scheduled downgrade
                    switched.append(PlanSwitch(subscription_id, subscriber_id, plan_id, current, start))
                if context is not None:
                    period = catalog.personal_period(current, start, anchor_day, context)
                else:
                    period = periods.get((current, start, anchor_day))
                    if period is None:
                        period = catalog.period(current, start, anchor_day)
                if isinstance(period, str):
                    why = period
                    break
                count += 1
                if count > MAX_PERIODS_PER_RUN:
                    why, reason = f"more than {MAX_PERIODS_PER_RUN} periods due", ParkReason.TOO_MANY_PERIODS
                    break
                # A fee discounted whole is not charged at all, as a zero fee is not: a free period.
                if period.amount > period.discount:
                    if period.only_if_online and (subscriber_id, period.start - one_day) not in online:
                        unbilled.append((subscription_id, period.start, period.price_id, cycle))
                    else:
                        charges.append((subscription_id, subscriber_id, account_id, period, cycle))
                start = period.end
            if why:
                parked.append(Parked(subscription_id, why, reason))
                logger.warning("billing run %s: subscription %s parked: %s", as_of, subscription_id, why)
            if start != next_on or current != plan_id:
                cursors.append((subscription_id, start, current, pending_id, pending_from))
        return charges, cursors, switched, parked, unbilled


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def run_billing(
    as_of: dt.date | None = None, *, chunk_size: int | None = None, workers: int | None = None
) -> RunResult:
    """Charge everything due up to ``as_of`` (default: today). Safe to retry, interrupt and run twice at once.

    Never ahead of today: a run ahead puts cursors into later periods, and a freeze or plan change after it would
    credit several periods in one charge (issue 11's attack review). Catching up past days is what it is for.
    """
    today = clock.today()
    as_of = as_of or today
    if as_of > today:
        raise ValueError(f"a billing run cannot charge ahead of today ({as_of.isoformat()} > {today.isoformat()})")
    return BillingRun(as_of, chunk_size=chunk_size, workers=workers).run()
