"""How one chunk of a billing run is written (ADR 0010): the fees COPYed into a temporary table and written with
their batch transactions and postings in one statement on PostgreSQL, or with ``executemany`` on SQLite; the
cursors moved; the unbilled days of online-only plans kept. ``engine.BillingRun`` prices a chunk and calls these
inside the chunk's transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.utils.translation import gettext

from .ledger import BATCH_KEY_PREFIX


def write_unbilled(cursor, unbilled: list[tuple[int, dt.date, int, int]], *, pg: bool) -> None:
    """The days of online-only plans skipped for lack of an online day, for later runs to look at again."""
    cursor.executemany(
        "INSERT INTO billing_unbilledday (subscription_id, day, price_id, cycle) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (subscription_id, day) DO NOTHING",
        [(sid, day if pg else day.isoformat(), price_id, cycle) for sid, day, price_id, cycle in unbilled],
    )


def batches_of(charges, ids, as_of: dt.date) -> dict[dt.date, _Batch]:
    """One ledger transaction per distinct period start in the chunk (all of them the run's day, bar a
    subscription catching up), with the ``ids`` given (as many as there are starts)."""
    starts = sorted({c[3].start for c in charges})
    return {start: _Batch.of(tx_id, start, as_of) for tx_id, start in zip(ids, starts, strict=True)}


def batch_count(charges) -> int:
    return len({c[3].start for c in charges})


def write_postgresql(cursor, charges, cursors, *, created_at, as_of: dt.date) -> tuple[int, Decimal]:
    """COPY the chunk into a temporary table, then one statement writes charges, transactions and postings.

    COPY is the cheapest way in (no per-value quoting on the client, no parameter arrays). The charges go
    first, ``ON CONFLICT DO NOTHING`` on their unique period: that is the exactly-once key, and a stale
    cursor costs nothing but the conflict check. Only batches with a new charge get their transaction, and
    its postings are the new charges summed per subscriber account and per revenue account, all in one
    INSERT, so the statement trigger checks every batch's zero sum and moves each balance once.
    """
    for statement in STAGE_TABLES:
        cursor.execute(statement)
    # Emptied at commit; rows left by an earlier call in the caller's same transaction go now.
    cursor.execute("DELETE FROM billing_run_fee")
    cursor.execute("DELETE FROM billing_run_cursor")
    charged, amount = 0, Decimal("0.00")
    if charges:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('billing_ledgertransaction', 'id')) FROM generate_series(1, %s)",
            [batch_count(charges)],
        )
        batches = batches_of(charges, [tx_id for (tx_id,) in cursor.fetchall()], as_of)
        _copy(
            cursor,
            "billing_run_fee",
            "".join(
                f"{batches[p.start].id}\t{subscription_id}\t{p.start_text}\t{p.end_text}\t{p.amount_text}\t"
                f"{p.price_id}\t{_copy_value(p.numerator)}\t{_copy_value(p.denominator)}\t{account_id}\t"
                f"{p.revenue_account_id}\t{cycle}\t{p.base_fee_text or NULL}\t"
                f"{p.discount_text if p.discount else NULL}\t{p.discount_base_text or NULL}\n"
                for subscription_id, _subscriber_id, account_id, p, cycle in charges
            ),
        )
        rows = list(batches.values())
        discounted = any(c[3].discount for c in charges)
        cursor.execute(
            WRITE_CHARGES.format(discounts=WRITE_DISCOUNTS if discounted else ""),
            [
                created_at,
                [b.id for b in rows],
                [b.key for b in rows],
                [b.request_hash for b in rows],
                [b.start for b in rows],
                [b.memo for b in rows],
            ],
        )
        charged, amount = cursor.fetchone()
    if cursors:
        _copy(
            cursor,
            "billing_run_cursor",
            "".join(
                f"{sid}\t{start.isoformat()}\t{plan}\t{_copy_value(pending)}\t"
                f"{pending_from.isoformat() if pending_from else NULL}\n"
                for sid, start, plan, pending, pending_from in cursors
            ),
        )
        # The id range lets the planner read only the chunk's rows: the temporary table has no statistics,
        # and without it the join is planned as a scan of every subscription.
        cursor.execute(
            "UPDATE billing_subscription s SET next_charge_on = c.next_charge_on, plan_id = c.plan_id, "
            "pending_plan_id = c.pending_plan_id, pending_plan_from = c.pending_plan_from "
            "FROM billing_run_cursor c WHERE s.id = c.subscription_id AND s.id BETWEEN %s AND %s",
            [min(c[0] for c in cursors), max(c[0] for c in cursors)],
        )
    return charged, amount


def write_sqlite(cursor, charges, cursors, *, created_at, as_of: dt.date) -> tuple[int, Decimal]:
    """``executemany`` with ids chosen here: the transaction holds SQLite's write lock (IMMEDIATE), so the
    ids after the current maxima are free, and the charges that exist afterwards are the ones that were new
    (``ON CONFLICT DO NOTHING`` on their unique period, as on PostgreSQL). Then the transactions of the
    batches that got a new charge, and their postings summed per account."""
    charged, amount = 0, Decimal("0.00")
    if charges:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM billing_ledgertransaction")
        first_tx = cursor.fetchone()[0] + 1
        batches = batches_of(charges, range(first_tx, first_tx + batch_count(charges)), as_of)
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM billing_charge")
        first_id = cursor.fetchone()[0] + 1
        cursor.executemany(
            "INSERT INTO billing_charge (id, subscription_id, kind, period_start, period_end, amount, price_id, "
            "proration_numerator, proration_denominator, transaction_id, event_id, cycle, reverses_id, base_fee) "
            "VALUES (%s, %s, 'fee', %s, %s, %s, %s, %s, %s, %s, NULL, %s, NULL, %s) "
            "ON CONFLICT (subscription_id, period_start, cycle) WHERE kind = 'fee' DO NOTHING",
            [
                (
                    first_id + n,
                    subscription_id,
                    p.start_text,
                    p.end_text,
                    p.amount_text,
                    p.price_id,
                    p.numerator,
                    p.denominator,
                    batches[p.start].id,
                    cycle,
                    p.base_fee_text,
                )
                for n, (subscription_id, _subscriber_id, _account_id, p, cycle) in enumerate(charges)
            ],
        )
        cursor.execute("SELECT id FROM billing_charge WHERE id >= %s", [first_id])
        written = {charge_id for (charge_id,) in cursor.fetchall()}
        fresh = [c for n, c in enumerate(charges) if first_id + n in written]
        discounted = [c for c in fresh if c[3].discount]
        if discounted:
            # Beside each new fee its discount line (billing/pricing), after the fees' ids.
            first_discount = first_id + len(charges)
            cursor.executemany(
                "INSERT INTO billing_charge (id, subscription_id, kind, period_start, period_end, amount, price_id, "
                "proration_numerator, proration_denominator, transaction_id, event_id, cycle, reverses_id, base_fee) "
                "VALUES (%s, %s, 'discount', %s, %s, %s, %s, %s, %s, %s, NULL, %s, NULL, %s)",
                [
                    (
                        first_discount + n,
                        subscription_id,
                        p.start_text,
                        p.end_text,
                        str(-p.discount),
                        p.price_id,
                        p.numerator,
                        p.denominator,
                        batches[p.start].id,
                        cycle,
                        p.discount_base_text,
                    )
                    for n, (subscription_id, _subscriber_id, _account_id, p, cycle) in enumerate(discounted)
                ],
            )
        legs: dict[tuple[int, int], Decimal] = {}
        for _subscription_id, _subscriber_id, account_id, p, _cycle in fresh:
            tx_id = batches[p.start].id
            net = p.amount - p.discount
            legs[(tx_id, account_id)] = legs.get((tx_id, account_id), Decimal("0.00")) - net
            revenue = (tx_id, p.revenue_account_id)
            legs[revenue] = legs.get(revenue, Decimal("0.00")) + net
        legs = {leg: total for leg, total in legs.items() if total}
        leg_counts: dict[int, int] = {}
        for tx_id, _account_id in legs:
            leg_counts[tx_id] = leg_counts.get(tx_id, 0) + 1
        created_at = connection.ops.adapt_datetimefield_value(created_at)
        cursor.executemany(
            "INSERT INTO billing_ledgertransaction (id, idempotency_key, request_hash, kind, effective_date, "
            "created_at, subscriber_id, memo, legs) VALUES (%s, %s, %s, 'fee', %s, %s, NULL, %s, %s)",
            [
                (b.id, b.key, b.request_hash, b.start.isoformat(), created_at, b.memo, leg_counts[b.id])
                for b in batches.values()
                if b.id in leg_counts
            ],
        )
        # One transaction's legs one after another: on SQLite a transaction is sealed once another's legs follow.
        cursor.executemany(
            "INSERT INTO billing_posting (transaction_id, account_id, amount) VALUES (%s, %s, %s)",
            [(tx_id, account_id, str(total)) for (tx_id, account_id), total in sorted(legs.items())],
        )
        charged = len(fresh)
        amount = sum((c[3].amount - c[3].discount for c in fresh), Decimal("0.00"))
    if cursors:
        cursor.executemany(
            "UPDATE billing_subscription SET next_charge_on = %s, plan_id = %s, pending_plan_id = %s, "
            "pending_plan_from = %s WHERE id = %s",
            [(d.isoformat(), p, pp, pf.isoformat() if pf else None, i) for i, d, p, pp, pf in cursors],
        )
    return charged, amount


@dataclass(frozen=True)
class _Batch:
    """The ledger transaction that carries a chunk's fees of one period start.

    Its key holds its own id (``fees:<date>:<id>``): a batch is never retried under its key; what makes each
    fee exactly-once is the charge's unique period, and a retried chunk writes a new batch of whatever is
    still missing. The request hash is the key's, for the same reason.
    """

    id: int
    start: dt.date
    key: str
    request_hash: str
    memo: str

    @classmethod
    def of(cls, tx_id: int, start: dt.date, as_of: dt.date) -> _Batch:
        key = f"{BATCH_KEY_PREFIX}{start.isoformat()}:{tx_id}"
        memo = gettext("Billing run of %(date)s") % {"date": as_of.isoformat()}
        return cls(tx_id, start, key, hashlib.sha256(key.encode()).hexdigest(), memo)


# Temporary tables a chunk is COPYed into (PostgreSQL), one set per connection, emptied at every commit.
STAGE_TABLES = [
    """CREATE TEMPORARY TABLE IF NOT EXISTS billing_run_fee (
        transaction_id bigint, subscription_id bigint, period_start date, period_end date, amount numeric(14, 2),
        price_id bigint, numerator bigint, denominator bigint, account_id bigint, revenue_account_id bigint,
        cycle integer, base_fee numeric(14, 2), discount numeric(14, 2), discount_base numeric(14, 2)
    ) ON COMMIT DELETE ROWS""",
    """CREATE TEMPORARY TABLE IF NOT EXISTS billing_run_cursor (
        subscription_id bigint, next_charge_on date, plan_id bigint, pending_plan_id bigint, pending_plan_from date
    ) ON COMMIT DELETE ROWS""",
]
# A fee's discount (billing/pricing) is a charge line of its own in the fee's batch, written only beside a fee
# that is new; the postings carry the fee net of it (revenue is net). ``{discounts}`` is empty when the chunk has
# none: the statement is then what it was before discounts existed.
WRITE_CHARGES = """
WITH charge AS (
    INSERT INTO billing_charge (subscription_id, kind, period_start, period_end, amount, price_id,
                                proration_numerator, proration_denominator, transaction_id, cycle, base_fee)
    SELECT subscription_id, 'fee', period_start, period_end, amount, price_id, numerator, denominator,
           transaction_id, cycle, base_fee
    FROM billing_run_fee
    ON CONFLICT (subscription_id, period_start, cycle) WHERE kind = 'fee' DO NOTHING
    RETURNING subscription_id, period_start, amount, transaction_id
), fresh AS (
    SELECT s.transaction_id, s.account_id, s.revenue_account_id, s.amount - COALESCE(s.discount, 0) AS amount
    FROM billing_run_fee s JOIN charge c USING (subscription_id, period_start)
){discounts}, tx AS (
    INSERT INTO billing_ledgertransaction (id, idempotency_key, request_hash, kind, effective_date, created_at, memo)
    SELECT b.id, b.key, b.hash, 'fee', b.effective_date, %s, b.memo
    FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::date[], %s::text[]) AS b(id, key, hash, effective_date, memo)
    WHERE b.id IN (SELECT transaction_id FROM charge)
), posting AS (
    INSERT INTO billing_posting (transaction_id, account_id, amount)
    SELECT transaction_id, account_id, -SUM(amount) FROM fresh GROUP BY transaction_id, account_id
    HAVING SUM(amount) <> 0
    UNION ALL
    SELECT transaction_id, revenue_account_id, SUM(amount) FROM fresh GROUP BY transaction_id, revenue_account_id
    HAVING SUM(amount) <> 0
)
SELECT COUNT(*), COALESCE((SELECT SUM(amount) FROM fresh), 0) FROM charge
"""
WRITE_DISCOUNTS = """, discount AS (
    INSERT INTO billing_charge (subscription_id, kind, period_start, period_end, amount, price_id,
                                proration_numerator, proration_denominator, transaction_id, cycle, base_fee)
    SELECT s.subscription_id, 'discount', s.period_start, s.period_end, -s.discount, s.price_id, s.numerator,
           s.denominator, s.transaction_id, s.cycle, s.discount_base
    FROM billing_run_fee s JOIN charge c USING (subscription_id, period_start)
    WHERE s.discount IS NOT NULL
)"""
NULL = "\\N"


def _copy_value(value) -> str:
    return NULL if value is None else str(value)


def _copy(cursor, table: str, data: str) -> None:
    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
        copy.write(data.encode())
