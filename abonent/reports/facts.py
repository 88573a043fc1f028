"""The summary tables (``RevenueFact``, ``PaymentFact``): the ledger summed by day, branch, service, plan, kind and
channel, so that a report over a year of a million subscribers sums a few thousand rows instead of the ledger.

**Who keeps them.** One writer: the worker's rollup (``do_roll_up_facts``, every minute, and ``abonent reports
rollup``). It reads what was written since its last position in the two append-only tables every writer of money
goes through: ``billing.Charge`` (the billing run, activation, plan change, freeze, reversals and credits, usage and
time rating, turbo, time packages, discounts) and ``billing.LedgerTransaction`` with its postings (one-off
services, promised-payment fees, prepaid cards, bonuses, and every payment, cancellation and refund of every
channel). A writer added later is counted without changing it, and none of them ever updates a fact row: the
billing run's parallel chunks share no row (DESIGN.md 4a's hot row), and its speed does not change.

**The watermark, and why no row is lost.** Ids come from a sequence and commit out of order: the run's chunk that
took ids 100–199 may commit after the one that took 200–299, so "every id above the last one seen" would skip 100–199
for good. ``safe_high_water`` moves the position only to an id ``H`` below which nothing can still commit: it reads
the largest committed ids, then lists every transaction running at that moment (their virtual transaction ids in
``pg_locks``) and waits until all of them have ended. An id up to ``H`` was taken before ``H`` was read, so by a
transaction that had committed, rolled back or was running then; once the running ones are over, every id up to
``H`` is committed or will never be. A transaction that outlives the deadline (``WAIT_SECONDS``) leaves the position
where it was, and the next run tries again. SQLite has one writer at a time, which holds the write lock from the
first id it takes to its commit: the largest committed ids are safe as they are.

**What they count.** Accrual: each charge on the first day of the period it is for (``period_start``), by the
subscriber's branch, the subscription's service, the plan of the price it was charged at (else the subscription's),
and its kind, credits and reversals negative; plus, on their date, the revenue postings of transactions that carry
no charges. Cash: minus the postings on the channels' cash and clearing accounts, on the transaction's date (a
payment +, a cancellation or refund −). ``verify_facts`` proves both equal the ledger to the kopeck.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction

from abonent.billing.models import AccountKind, Charge, LedgerAccount, LedgerTransaction, Posting, TransactionKind
from abonent.billing.models import Subscription as BillingSubscription
from abonent.catalog.models import PlanPrice
from abonent.core import clock
from abonent.core.money import quantize
from abonent.subscribers.models import Subscriber

from .models import FactWatermark, PaymentFact, RevenueFact

log = logging.getLogger(__name__)

CHARGES, TRANSACTIONS = "charges", "transactions"
WAIT_SECONDS = 20.0
# Rows of a source read per statement by a rebuild: bounded memory whatever the ledger's size.
REBUILD_STEP = 2_000_000
ZERO = Decimal("0.00")
# Transactions whose revenue postings are the sum of their charges (``ledger verify`` proves it), counted from the
# charges; a reversal of a whole transaction (``reverses`` set) carries none and counts from its postings.
CHARGE_TRANSACTION_KINDS = (
    TransactionKind.FEE,
    TransactionKind.ACTIVATION,
    TransactionKind.PLAN_CHANGE,
    TransactionKind.FREEZE,
    TransactionKind.TURBO,
    TransactionKind.USAGE,
    TransactionKind.TIME,
    TransactionKind.TIME_PACKAGE,
    TransactionKind.REVERSAL,
)
CASH_ACCOUNT_KINDS = (AccountKind.CASH, AccountKind.CLEARING)
CHARGE_SOURCE, LEDGER_SOURCE = "c", "t"


def _money(value) -> Decimal:
    return ZERO if value is None else quantize(Decimal(str(value)))


def _day(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _tables() -> dict[str, str]:
    return {
        "charge": Charge._meta.db_table,
        "subscription": BillingSubscription._meta.db_table,
        "subscriber": Subscriber._meta.db_table,
        "price": PlanPrice._meta.db_table,
        "posting": Posting._meta.db_table,
        "account": LedgerAccount._meta.db_table,
        "tx": LedgerTransaction._meta.db_table,
    }


def _in(values) -> str:
    return ", ".join(f"'{v!s}'" for v in values)


# --- reading the sources ---------------------------------------------------------------------------------------


def _charge_sql(since_day: bool) -> str:
    t = _tables()
    return f"""
        SELECT c.period_start, COALESCE(s.branch_id, 0), sub.service_id, COALESCE(pp.plan_id, sub.plan_id), c.kind,
               SUM(c.amount), COUNT(*)
        FROM {t["charge"]} c
        JOIN {t["subscription"]} sub ON sub.id = c.subscription_id
        JOIN {t["subscriber"]} s ON s.id = sub.subscriber_id
        LEFT JOIN {t["price"]} pp ON pp.id = c.price_id
        WHERE c.id > %s AND c.id <= %s {"AND c.period_start >= %s" if since_day else ""}
        GROUP BY c.period_start, COALESCE(s.branch_id, 0), sub.service_id, COALESCE(pp.plan_id, sub.plan_id), c.kind
    """


def _ledger_sql(account_kinds, *, since_day: bool, revenue: bool) -> str:
    """Per day, branch, account and transaction kind: the postings on revenue accounts (revenue is credited: +), or
    minus those on the cash and clearing accounts (money in is taken from the channel: −); for revenue only the
    transactions that carry no charges."""
    t = _tables()
    only = f"AND (t.kind NOT IN ({_in(CHARGE_TRANSACTION_KINDS)}) OR t.reverses_id IS NOT NULL)" if revenue else ""
    return f"""
        SELECT t.effective_date, COALESCE(s.branch_id, 0), a.id, t.kind, {"" if revenue else "-"}SUM(p.amount),
               COUNT(DISTINCT t.id)
        FROM {t["posting"]} p
        JOIN {t["account"]} a ON a.id = p.account_id
        JOIN {t["tx"]} t ON t.id = p.transaction_id
        LEFT JOIN {t["subscriber"]} s ON s.id = t.subscriber_id
        WHERE a.kind IN ({_in(account_kinds)}) AND p.transaction_id > %s AND p.transaction_id <= %s {only}
              {"AND t.effective_date >= %s" if since_day else ""}
        GROUP BY t.effective_date, COALESCE(s.branch_id, 0), a.id, t.kind
    """


@dataclass
class Sums:
    """Facts summed in memory before they are written: ``{dims: [amount, count]}``."""

    revenue: dict[tuple, list] = field(default_factory=lambda: defaultdict(lambda: [ZERO, 0]))
    payments: dict[tuple, list] = field(default_factory=lambda: defaultdict(lambda: [ZERO, 0]))

    def add(self, table: dict, key: tuple, amount, count: int) -> None:
        entry = table[key]
        entry[0] += _money(amount)
        entry[1] += int(count)


def _accounts() -> dict[int, tuple[str, int]]:
    """Every revenue, cash and clearing account: (channel or "", service id or 0)."""
    rows = LedgerAccount.objects.filter(kind__in=[AccountKind.REVENUE, *CASH_ACCOUNT_KINDS]).values_list(
        "id", "code", "service_id"
    )
    return {pk: (code.split(":", 1)[1] if ":" in code else code, service_id or 0) for pk, code, service_id in rows}


def read_sources(
    sums: Sums, charges: tuple[int, int], transactions: tuple[int, int], *, since: dt.date | None = None, using=None
) -> Sums:
    """Add to ``sums`` the charges with ids in ``(lo, hi]`` and the transactions with ids in ``(lo, hi]`` (those on or
    after ``since`` only, when given)."""
    db = connection if using is None else using
    extra = [since] if since else []
    accounts = _accounts()
    with db.cursor() as cursor:
        for lo, hi in _steps(*charges):
            cursor.execute(_charge_sql(bool(since)), [lo, hi, *extra])
            for day, branch, service, plan, kind, amount, count in cursor.fetchall():
                sums.add(sums.revenue, (_day(day), branch, service, plan or 0, kind, CHARGE_SOURCE), amount, count)
        for lo, hi in _steps(*transactions):
            cursor.execute(_ledger_sql([AccountKind.REVENUE], since_day=bool(since), revenue=True), [lo, hi, *extra])
            for day, branch, account, kind, amount, count in cursor.fetchall():
                service = accounts.get(account, ("", 0))[1]
                sums.add(sums.revenue, (_day(day), branch, service, 0, kind, LEDGER_SOURCE), amount, count)
            cursor.execute(_ledger_sql(CASH_ACCOUNT_KINDS, since_day=bool(since), revenue=False), [lo, hi, *extra])
            for day, branch, account, kind, amount, count in cursor.fetchall():
                channel = accounts.get(account, (str(account), 0))[0]
                sums.add(sums.payments, (_day(day), branch, channel, kind), amount, count)
    return sums


def _steps(lo: int, hi: int):
    while lo < hi:
        yield lo, min(hi, lo + REBUILD_STEP)
        lo += REBUILD_STEP


# --- the safe position -----------------------------------------------------------------------------------------


def _largest_ids(cursor) -> tuple[int, int]:
    t = _tables()
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t['charge']}")
    charge = cursor.fetchone()[0]
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t['tx']}")
    return charge, cursor.fetchone()[0]


def safe_high_water(*, wait_seconds: float = WAIT_SECONDS) -> tuple[int, int] | None:
    """The largest ids of charges and transactions below which no row can still be committed, or ``None`` when a
    transaction running when they were read has not ended within ``wait_seconds`` (module docstring)."""
    with connection.cursor() as cursor:
        ids = _largest_ids(cursor)
        if connection.vendor != "postgresql":
            return ids
        cursor.execute(
            # Only this database's: another database's transactions take no id of ours. Not those waiting for a
            # lock this one holds (another rollup or a rebuild queued on the positions): they cannot end before this
            # one does, and only the rollups and rebuilds lock the positions, which write no charge or transaction.
            "SELECT array_agg(l.virtualxid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'virtualxid' AND l.mode = 'ExclusiveLock' AND l.granted "
            "AND l.pid <> pg_backend_pid() AND a.datname = current_database() "
            "AND NOT pg_backend_pid() = ANY(pg_blocking_pids(l.pid))"
        )
        running = cursor.fetchone()[0] or []
        deadline = time.monotonic() + wait_seconds
        while running:
            cursor.execute(
                # One that has come to wait for this one's lock since is done with for the same reason.
                "SELECT array_agg(virtualxid) FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY(%s) "
                "AND mode = 'ExclusiveLock' AND granted AND NOT pg_backend_pid() = ANY(pg_blocking_pids(pid))",
                [running],
            )
            running = cursor.fetchone()[0] or []
            if not running:
                break
            if time.monotonic() > deadline:
                log.warning(
                    "reports: %d transactions still running after %.0f s; facts not moved", len(running), wait_seconds
                )
                return None
            time.sleep(0.05)
    return ids


# --- writing the facts -----------------------------------------------------------------------------------------


def _write(sums: Sums) -> None:
    revenue_table, payment_table = RevenueFact._meta.db_table, PaymentFact._meta.db_table
    pg = connection.vendor == "postgresql"

    def day(value: dt.date):
        return value if pg else value.isoformat()

    with connection.cursor() as cursor:
        if sums.revenue:
            cursor.executemany(
                f"INSERT INTO {revenue_table} (day, branch_id, service_id, plan_id, kind, source, amount, count) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (day, branch_id, service_id, plan_id, kind, source) DO UPDATE SET "
                f"amount = {revenue_table}.amount + excluded.amount, count = {revenue_table}.count + excluded.count",
                [(day(k[0]), *k[1:], str(v[0]), v[1]) for k, v in sums.revenue.items()],
            )
        if sums.payments:
            cursor.executemany(
                f"INSERT INTO {payment_table} (day, branch_id, channel, kind, amount, count) "
                "VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (day, branch_id, channel, kind) DO UPDATE SET "
                f"amount = {payment_table}.amount + excluded.amount, count = {payment_table}.count + excluded.count",
                [(day(k[0]), *k[1:], str(v[0]), v[1]) for k, v in sums.payments.items()],
            )


def _positions(*, skip_locked: bool = False) -> dict[str, FactWatermark]:
    """The positions, locked; with ``skip_locked``, empty when a rollup or a rebuild holds them."""
    for source in (CHARGES, TRANSACTIONS):
        FactWatermark.objects.get_or_create(source=source)
    # The row locks serialise rollups and rebuilds: two at once would count the same rows twice.
    locked = FactWatermark.objects.select_for_update(skip_locked=skip_locked).order_by("source")
    positions = {w.source: w for w in locked}
    return positions if len(positions) == 2 else {}


def _move(positions: dict[str, FactWatermark], high: tuple[int, int]) -> None:
    now = clock.now()
    for source, last_id in zip((CHARGES, TRANSACTIONS), high, strict=True):
        position = positions[source]
        position.last_id, position.rolled_up_at = last_id, now
        position.save(update_fields=["last_id", "rolled_up_at"])


@dataclass(frozen=True)
class RollupResult:
    charges: int
    transactions: int
    moved: bool


@transaction.atomic
def do_roll_up_facts(*, wait_seconds: float = WAIT_SECONDS) -> RollupResult:
    """Add to the facts what was committed since the last rollup, up to the safe position; one rollup at a time."""
    # Another rollup or a rebuild at work (a slow one past its minute): this one has nothing to add. Queueing
    # behind a rebuild of a big ledger would hold a worker for as long, with no deadline.
    positions = _positions(skip_locked=True)
    if not positions:
        return RollupResult(0, 0, False)
    low = (positions[CHARGES].last_id, positions[TRANSACTIONS].last_id)
    high = safe_high_water(wait_seconds=wait_seconds)
    if high is None:
        return RollupResult(low[0], low[1], False)
    # A rebuild may have put the position past the largest id (a table emptied in tests): never backwards.
    high = (max(high[0], low[0]), max(high[1], low[1]))
    _write(read_sources(Sums(), (low[0], high[0]), (low[1], high[1])))
    _move(positions, high)
    return RollupResult(high[0], high[1], True)


@transaction.atomic
def do_rebuild_facts(*, since: dt.date | None = None, wait_seconds: float = WAIT_SECONDS) -> RollupResult:
    """Count the facts again from the ledger: all of them, or those of ``since`` and after (the facts before it are
    kept). For an install that had a ledger before the facts, and after a repair of the ledger."""
    positions = _positions()
    high = safe_high_water(wait_seconds=wait_seconds)
    if high is None:
        raise RuntimeError("transactions are still running: try again")
    low = (positions[CHARGES].last_id, positions[TRANSACTIONS].last_id)
    high = (max(high[0], low[0]), max(high[1], low[1]))
    revenue, payments = RevenueFact.objects.all(), PaymentFact.objects.all()
    if since is not None:
        # What came since the last rollup, of every day first, so that the days before ``since`` are whole too.
        _write(read_sources(Sums(), (low[0], high[0]), (low[1], high[1])))
        revenue, payments = revenue.filter(day__gte=since), payments.filter(day__gte=since)
    revenue.delete()
    payments.delete()
    _write(read_sources(Sums(), (0, high[0]), (0, high[1]), since=since))
    _move(positions, high)
    return RollupResult(high[0], high[1], True)


# --- the proof -------------------------------------------------------------------------------------------------


@dataclass
class Verification:
    """What ``verify_facts`` found: the differences (empty when the facts are the ledger's) and the totals."""

    differences: list[str]
    revenue: Decimal
    payments: Decimal
    position: tuple[int, int]

    @property
    def ok(self) -> bool:
        return not self.differences


def _ledger_total(cursor, account_kinds, high_tx: int, *, sign: str) -> Decimal:
    t = _tables()
    cursor.execute(
        f"SELECT {sign}SUM(p.amount) FROM {t['posting']} p JOIN {t['account']} a ON a.id = p.account_id "
        f"WHERE a.kind IN ({_in(account_kinds)}) AND p.transaction_id <= %s",
        [high_tx],
    )
    return _money(cursor.fetchone()[0])


def verify_facts() -> Verification:
    """Count the facts again from the ledger up to their position and compare: per day, service, kind and source
    for revenue, per day, channel and kind for payments, amounts and counts to the kopeck; and the totals against
    every revenue posting and every cash and clearing posting, which no classification of transactions can miss.
    Branch and plan are the subscriber's and subscription's when the rollup read them and are not compared."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            # One snapshot for the facts, their position and the ledger: a rollup committing meanwhile is not seen.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        positions = {w.source: w.last_id for w in FactWatermark.objects.all()}
        high = (positions.get(CHARGES, 0), positions.get(TRANSACTIONS, 0))
        expected = read_sources(Sums(), (0, high[0]), (0, high[1]))
        stored_revenue: dict[tuple, list] = defaultdict(lambda: [ZERO, 0])
        for row in RevenueFact.objects.values_list("day", "service_id", "kind", "source", "amount", "count"):
            entry = stored_revenue[row[:4]]
            entry[0] += row[4]
            entry[1] += row[5]
        stored_payments: dict[tuple, list] = defaultdict(lambda: [ZERO, 0])
        for row in PaymentFact.objects.values_list("day", "channel", "kind", "amount", "count"):
            entry = stored_payments[row[:3]]
            entry[0] += row[3]
            entry[1] += row[4]
        with connection.cursor() as cursor:
            revenue_total = _ledger_total(cursor, [AccountKind.REVENUE], high[1], sign="")
            payments_total = _ledger_total(cursor, CASH_ACCOUNT_KINDS, high[1], sign="-")
    want_revenue: dict[tuple, list] = defaultdict(lambda: [ZERO, 0])
    for (day, _branch, service, _plan, kind, source), (amount, count) in expected.revenue.items():
        want_revenue[(day, service, kind, source)][0] += amount
        want_revenue[(day, service, kind, source)][1] += count
    want_payments: dict[tuple, list] = defaultdict(lambda: [ZERO, 0])
    for (day, _branch, channel, kind), (amount, count) in expected.payments.items():
        want_payments[(day, channel, kind)][0] += amount
        want_payments[(day, channel, kind)][1] += count
    differences = _compare("revenue", want_revenue, stored_revenue) + _compare(
        "payments", want_payments, stored_payments
    )
    facts_revenue = sum((v[0] for v in stored_revenue.values()), ZERO)
    facts_payments = sum((v[0] for v in stored_payments.values()), ZERO)
    if facts_revenue != revenue_total:
        differences.append(f"revenue: facts {facts_revenue} ≠ revenue postings {revenue_total}")
    if facts_payments != payments_total:
        differences.append(f"payments: facts {facts_payments} ≠ cash and clearing postings {payments_total}")
    return Verification(differences, facts_revenue, facts_payments, high)


def _compare(name: str, want: dict, have: dict) -> list[str]:
    differences = []
    for key in sorted(set(want) | set(have), key=str):
        a, b = want.get(key, [ZERO, 0]), have.get(key, [ZERO, 0])
        if (a[0], a[1]) != (b[0], b[1]) and not (a[0] == b[0] == 0 and a[1] == b[1] == 0):
            differences.append(f"{name} {key}: ledger {a[0]} ({a[1]}), facts {b[0]} ({b[1]})")
    return differences
