"""The daily billing run over every active subscription: charges, ledger transactions, postings, balances.

    python bench/billing_run.py [--n 1000000] [--engine postgresql|sqlite] [--workers W] [--chunk-size C]

The database is seeded once (``abonent seed``: subscribers, the demo catalog, one internet subscription each,
about 30 % of them on the daily plan, most with an opening payment) and then reused. The ledger is append-only
(its triggers refuse UPDATE, DELETE and TRUNCATE), so a run cannot be undone between invocations; instead every
invocation bills a new day: the 1st of the month after everything charged so far, with every active cursor
moved there first (untimed set-up, then VACUUM). That is the heaviest real day: every monthly subscription
starts a period and every daily one is charged a day, one charge per subscription. Each invocation therefore
adds n charges, n postings (one per subscriber) and a ledger transaction per chunk, with a posting per revenue
account (ADR 0010); ``--reseed`` starts over. ``migrate`` runs first on the reused database, so a schema change
reaches it without a reseed.

Timed: the run (``BillingRun(date).run()``, the code ``abonent billing run`` calls), then a rerun of the same date
(must write nothing), then ``abonent ledger verify`` over the whole ledger. Target (DESIGN.md §5): 1,000,000
subscriptions in ≤ 60 s on PostgreSQL, ≤ 3 min on SQLite. Progress goes to stderr; the last line on stdout is
the JSON result.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, emit, log, prepare

# As in production: no per-query logging (DEBUG keeps every statement in memory).
os.environ.setdefault("ABONENT_DEBUG", "0")

NAME = "billing_run"
SEEDED_APPS = ("staff", "catalog", "subscribers", "billing")
TARGET_SECONDS = {"postgresql": 60, "sqlite": 180}  # for 1,000,000 subscriptions
TABLES = {
    "transactions": "billing_ledgertransaction",
    "charges": "billing_charge",
    "postings": "billing_posting",
}


def _scalar(sql: str, params=()):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchone()[0]


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _first_of_next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def choose_day() -> dt.date:
    """The 1st of a month on or after every active cursor: nothing on it or after it has been charged."""
    latest = _as_date(_scalar("SELECT MAX(next_charge_on) FROM billing_subscription WHERE status = 'active'"))
    return latest if latest.day == 1 else _first_of_next_month(latest)


def move_cursors(day: dt.date, engine: str) -> int:
    """Every active subscription due exactly on ``day`` (bench set-up, not timed); then VACUUM, as autovacuum
    would have by the next night (it may be off on a benchmark server)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_subscription SET next_charge_on = %s WHERE status = 'active' AND next_charge_on <> %s",
            [day, day],
        )
        moved = cursor.rowcount
    vacuum(engine)
    return moved


def vacuum(engine: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if engine == "postgresql":
            for table in ("billing_subscription", "billing_ledgeraccount", *TABLES.values()):
                cursor.execute(f"VACUUM (ANALYZE) {table}")
        else:
            cursor.execute("ANALYZE")


def high_water() -> dict[str, int]:
    return {name: _scalar(f"SELECT COALESCE(MAX(id), 0) FROM {table}") for name, table in TABLES.items()}


def rows_since(before: dict[str, int]) -> dict[str, int]:
    rows = {
        name: _scalar(f"SELECT COUNT(*) FROM {table} WHERE id > %s", [before[name]]) for name, table in TABLES.items()
    }
    # Balances the run moved: subscriber accounts with a new posting (the trigger updates each once per statement).
    rows["balances"] = _scalar(
        "SELECT COUNT(DISTINCT p.account_id) FROM billing_posting p "
        "JOIN billing_ledgeraccount a ON a.id = p.account_id AND a.kind = 'subscriber' WHERE p.id > %s",
        [before["postings"]],
    )
    return rows


def main() -> None:
    parser = base_parser(NAME, default_n=1_000_000, description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=None, help="parallel chunk workers (PostgreSQL; default 2)")
    parser.add_argument("--chunk-size", type=int, default=None, help="subscriptions per chunk transaction")
    args = parser.parse_args()
    setup = prepare(NAME, args.n, engine=args.engine, reseed=args.reseed, seed=args.seed, seeded_apps=SEEDED_APPS)

    from abonent.billing.engine import BillingRun
    from abonent.billing.ledger import verify
    from abonent.billing.models import Subscription

    active = Subscription.objects.filter(status="active").count()
    if active == 0:
        raise SystemExit("the seeded database holds no subscriptions (is the billing seed step registered?)")
    daily = Subscription.objects.filter(status="active", plan__charge_mode="daily").count()
    ledger_before = _scalar("SELECT COUNT(*) FROM billing_ledgertransaction")
    day = choose_day()
    log(f"{active:,} active subscriptions ({daily / active:.0%} daily), {ledger_before:,} ledger transactions so far")
    moved = move_cursors(day, setup.engine)
    log(f"billing {day}: {moved:,} cursors moved there, tables vacuumed")

    before = high_water()
    started = time.perf_counter()
    result = BillingRun(day, chunk_size=args.chunk_size, workers=args.workers).run()
    seconds = time.perf_counter() - started
    written = rows_since(before)
    written["cursors"] = _scalar(
        "SELECT COUNT(*) FROM billing_subscription WHERE status = 'active' AND next_charge_on > %s", [day]
    )
    log(
        f"run: {result.charges:,} charges ({result.amount} ₽) for {result.subscriptions:,} subscriptions "
        f"in {seconds:.1f}s = {result.charges / seconds:,.0f}/s, {result.chunks} chunks, {len(result.parked)} parked"
    )
    log(f"written: {written}")

    before = high_water()
    started = time.perf_counter()
    rerun = BillingRun(day, chunk_size=args.chunk_size, workers=args.workers).run()
    rerun_seconds = time.perf_counter() - started
    rerun_written = rows_since(before)
    rerun_written["cursors"] = rerun.subscriptions  # subscriptions found due (and so advanced) by the rerun
    rerun_rows = sum(rerun_written.values())
    log(f"rerun of {day}: {rerun.charges} charges, {rerun_rows} rows written in {rerun_seconds:.2f}s")

    started = time.perf_counter()
    problems = verify()
    verify_seconds = time.perf_counter() - started
    log(
        f"ledger verify over {ledger_before + written['transactions']:,} transactions: "
        f"{len(problems)} problems in {verify_seconds:.1f}s"
    )
    for problem in problems[:10]:
        log(f"  {problem}")

    emit(
        {
            "bench": NAME,
            "engine": setup.engine,
            "n": args.n,
            "seconds": round(seconds, 1),
            "rate": round(result.charges / seconds),
            "rows_written": written,
            "rerun_seconds": round(rerun_seconds, 2),
            "rerun_rows": rerun_rows,
            "verify_seconds": round(verify_seconds, 1),
            "verify_problems": len(problems),
            "target_seconds": TARGET_SECONDS[setup.engine],
            "seconds_per_1m": round(seconds * 1_000_000 / args.n, 1),
            "date": day.isoformat(),
            "charges": result.charges,
            "parked": len(result.parked),
            "daily_share": round(daily / active, 3),
            "workers": result.workers,
            "chunks": result.chunks,
            "ledger_transactions_before": ledger_before,
            "seed_seconds": setup.seed_seconds,
        }
    )


if __name__ == "__main__":
    main()
