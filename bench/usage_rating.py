"""Month-end traffic rating over every subscription on an overage plan: usage summed, rated, charged once.

    python bench/usage_rating.py [--n 100000] [--engine postgresql|sqlite] [--chunk-size C]

The database is seeded once (``abonent seed``: subscribers, the demo catalog, one subscription each) and then
reused. Untimed set-up per invocation: a plan of 500 GB + 2 ₽ per started GB is created (once) and every
subscription of its service moved onto it; the next month not rated yet gets a day of usage per subscriber and
day (about 3.1 million ``UsageDay`` rows at 100,000, 0–35 GB a day: most subscribers go over), and the month
before it is rated (as on a real month end, when the run re-checks it for late usage). The
ledger is append-only, so every invocation rates a new month; ``--reseed`` starts over.

Timed: the rating of that month (``UsageRatingRun(date).run()``, what ``abonent rate_usage`` calls), then a rerun
(must charge nothing), then ``abonent ledger verify``. Target: 100,000 subscriptions in ≤ 10 s on PostgreSQL.
Progress goes to stderr; the last line on stdout is the JSON result.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, emit, log, prepare

os.environ.setdefault("ABONENT_DEBUG", "0")

NAME = "usage_rating"
SEEDED_APPS = ("staff", "catalog", "subscribers", "billing")
TARGET_SECONDS = {"postgresql": 10, "sqlite": 60}  # for 100,000 subscriptions
PLAN_CODE = "bench-traffic-500"
DAILY_MAX_BYTES = 35 * 10**9


def _scalar(sql: str, params=()):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchone()[0]


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def bench_plan():
    """The overage plan every subscription is moved onto, on the service most subscriptions have."""
    from abonent.catalog.models import Plan, PlanPrice, TrafficPolicy
    from abonent.core import clock

    plan = Plan.objects.filter(code=PLAN_CODE).first()
    if plan is None:
        service_id = _scalar(
            "SELECT service_id FROM billing_subscription GROUP BY service_id ORDER BY COUNT(*) DESC LIMIT 1"
        )
        plan = Plan.objects.create(
            code=PLAN_CODE,
            name="Bench 500 GB",
            service_id=service_id,
            download_kbps=100_000,
            upload_kbps=100_000,
            included_bytes=500 * 10**9,
            overage_price_per_gb=Decimal("2.0000"),
            traffic_policy=TrafficPolicy.OVERAGE,
        )
        PlanPrice.objects.create(
            plan=plan, valid_from=dt.date(2000, 1, 1), monthly_fee=Decimal("500.00"), created_at=clock.now()
        )
    return plan


def set_up(plan, engine: str) -> tuple[dt.date, int, int]:
    """The month to rate (after every month rated so far and every start), the subscriptions moved onto the plan
    and the usage rows written for it."""
    from django.db import connection, transaction

    rated = _scalar("SELECT MAX(period_start) FROM billing_usagerating")
    started = _as_date(_scalar("SELECT MAX(started_on) FROM billing_subscription"))
    month = _next_month(max(_as_date(rated), started) if rated else started)
    end = _next_month(month)
    days = (end - month).days
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_subscription SET plan_id = %s, pending_plan_id = NULL, pending_plan_from = NULL "
            "WHERE service_id = %s AND plan_id <> %s",
            [plan.pk, plan.service_id, plan.pk],
        )
        cursor.execute("SELECT COUNT(*) FROM billing_subscription WHERE plan_id = %s", [plan.pk])
        moved = cursor.fetchone()[0]
        if engine == "postgresql":
            day, size = "%s::date + d.n", f"(random() * {DAILY_MAX_BYTES})::bigint"
        else:
            day, size = "date(%s, '+' || d.n || ' days')", f"abs(random()) % {DAILY_MAX_BYTES}"
        cursor.execute(
            "INSERT INTO network_usageday (subscriber_id, day, input_octets, output_octets) "
            "WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < %s) "
            f"SELECT s.subscriber_id, {day}, {size} / 8, {size} FROM billing_subscription s CROSS JOIN d "
            "WHERE s.plan_id = %s ON CONFLICT (subscriber_id, day) DO NOTHING",
            [days - 1, month if engine == "postgresql" else month.isoformat(), plan.pk],
        )
        written = cursor.rowcount
    with connection.cursor() as cursor:
        if engine == "postgresql":
            for table in ("network_usageday", "billing_subscription", "billing_usagerating", "billing_charge"):
                cursor.execute(f"VACUUM (ANALYZE) {table}")
        else:
            cursor.execute("ANALYZE")
    return month, moved, written


def main() -> None:
    parser = base_parser(NAME, default_n=100_000, description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunk-size", type=int, default=None, help="subscriptions per chunk transaction")
    args = parser.parse_args()
    setup = prepare(NAME, args.n, engine=args.engine, reseed=args.reseed, seed=args.seed, seeded_apps=SEEDED_APPS)

    from abonent.billing.ledger import verify
    from abonent.billing.rating.traffic import UsageRatingRun
    from abonent.core import clock

    plan = bench_plan()
    month, moved, usage_rows = set_up(plan, setup.engine)
    as_of = _next_month(month)
    log(f"rating {month:%Y-%m} on {as_of}: {moved:,} subscriptions on {plan.code}, {usage_rows:,} usage days written")

    # The month before is rated already (untimed), as on any real month end: the run re-checks it for late usage.
    with clock.travel_to(month):
        UsageRatingRun(month, chunk_size=args.chunk_size).run()
    with clock.travel_to(as_of):
        started = time.perf_counter()
        result = UsageRatingRun(as_of, chunk_size=args.chunk_size).run()
        seconds = time.perf_counter() - started
        log(
            f"run: {result.periods:,} periods, {result.charges:,} charges ({result.amount} ₽) in {seconds:.1f}s "
            f"= {result.periods / seconds:,.0f}/s"
        )
        started = time.perf_counter()
        rerun = UsageRatingRun(as_of, chunk_size=args.chunk_size).run()
        rerun_seconds = time.perf_counter() - started
        log(f"rerun: {rerun.periods} periods, {rerun.charges + rerun.adjustments} charges in {rerun_seconds:.1f}s")
    started = time.perf_counter()
    problems = verify()
    verify_seconds = time.perf_counter() - started
    log(f"ledger verify: {len(problems)} problems in {verify_seconds:.1f}s")
    for problem in problems[:10]:
        log(f"  {problem}")

    emit(
        {
            "bench": NAME,
            "engine": setup.engine,
            "n": args.n,
            "seconds": round(seconds, 2),
            "rate": round(result.periods / seconds),
            "subscriptions": result.subscriptions,
            "periods": result.periods,
            "charges": result.charges,
            "amount": str(result.amount),
            "usage_rows": usage_rows,
            "rerun_seconds": round(rerun_seconds, 2),
            "rerun_charges": rerun.charges + rerun.adjustments,
            "verify_seconds": round(verify_seconds, 1),
            "verify_problems": len(problems),
            "target_seconds": TARGET_SECONDS[setup.engine],
            "month": month.isoformat(),
            "seed_seconds": setup.seed_seconds,
        }
    )


if __name__ == "__main__":
    main()
