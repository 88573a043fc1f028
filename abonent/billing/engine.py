"""The billing run: charge every active subscription for each period due up to a date, exactly once.

How exactly-once holds (DESIGN.md §4, invariant 4):
- each subscription carries a cursor, ``next_charge_on``, advanced in the same database transaction as the
  charges it covers, so a run killed at any point leaves every subscription either charged and advanced or
  untouched;
- rows are taken with ``FOR UPDATE`` (PostgreSQL); a second run over the same rows waits, then re-reads the
  advanced cursor and finds nothing due;
- behind both, the ledger key ``fee:<subscription>:<period start>`` and the unique ``(subscription, kind,
  period_start)`` of charges make a double charge impossible even if a cursor were stale.

Work is set-based: a chunk of subscriptions is read in one statement, priced in Python with the pure
functions of ``calculations`` (catalog data is small and cached for the run), and written with one INSERT per
table (``unnest`` arrays on PostgreSQL, ``executemany`` on SQLite) plus one UPDATE of the cursors.
A subscription whose plan has no price for a period is parked: skipped, reported, never retried in a loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction

from abonent.catalog.models import ChargeMode, DailyPricing, PeriodAnchor, Plan, PlanPrice
from abonent.core import clock

from . import calculations as calc
from .ledger import request_hash, revenue_account
from .models import OnlineDay, Subscription, SubscriptionStatus, TransactionKind

logger = logging.getLogger(__name__)

# A subscription more than this many periods behind is parked instead of charged in one go: years of
# arrears appearing at once is a data problem for a person to look at, not something to bill blindly.
MAX_PERIODS_PER_RUN = 400


@dataclass
class PlanInfo:
    plan: Plan
    prices: list[PlanPrice]  # newest first
    revenue_account_id: int

    def price_on(self, day: dt.date) -> PlanPrice | None:
        return next((p for p in self.prices if p.valid_from <= day), None)


@dataclass
class RunResult:
    as_of: dt.date
    charges: int = 0
    amount: Decimal = Decimal("0.00")
    subscriptions: int = 0
    chunks: int = 0
    seconds: float = 0.0
    parked: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class DueRow:
    id: int
    subscriber_id: int
    plan_id: int
    next_charge_on: dt.date
    anchor_day: int
    pending_plan_id: int | None
    pending_plan_from: dt.date | None
    account_id: int


def period_for(plan: Plan, start: dt.date, anchor_day: int) -> tuple[dt.date, dt.date, dt.date]:
    """``(period_start, period_end, full_period_start)`` of the period beginning at ``start``.

    A period can begin mid-way (activation on the 15th of a calendar-month plan): it then ends with the full
    period and is prorated against the full period's length.
    """
    if plan.charge_mode == ChargeMode.DAILY:
        return start, start + dt.timedelta(days=1), start
    anniversary = anchor_day if plan.period_anchor == PeriodAnchor.ANNIVERSARY else None
    full_start, end = calc.monthly_period(start, anniversary_day=anniversary)
    return start, end, full_start


def amount_for(
    plan: Plan, price: PlanPrice, start: dt.date, end: dt.date, full_start: dt.date
) -> tuple[Decimal, int | None, int | None]:
    """Fee for the period and its proration fraction (``None`` when the whole period is charged)."""
    if plan.charge_mode == ChargeMode.DAILY:
        if plan.daily_pricing == DailyPricing.FIXED:
            return price.daily_fee or Decimal("0.00"), None, None
        return calc.daily_split(price.monthly_fee, start), None, None
    if start == full_start:
        return price.monthly_fee, None, None
    numerator, denominator = calc.proration_fraction(period=(full_start, end), used_from=start)
    return calc.prorate(price.monthly_fee, period=(full_start, end), used_from=start), numerator, denominator


class BillingRun:
    def __init__(self, as_of: dt.date, *, chunk_size: int | None = None):
        self.as_of = as_of
        self.pg = connection.vendor == "postgresql"
        self.chunk_size = chunk_size or (20_000 if self.pg else 5_000)
        self.result = RunResult(as_of=as_of)
        self.plans: dict[int, PlanInfo] = {}
        self.created_at = clock.now()

    def _load_catalog(self) -> None:
        prices: dict[int, list[PlanPrice]] = {}
        for price in PlanPrice.objects.order_by("plan_id", "-valid_from"):
            prices.setdefault(price.plan_id, []).append(price)
        for plan in Plan.objects.select_related("service"):
            self.plans[plan.pk] = PlanInfo(plan, prices.get(plan.pk, []), revenue_account(plan.service).pk)

    def charge_subscriptions(self, ids: list[int]) -> RunResult:
        """Charge what is due now for these subscriptions only (activation, unfreeze), in the caller's transaction."""
        self._load_catalog()
        self._charge_chunk(ids)
        return self.result

    def run(self) -> RunResult:
        started = time.monotonic()
        self._load_catalog()
        last_id = 0
        while True:
            ids = list(
                Subscription.objects.filter(
                    status=SubscriptionStatus.ACTIVE, next_charge_on__lte=self.as_of, id__gt=last_id
                )
                .order_by("id")
                .values_list("id", flat=True)[: self.chunk_size]
            )
            if not ids:
                break
            last_id = ids[-1]
            self._charge_chunk(ids)
            self.result.chunks += 1
        self.result.seconds = time.monotonic() - started
        logger.info(
            "billing run %s: %d charges, %s, %d subscriptions, %d parked, %.1fs",
            self.as_of,
            self.result.charges,
            self.result.amount,
            self.result.subscriptions,
            len(self.result.parked),
            self.result.seconds,
        )
        return self.result

    # --- one chunk, one transaction --------------------------------------------------------------------

    def _lock_due(self, ids: list[int]) -> list[DueRow]:
        sql = (
            "SELECT s.id, s.subscriber_id, s.plan_id, s.next_charge_on, s.anchor_day, s.pending_plan_id, "
            "s.pending_plan_from, a.id FROM billing_subscription s "
            "JOIN billing_ledgeraccount a ON a.subscriber_id = s.subscriber_id "
            "WHERE s.id IN ({ids}) AND s.status = 'active' AND s.next_charge_on <= %s ORDER BY s.id"
        )
        with connection.cursor() as cursor:
            if self.pg:
                cursor.execute(sql.format(ids="SELECT unnest(%s::bigint[])") + " FOR UPDATE OF s", [ids, self.as_of])
            else:
                cursor.execute(sql.format(ids=",".join("%s" for _ in ids)), [*ids, self.as_of])
            rows = cursor.fetchall()
        return [DueRow(*r[:3], _as_date(r[3]), r[4], r[5], _as_date(r[6]) if r[6] else None, r[7]) for r in rows]

    def _online_days(self, rows: list[DueRow]) -> set[tuple[int, dt.date]]:
        wanted = [r.subscriber_id for r in rows if self.plans[r.plan_id].plan.charge_only_if_online]
        if not wanted:
            return set()
        start = min(r.next_charge_on for r in rows) - dt.timedelta(days=1)
        return set(
            OnlineDay.objects.filter(subscriber_id__in=wanted, day__gte=start, day__lt=self.as_of).values_list(
                "subscriber_id", "day"
            )
        )

    def _charge_chunk(self, ids: list[int]) -> None:
        with transaction.atomic():
            rows = self._lock_due(ids)
            online = self._online_days(rows)
            txs, charges, cursors = [], [], []
            for row in rows:
                plan_id, pending_id, pending_from = row.plan_id, row.pending_plan_id, row.pending_plan_from
                start = row.next_charge_on
                parked = None
                periods = 0
                while start <= self.as_of:
                    if pending_id and start >= pending_from:
                        plan_id, pending_id, pending_from = pending_id, None, None  # the scheduled downgrade
                    info = self.plans[plan_id]
                    price = info.price_on(start)
                    if price is None:
                        parked = f"plan {info.plan.code} has no price on {start.isoformat()}"
                        break
                    periods += 1
                    if periods > MAX_PERIODS_PER_RUN:
                        parked = f"more than {MAX_PERIODS_PER_RUN} periods due"
                        break
                    period_start, period_end, full_start = period_for(info.plan, start, row.anchor_day)
                    amount, numerator, denominator = amount_for(info.plan, price, period_start, period_end, full_start)
                    skip = info.plan.charge_only_if_online and (
                        (row.subscriber_id, period_start - dt.timedelta(days=1)) not in online
                    )
                    if amount > 0 and not skip:
                        key = f"fee:{row.id}:{period_start.isoformat()}"
                        legs = [(row.account_id, -amount), (info.revenue_account_id, amount)]
                        txs.append(
                            (
                                key,
                                request_hash(TransactionKind.FEE, period_start, legs),
                                period_start,
                                row.subscriber_id,
                                f"{info.plan.name} {period_start:%d.%m.%Y}–"
                                f"{period_end - dt.timedelta(days=1):%d.%m.%Y}",
                            )
                        )
                        charges.append(
                            (
                                key,
                                row.id,
                                period_start,
                                period_end,
                                amount,
                                price.pk,
                                numerator,
                                denominator,
                                row.account_id,
                                info.revenue_account_id,
                            )
                        )
                    start = period_end
                if parked:
                    self.result.parked.append((row.id, parked))
                    logger.warning("billing run %s: subscription %s parked: %s", self.as_of, row.id, parked)
                if start != row.next_charge_on or plan_id != row.plan_id:
                    cursors.append((row.id, start, plan_id, pending_id, pending_from))
            self._write(txs, charges, cursors)
            self.result.subscriptions += len(rows)

    def _write(self, txs, charges, cursors) -> None:
        if txs:
            tx_ids = self._insert_transactions(txs)
            fresh = [c for c in charges if c[0] in tx_ids]
            self._insert_charges_and_postings(fresh, tx_ids)
            self.result.charges += len(fresh)
            self.result.amount += sum((c[4] for c in fresh), Decimal("0.00"))
        if cursors:
            self._advance_cursors(cursors)

    def _insert_transactions(self, txs) -> dict[str, int]:
        keys = [t[0] for t in txs]
        with connection.cursor() as cursor:
            if self.pg:
                cursor.execute(
                    "INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, "
                    "created_at, subscriber_id, memo) SELECT k, h, 'fee', d, %s, s, m FROM unnest(%s::text[], "
                    "%s::text[], %s::date[], %s::bigint[], %s::text[]) AS t(k, h, d, s, m) "
                    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key, id",
                    [
                        self.created_at,
                        keys,
                        [t[1] for t in txs],
                        [t[2] for t in txs],
                        [t[3] for t in txs],
                        [t[4] for t in txs],
                    ],
                )
                return dict(cursor.fetchall())
            # SQLite: the database is locked for this transaction (IMMEDIATE), so existing keys cannot change
            # under us; the unique key still refuses a duplicate if one slipped through.
            existing = _existing_keys(cursor, keys)
            new = [t for t in txs if t[0] not in existing]
            cursor.executemany(
                "INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, "
                "created_at, subscriber_id, memo) VALUES (%s, %s, 'fee', %s, %s, %s, %s)",
                [(k, h, d, self.created_at, s, m) for k, h, d, s, m in new],
            )
            return _key_ids(cursor, [t[0] for t in new])

    def _insert_charges_and_postings(self, charges, tx_ids: dict[str, int]) -> None:
        if not charges:
            return
        with connection.cursor() as cursor:
            if self.pg:
                cursor.execute(
                    "INSERT INTO billing_charge (subscription_id, kind, period_start, period_end, amount, price_id, "
                    "proration_numerator, proration_denominator, transaction_id) SELECT s, 'fee', ps, pe, a, p, n, "
                    "d, t FROM unnest(%s::bigint[], %s::date[], %s::date[], %s::numeric[], %s::bigint[], "
                    "%s::bigint[], %s::bigint[], %s::bigint[]) AS c(s, ps, pe, a, p, n, d, t)",
                    [
                        [c[1] for c in charges],
                        [c[2] for c in charges],
                        [c[3] for c in charges],
                        [c[4] for c in charges],
                        [c[5] for c in charges],
                        [c[6] for c in charges],
                        [c[7] for c in charges],
                        [tx_ids[c[0]] for c in charges],
                    ],
                )
                # Both legs of every transaction in one statement: the zero-sum trigger sees them together.
                cursor.execute(
                    "INSERT INTO billing_posting (transaction_id, account_id, amount) "
                    "SELECT t, a, m FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[]) AS p(t, a, m)",
                    [
                        [tx_ids[c[0]] for c in charges for _ in (0, 1)],
                        [acc for c in charges for acc in (c[8], c[9])],
                        [m for c in charges for m in (-c[4], c[4])],
                    ],
                )
                return
            cursor.executemany(
                "INSERT INTO billing_charge (subscription_id, kind, period_start, period_end, amount, price_id, "
                "proration_numerator, proration_denominator, transaction_id, event_id) "
                "VALUES (%s, 'fee', %s, %s, %s, %s, %s, %s, %s, NULL)",
                [(c[1], c[2], c[3], c[4], c[5], c[6], c[7], tx_ids[c[0]]) for c in charges],
            )
            cursor.executemany(
                "INSERT INTO billing_posting (transaction_id, account_id, amount) VALUES (%s, %s, %s)",
                [(tx_ids[c[0]], acc, m) for c in charges for acc, m in ((c[8], -c[4]), (c[9], c[4]))],
            )

    def _advance_cursors(self, cursors) -> None:
        with connection.cursor() as cursor:
            if self.pg:
                cursor.execute(
                    "UPDATE billing_subscription s SET next_charge_on = v.d, plan_id = v.p, pending_plan_id = v.pp, "
                    "pending_plan_from = v.pf FROM unnest(%s::bigint[], %s::date[], %s::bigint[], %s::bigint[], "
                    "%s::date[]) AS v(id, d, p, pp, pf) WHERE s.id = v.id",
                    [
                        [c[0] for c in cursors],
                        [c[1] for c in cursors],
                        [c[2] for c in cursors],
                        [c[3] for c in cursors],
                        [c[4] for c in cursors],
                    ],
                )
            else:
                cursor.executemany(
                    "UPDATE billing_subscription SET next_charge_on = %s, plan_id = %s, pending_plan_id = %s, "
                    "pending_plan_from = %s WHERE id = %s",
                    [(d, p, pp, pf, i) for i, d, p, pp, pf in cursors],
                )


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _existing_keys(cursor, keys: list[str]) -> set[str]:
    found = set()
    for start in range(0, len(keys), 900):
        part = keys[start : start + 900]
        cursor.execute(
            f"SELECT idempotency_key FROM billing_ledgertransaction WHERE idempotency_key IN "
            f"({','.join('%s' for _ in part)})",
            part,
        )
        found.update(k for (k,) in cursor.fetchall())
    return found


def _key_ids(cursor, keys: list[str]) -> dict[str, int]:
    ids = {}
    for start in range(0, len(keys), 900):
        part = keys[start : start + 900]
        cursor.execute(
            f"SELECT idempotency_key, id FROM billing_ledgertransaction WHERE idempotency_key IN "
            f"({','.join('%s' for _ in part)})",
            part,
        )
        ids.update(cursor.fetchall())
    return ids


def run_billing(as_of: dt.date | None = None, *, chunk_size: int | None = None) -> RunResult:
    """Charge everything due up to ``as_of`` (default: today). Safe to retry, interrupt and run twice at once."""
    return BillingRun(as_of or clock.today(), chunk_size=chunk_size).run()
