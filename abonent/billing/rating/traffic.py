"""The traffic rating run: every usage period that ended by a date, rated on the plans in force, charged once.

How exactly-once holds (docs/billing-usage-rating.md):
- a period is rated into a ``UsageRating`` row, unique by ``(subscription, period_start)``, written with its
  first charge; usage that arrives later (a spool replayed, a collector's late batch) raises the period's
  amount, and only the difference is charged, as a ``USAGE_ADJUSTMENT`` line;
- each usage charge carries the rating's revision as its ``cycle``, and the schema allows one charge per
  ``(subscription, period_start, cycle)`` of the usage kinds (``billing_charge_usage_once``): a retried or
  concurrent run computes the same revision and conflicts instead of charging twice;
- a chunk's subscriptions are locked (``FOR UPDATE`` on PostgreSQL; SQLite's transactions are IMMEDIATE), so
  a second run over them waits, then reads the first one's ratings and finds nothing new.

Work is set-based: the candidates (subscriptions on a charged plan in the window, or that left one) are split
into chunks; per chunk one query reads the subscriptions, one the plan changes, one the ratings so far and one
aggregates the usage of every segment (``network.usage.span_usage``); the chunk's charges go into the ledger as
one transaction (``usage:<date>:<n>``: a posting per subscriber account and per usage revenue account), with
bulk inserts of the charges and the ratings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.catalog.models import Plan, Service, ServiceKind
from abonent.core import bulk, clock
from abonent.core.parallel import run_in_threads
from abonent.network.usage import span_usage

from ..ledger import post, subscriber_account, usage_revenue_account
from ..models import Charge, ChargeKind, Posting, TransactionKind, UsageRating
from .common import PlanTerms, periods_ended, rate_one, rate_parts
from .history import Sub, as_date, as_money, period_parts, plan_changes, select, uncovered

logger = logging.getLogger(__name__)

DEFAULT_LOOKBACK_DAYS = 40
# A period rated already is read again in full by the runs of this many days after its end (a day written to in
# the minutes around midnight, a day deleted by hand: ``decreased``); later, only when a day of it is marked late.
FULL_RECHECK_DAYS = 2
# Ledger keys of the rating's transactions: one per chunk, many charges each (like the billing run's batches).
USAGE_KEY_PREFIX = "usage:"
CHARGE_FIELDS = ["subscription", "kind", "period_start", "period_end", "amount", "quantity", "cycle", "transaction"]
RATING_FIELDS = [
    "subscription",
    "period_start",
    "period_end",
    "used_bytes",
    "included_bytes",
    "charged_bytes",
    "amount",
    "revision",
    "rated_at",
    "updated_at",
]


def lookback_days() -> int:
    return int(getattr(settings, "ABONENT_USAGE_RATING_LOOKBACK_DAYS", DEFAULT_LOOKBACK_DAYS))


@dataclass
class RatingResult:
    as_of: dt.date
    subscriptions: int = 0
    periods: int = 0  # periods rated for the first time
    charges: int = 0  # first charges of periods
    adjustments: int = 0  # late usage charged
    amount: Decimal = Decimal("0.00")
    # Periods whose usage now rates lower than what was charged: counters only grow, so this is a data problem
    # (a day deleted, a plan edited); nothing is given back automatically.
    decreased: list[tuple[int, dt.date]] = field(default_factory=list)
    # Periods not charged because their counters are at the limit or the amount is absurd (``Rated.absurd``):
    # reported for a person, rated again by every run, never blocking the rest of the chunk.
    parked: list[tuple[int, dt.date]] = field(default_factory=list)
    # Days written to after their period left the lookback (``UsageDay.late`` older than the window): not
    # charged, counted here and in the log for a person to look at.
    late_unrated: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class _Rating:
    """A period's rating as stored: what the next run compares the period's usage with."""

    id: int
    period_end: dt.date
    used_bytes: int
    included_bytes: int
    charged_bytes: int
    amount: Decimal
    revision: int


class UsageRatingRun:
    def __init__(
        self,
        as_of: dt.date,
        *,
        chunk_size: int | None = None,
        lookback: int | None = None,
        workers: int | None = None,
    ):
        self.as_of = as_of
        self.pg = connection.vendor == "postgresql"
        self.chunk_size = chunk_size or (10_000 if self.pg else 5_000)
        self.workers = workers or int(getattr(settings, "ABONENT_BILLING_WORKERS", 2))
        self._merge = threading.Lock()
        self.lookback = lookback_days() if lookback is None else lookback
        self.result = RatingResult(as_of=as_of)
        self.terms = {plan.pk: PlanTerms.of(plan) for plan in Plan.objects.select_related("service")}
        self.created_at = clock.now()
        self._revenue: dict[int, int] = {}
        self._periods: dict[int | None, list[tuple[dt.date, dt.date, int]]] = {}

    def run(self) -> RatingResult:
        started = time.monotonic()
        ids = self._candidates()
        chunks = [ids[n : n + self.chunk_size] for n in range(0, len(ids), self.chunk_size)]
        for terms in self.terms.values():  # created before any worker needs them
            if terms.charged:
                self._revenue_account(terms.service_id)
        if self.pg and not connection.in_atomic_block and len(chunks) > 1:
            self._run_parallel(chunks, min(len(chunks), self.workers))
        else:
            for chunk in chunks:
                self._rate_in_transaction(chunk)
        self.result.seconds = time.monotonic() - started
        logger.info(
            "usage rating %s: %d subscriptions, %d periods, %d charges, %d adjustments, %s, %d parked, "
            "%d late days not rated, %.1fs",
            self.as_of,
            self.result.subscriptions,
            self.result.periods,
            self.result.charges,
            self.result.adjustments,
            self.result.amount,
            len(self.result.parked),
            self.result.late_unrated,
            self.result.seconds,
        )
        return self.result

    def _rate_in_transaction(self, chunk: list[int]) -> None:
        out = RatingResult(as_of=self.as_of)
        with transaction.atomic():
            self._rate_chunk(chunk, out)
        with self._merge:  # what a committed chunk did
            for name in ("subscriptions", "periods", "charges", "adjustments", "amount", "late_unrated"):
                setattr(self.result, name, getattr(self.result, name) + getattr(out, name))
            self.result.decreased.extend(out.decreased)
            self.result.parked.extend(out.parked)

    def _run_parallel(self, chunks: list[list[int]], workers: int) -> None:
        """Chunks handed out to ``workers`` threads with their own connections, as the billing run does: the
        database aggregates one chunk's usage while Python rates the other's."""
        run_in_threads(chunks, self._rate_in_transaction, workers=workers, name="usage-rating")

    # --- what to rate ---------------------------------------------------------------------------------

    def _earliest(self) -> dt.date:
        """The earliest day a period in the window can start on: the lookback and one month before it."""
        return self.as_of - dt.timedelta(days=self.lookback + 31)

    def _candidates(self) -> list[int]:
        """Subscriptions that may have a charged period in the window: on a charged plan now, or moved off or
        onto one since the window's earliest day. Served in the window (started before the run's day, not ended
        before the window)."""
        charged = [pk for pk, terms in self.terms.items() if terms.charged]
        if not charged:
            return []
        earliest = self._earliest()
        marks = ", ".join(["%s"] * len(charged))
        since = timezone.make_aware(dt.datetime.combine(earliest, dt.time.min))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM billing_subscription WHERE started_on < %s "
                "AND (ended_on IS NULL OR ended_on >= %s) AND ("
                f"plan_id IN ({marks}) OR id IN (SELECT subscription_id FROM billing_subscriptionevent "
                f"WHERE kind = 'plan_changed' AND effective_at >= %s AND (from_plan_id IN ({marks}) "
                f"OR to_plan_id IN ({marks})))) ORDER BY id",
                [self.as_of, earliest, *charged, since, *charged, *charged],
            )
            return [pk for (pk,) in cursor.fetchall()]

    # --- one chunk, one transaction -------------------------------------------------------------------

    def _rate_chunk(self, ids: list[int], out: RatingResult) -> None:
        subs = self._lock(ids)
        changes = self._plan_changes(ids)
        rated = self._ratings(ids, subs)
        late = self._late(subs)  # before the usage is summed: a day written to after this is left marked
        spans, periods = self._spans(subs, changes, rated, self._rivals(subs), late)
        usage = span_usage(spans)
        self._clear_late(late, spans, out)
        new_rows: list[tuple] = []
        changed_rows: list[_Rating] = []
        charges: list[tuple] = []
        terms, no_usage = self.terms, (0, 0)
        for (sub, start, end), parts, period_days in periods:
            if len(parts) == 1:  # one plan all period: most of them, without the lists
                plan, days = parts[0]
                outcome = rate_one(terms[plan], days, period_days, *usage.get((sub.id, start, 0), no_usage))
            else:
                outcome = rate_parts(
                    [
                        (terms[plan], days, *usage.get((sub.id, start, n), no_usage))
                        for n, (plan, days) in enumerate(parts)
                    ],
                    period_days,
                )
            if outcome.absurd:
                out.parked.append((sub.id, start))
                logger.warning(
                    "usage rating %s: subscription %s period %s not charged: %s bytes, %s; counters at their limit",
                    self.as_of,
                    sub.id,
                    start,
                    outcome.used,
                    outcome.amount,
                )
                continue
            existing = rated.get((sub.id, start))
            if existing is None:
                new_rows.append((sub.id, start, end, outcome))
                out.periods += 1
                if outcome.amount > 0:
                    charges.append((sub, ChargeKind.USAGE, start, end, outcome.amount, outcome.charged_bytes, 0))
                continue
            if outcome.amount < existing.amount:
                out.decreased.append((sub.id, start))
                logger.warning(
                    "usage rating %s: subscription %s period %s rates %s, below the %s charged; nothing given back",
                    self.as_of,
                    sub.id,
                    start,
                    outcome.amount,
                    existing.amount,
                )
                continue
            if outcome.amount > existing.amount:
                existing.revision += 1
                charges.append(
                    (
                        sub,
                        ChargeKind.USAGE_ADJUSTMENT,
                        start,
                        end,
                        outcome.amount - existing.amount,
                        max(0, outcome.charged_bytes - existing.charged_bytes),
                        existing.revision,
                    )
                )
            if (outcome.amount, outcome.used, outcome.included) != (
                existing.amount,
                existing.used_bytes,
                existing.included_bytes,
            ):
                existing.used_bytes, existing.included_bytes = outcome.used, outcome.included
                existing.charged_bytes, existing.amount = outcome.charged_bytes, outcome.amount
                changed_rows.append(existing)
        self._write(new_rows, changed_rows, charges, out)
        out.subscriptions += len(subs)

    def _lock(self, ids: list[int]) -> list[Sub]:
        if self.pg:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        rows = select(
            "SELECT id, subscriber_id, plan_id, service_id, anchor_day, started_on, ended_on "
            "FROM billing_subscription WHERE {ids} ORDER BY id" + (" FOR UPDATE" if self.pg else ""),
            ids,
            "id",
        )
        return [
            Sub(pk, subscriber, plan, service, anchor, as_date(started), as_date(ended) if ended else None)
            for pk, subscriber, plan, service, anchor, started, ended in rows
        ]

    def _plan_changes(self, ids: list[int]) -> dict[int, list[tuple[dt.date, int, int]]]:
        return plan_changes(ids)

    def _ratings(self, ids: list[int], subs: list[Sub]) -> dict[tuple[int, dt.date], _Rating]:
        """The chunk's periods rated so far within the window (raw rows: a model instance each cost more than
        the rest of the chunk's Python): the ones overlapping a period the run reads, for the chunk's anchors."""
        anchors = {sub.anchor_day if self.terms[sub.plan_id].anniversary else None for sub in subs}
        firsts = [periods[0][0] for anchor in anchors if (periods := self._periods_of(anchor))]
        earliest = min(firsts) if firsts else self._earliest()
        rows = select(
            "SELECT id, subscription_id, period_start, period_end, used_bytes, included_bytes, charged_bytes, "
            "amount, revision FROM billing_usagerating WHERE {ids} AND period_start > %s AND period_end > %s",
            ids,
            "subscription_id",
            # A rating overlapping the window ends in it and is a month long at most: the start bounds the index scan.
            [day if self.pg else day.isoformat() for day in (earliest - dt.timedelta(days=32), earliest)],
        )
        if self.pg:  # dates and decimals as they are
            return {
                (sid, start): _Rating(pk, end, used, included, charged, amount, revision)
                for pk, sid, start, end, used, included, charged, amount, revision in rows
            }
        return {
            (sid, as_date(start)): _Rating(pk, as_date(end), used, included, charged, as_money(amount), revision)
            for pk, sid, start, end, used, included, charged, amount, revision in rows
        }

    def _late(self, subs: list[Sub]) -> dict[int, list[tuple[dt.date, int, int]]]:
        """``{subscriber: [(day, input, output)]}`` of the chunk's days marked late (``UsageDay.late``, a partial
        index): the only reason to re-read a period already rated."""
        rows = select(
            "SELECT subscriber_id, day, input_octets, output_octets FROM network_usageday WHERE {ids} AND late",
            list({sub.subscriber_id for sub in subs}),
            "subscriber_id",
        )
        late: dict[int, list[tuple[dt.date, int, int]]] = {}
        for subscriber, day, input_octets, output_octets in rows:
            late.setdefault(subscriber, []).append((as_date(day), input_octets, output_octets))
        return late

    def _clear_late(self, late, spans, out: RatingResult) -> None:
        """Unmark the late days this chunk has summed. The ones older than the lookback are counted in
        ``late_unrated`` (never charged) by each run until they are past any period it reads, then unmarked. A
        day is unmarked only as it was read: one written to meanwhile stays marked for the next run."""
        if not late:
            return
        summed: dict[int, list[tuple[dt.date, dt.date]]] = {}
        for _key, subscriber, start, end in spans:
            if subscriber in late:
                summed.setdefault(subscriber, []).append((start, end))
        oldest, forgotten = self.as_of - dt.timedelta(days=self.lookback), self._earliest()
        cleared = []
        for subscriber, days in late.items():
            for day, input_octets, output_octets in days:
                if any(a <= day < b for a, b in summed.get(subscriber, ())):
                    cleared.append((subscriber, day, input_octets, output_octets))
                elif day < oldest:
                    out.late_unrated += 1
                    if day < forgotten:
                        cleared.append((subscriber, day, input_octets, output_octets))
        if out.late_unrated:
            logger.warning(
                "usage rating %s: %d days of traffic written after the lookback (%d days), not charged",
                self.as_of,
                out.late_unrated,
                self.lookback,
            )
        if not cleared:
            return
        with connection.cursor() as cursor:
            cursor.executemany(
                "UPDATE network_usageday SET late = %s WHERE subscriber_id = %s AND day = %s "
                "AND input_octets = %s AND output_octets = %s",
                [(False, sid, day if self.pg else day.isoformat(), i, o) for sid, day, i, o in cleared],
            )

    def _rivals(self, subs: list[Sub]) -> dict[int, list[Sub]]:
        """``{subscription: the subscriber's other internet subscriptions served in the window}``, for the
        subscribers that have more than one (``history.owned_ranges``: a day's traffic is counted once)."""
        earliest = self._earliest()
        rows = select(
            "SELECT s.id, s.subscriber_id, s.plan_id, s.service_id, s.anchor_day, s.started_on, s.ended_on "
            "FROM billing_subscription s JOIN catalog_service c ON c.id = s.service_id "
            "WHERE {ids} AND c.kind = %s AND s.started_on < %s AND (s.ended_on IS NULL OR s.ended_on >= %s)",
            list({sub.subscriber_id for sub in subs}),
            "s.subscriber_id",
            [ServiceKind.INTERNET.value, *((self.as_of, earliest) if self.pg else (str(self.as_of), str(earliest)))],
        )
        by_subscriber: dict[int, list[Sub]] = {}
        for pk, subscriber, plan, service, anchor, started, ended in rows:
            by_subscriber.setdefault(subscriber, []).append(
                Sub(pk, subscriber, plan, service, anchor, as_date(started), as_date(ended) if ended else None)
            )
        return {
            sub.id: [other for other in found if other.id != sub.id]
            for sub in subs
            if len(found := by_subscriber.get(sub.subscriber_id, ())) > 1
        }

    def _spans(self, subs: list[Sub], changes, rated, rivals, late) -> tuple[list[tuple], list[tuple]]:
        """The usage spans to sum (one per segment of each period) and, per period, its segments' plans and
        days. Periods with no segment on a charged plan are left out: nothing to rate there. A period that
        overlaps ones rated on another anchor (a move between a calendar and an anniversary plan) is rated only
        in the days they do not cover (``history.uncovered``); ``rated`` and the pieces are keyed by their start.
        A period rated already is re-checked only when one of its days was written to late (``late``): a closed
        month is not read again every night."""
        spans, periods = [], []
        charged = {pk for pk, terms in self.terms.items() if terms.charged}
        empty: list = []
        recent = self.as_of - dt.timedelta(days=FULL_RECHECK_DAYS)
        rated_of: dict[int, list[tuple[dt.date, dt.date]]] = {}
        for (sid, start), rating in rated.items():
            rated_of.setdefault(sid, []).append((start, rating.period_end))
        for sub in subs:
            anchor = sub.anchor_day if self.terms[sub.plan_id].anniversary else None
            history = changes.get(sub.id, empty)
            others = rivals.get(sub.id, empty)
            done = rated_of.get(sub.id, empty)
            late_days = late.get(sub.subscriber_id, empty)
            for period_start, period_end, period_days in self._periods_of(anchor):
                settled = period_end < recent
                same = rated.get((sub.id, period_start))
                if same is not None and same.period_end == period_end:  # rated as it is: most periods
                    if settled and not any(period_start <= d < period_end for d, _i, _o in late_days):
                        continue
                    pieces = [(period_start, period_end)]
                else:
                    pieces = uncovered(period_start, period_end, done)
                for start, end in pieces:
                    if settled and (sub.id, start) in rated and not any(start <= d < end for d, _i, _o in late_days):
                        continue
                    self._span(sub, start, end, period_days, history, others, charged, spans, periods)
        return spans, periods

    @staticmethod
    def _span(sub, start, end, period_days, history, others, charged, spans, periods) -> None:
        if not history and not others and sub.ended_on is None and sub.started_on <= start:
            # Served the whole piece on one plan: most subscriptions, without the general case's lists.
            if sub.plan_id in charged:
                spans.append(((sub.id, start, 0), sub.subscriber_id, start, end))
                periods.append(((sub, start, end), [(sub.plan_id, (end - start).days)], period_days))
            return
        parts = period_parts(sub, start, end, history, others)
        if len(parts) == 1:
            plan, a, b = parts[0]
            if plan in charged:
                spans.append(((sub.id, start, 0), sub.subscriber_id, a, b))
                periods.append(((sub, start, end), [(plan, (b - a).days)], period_days))
            return
        if not any(plan in charged for plan, _a, _b in parts):
            return
        for n, (_plan, a, b) in enumerate(parts):
            spans.append(((sub.id, start, n), sub.subscriber_id, a, b))
        periods.append(((sub, start, end), [(plan, (b - a).days) for plan, a, b in parts], period_days))

    def _periods_of(self, anchor: int | None) -> list[tuple[dt.date, dt.date, int]]:
        periods = self._periods.get(anchor)
        if periods is None:
            periods = self._periods[anchor] = [
                (start, end, (end - start).days)
                for start, end in periods_ended(self.as_of, self.lookback, anniversary_day=anchor)
            ]
        return periods

    def _write(self, new_rows, changed_rows, charges, out: RatingResult) -> None:
        """The chunk's ledger transaction, its charges and the ratings, in the chunk's transaction. A charge
        that conflicts with one already there (``billing_charge_usage_once``) aborts the chunk whole: nothing
        is charged twice, and the next run rates it again from what committed.

        ``new_rows``: ``(subscription, start, end, Rated)``; ``charges``: ``(sub, kind, start, end, amount, bytes,
        cycle)``. PostgreSQL: each table written by one INSERT from arrays (the posting statement trigger checks
        the batch's zero sum and moves the balances once); SQLite: ``ledger.post`` and ``executemany``."""
        now = self.created_at if self.pg else connection.ops.adapt_datetimefield_value(self.created_at)
        with connection.cursor() as cursor:
            if charges:
                tx_id = self._post(cursor, charges)
                bulk.insert(
                    [
                        (sub.id, kind, a, b, amount, size, cycle, tx_id)
                        for sub, kind, a, b, amount, size, cycle in charges
                    ],
                    model=Charge,
                    fields=CHARGE_FIELDS,
                )
                for _sub, kind, _a, _b, amount, _size, _cycle in charges:
                    out.amount += amount
                    if kind == ChargeKind.USAGE:
                        out.charges += 1
                    else:
                        out.adjustments += 1
            if new_rows:
                bulk.insert(
                    [
                        (sid, a, b, r.used, r.included, r.charged_bytes, r.amount, 0, self.created_at, self.created_at)
                        for sid, a, b, r in new_rows
                    ],
                    model=UsageRating,
                    fields=RATING_FIELDS,
                )
            if changed_rows:
                cursor.executemany(
                    "UPDATE billing_usagerating SET used_bytes = %s, included_bytes = %s, charged_bytes = %s, "
                    "amount = %s, revision = %s, updated_at = %s WHERE id = %s",
                    [
                        (r.used_bytes, r.included_bytes, r.charged_bytes, str(r.amount), r.revision, now, r.id)
                        for r in changed_rows
                    ],
                )

    def _post(self, cursor, charges) -> int:
        """The chunk's ledger transaction: minus each subscriber's charges on their account, plus the charges
        on the usage revenue account of each service. Its key holds its own id on PostgreSQL
        (``usage:<date>:<id>``; SQLite: a random suffix): it is never retried under its key, what makes each
        charge once is the charge's unique revision."""
        subscribers = {charge[0].subscriber_id for charge in charges}
        accounts = dict(
            select(
                "SELECT subscriber_id, id FROM billing_ledgeraccount WHERE {ids}", list(subscribers), "subscriber_id"
            )
        )
        legs: dict[int, Decimal] = {}
        for sub, _kind, _a, _b, amount, _size, _cycle in charges:
            account = accounts.get(sub.subscriber_id)
            if account is None:
                account = accounts[sub.subscriber_id] = subscriber_account(sub.subscriber_id).pk
            legs[account] = legs.get(account, Decimal("0.00")) - amount
            revenue = self._revenue_account(sub.service_id)
            legs[revenue] = legs.get(revenue, Decimal("0.00")) + amount
        memo = _("Traffic rating of %(date)s") % {"date": self.as_of.isoformat()}
        if not self.pg:
            tx, _created = post(
                key=f"{USAGE_KEY_PREFIX}{self.as_of.isoformat()}:{uuid.uuid4().hex}",
                kind=TransactionKind.USAGE,
                effective_date=self.as_of,
                legs=list(legs.items()),
                memo=memo,
            )
            return tx.pk
        cursor.execute("SELECT nextval(pg_get_serial_sequence('billing_ledgertransaction', 'id'))")
        tx_id = cursor.fetchone()[0]
        key = f"{USAGE_KEY_PREFIX}{self.as_of.isoformat()}:{tx_id}"
        cursor.execute(
            "INSERT INTO billing_ledgertransaction (id, idempotency_key, request_hash, kind, effective_date, "
            "created_at, memo) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                tx_id,
                key,
                hashlib.sha256(key.encode()).hexdigest(),
                TransactionKind.USAGE.value,
                self.as_of,
                self.created_at,
                memo,
            ],
        )
        # One statement: the posting trigger checks the batch's zero sum and moves each balance once.
        bulk.insert(
            [(tx_id, account, amount) for account, amount in legs.items() if amount != 0],
            model=Posting,
            fields=["transaction", "account", "amount"],
        )
        return tx_id

    def _revenue_account(self, service_id: int) -> int:
        account = self._revenue.get(service_id)
        if account is None:
            account = self._revenue[service_id] = usage_revenue_account(Service.objects.get(pk=service_id)).pk
        return account


def rate_usage(as_of: dt.date | None = None, *, chunk_size: int | None = None) -> RatingResult:
    """Rate every usage period that ended by ``as_of`` (default today) and re-check the closed ones within the
    lookback for late usage. Safe to retry, interrupt and run twice at once. Never ahead of today."""
    today = clock.today()
    as_of = as_of or today
    if as_of > today:
        raise ValueError(f"usage cannot be rated ahead of today ({as_of.isoformat()} > {today.isoformat()})")
    return UsageRatingRun(as_of, chunk_size=chunk_size).run()
