"""The revenue report over a million subscribers and a year of charges: the summary tables built, then the report.

    python bench/reports.py [--n 1000000] [--requests 20] [--reseed]

The database (PostgreSQL only) is seeded once: ``abonent seed``'s staff, catalog, subscribers and billing steps (a
million subscribers over the seed's branches, one internet subscription each on the demo plans' mix, opening
payments), then, set-based in one transaction, a year of the ledger (``YEAR_MARKER``, the comment on the charges
table, says it is loaded): for each of the last twelve months every subscription that had started is charged its
monthly fee, in batch transactions of ``CHUNK`` subscribers as the billing run writes them (a daily-plan
subscription gets one charge for the month, the sum of its days: the same facts per day, a thirtieth of the rows); a
tenth of the subscribers were on another plan for the first half of the year (charged at that plan's price); about
1.5 % of the fees are half given back (freeze credits, ``reversal`` charges naming the fee); subscribers connected
during the year paid the installation (one-off revenue, no charge rows); about a third of the subscribers pay each
month through the bank, the cash desk, a payment agent or YooKassa, and 0.5 % of those payments are cancelled. The
ledger's triggers stay on and check every statement (zero sums, references, balances); ``abonent ledger verify``
holds on the result.

Timed: ``abonent reports rebuild`` (``facts.do_rebuild_facts``, what an install with a ledger runs once, every fact
counted from the ledger), then ``abonent reports verify``; then the revenue report (accrual) over the last twelve
months grouped by month: its rows as the page computes them (``AccrualRevenue.rows``), and the page itself through
Django's test client signed in as an administrator. Target: ≤ 2 s for the page; ``seconds`` is the slowest page
of ``--requests`` (after one untimed warm-up), ``p95_ms`` the pages' 95th percentile. Progress goes to stderr; the
last line on stdout is the JSON result.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, emit, log, percentile, prepare

os.environ.setdefault("ABONENT_DEBUG", "0")

NAME = "reports"
SEEDED_APPS = ("staff", "catalog", "subscribers", "billing")
TARGET_SECONDS = 2.0
MONTHS = 12
CHUNK = 10_000  # subscribers per fee batch transaction, as a billing-run chunk
YEAR_MARKER = "bench:reports:year"
# Plan for the first half of the year of the subscribers who changed plan (by plan code).
EARLIER_PLAN = {"internet-100": "home", "home": "internet-100", "gamer": "internet-100", "internet-100-daily": "home"}
# Payment channels by share of payments: (channel, ledger account code).
CHANNELS = [("bank", "cash:bank", 40), ("cash", "cash:cash", 20), ("agent:bench", "cash:agent:bench", 25)]
GATEWAY = ("yookassa", "clearing:yookassa")
REVERSAL_KEY = "'reversal:' || p.id"  # ledger.reverse's key


def bucket(column: str, purpose: int, modulo: int = 100) -> str:
    """A well-mixed 0..modulo-1 per row and purpose (a multiplicative hash, as the billing seed's)."""
    return f"((({column}) * 2654435761 + {purpose * 40503}) %% 4294967296 / 65536 %% {modulo})"


def _months(today: dt.date) -> list[dt.date]:
    index = today.year * 12 + today.month - 1 - (MONTHS - 1)
    return [dt.date((index + k) // 12, (index + k) % 12 + 1, 1) for k in range(MONTHS)]


def _accounts() -> dict[str, int]:
    from abonent.billing import ledger
    from abonent.catalog.models import Service

    accounts = {code: ledger.cash_account(code.removeprefix("cash:")).pk for _c, code, _s in CHANNELS}
    accounts[GATEWAY[1]] = ledger.clearing_account(GATEWAY[0]).pk
    accounts["revenue:internet"] = ledger.revenue_account(Service.objects.get(code="internet")).pk
    accounts["revenue:installation"] = ledger.revenue_account(Service.objects.get(code="installation")).pk
    return accounts


def seed_year(today: dt.date) -> dict[str, int]:
    """The year of charges, credits, one-offs, payments and cancellations (module docstring); once per database."""
    from django.db import connection, transaction

    from abonent.catalog.models import Plan
    from abonent.core import clock
    from abonent.core.bulk_load import DeferredIndexes

    with connection.cursor() as cursor:
        cursor.execute("SELECT obj_description('billing_charge'::regclass, 'pg_class')")
        if (cursor.fetchone()[0] or "") == YEAR_MARKER:
            return {}
    months = _months(today)
    plans = dict(Plan.objects.values_list("code", "pk"))
    accounts = _accounts()
    now = clock.now()
    counts: dict[str, int] = {}
    hash_of = "encode(sha256(convert_to({}, 'UTF8')), 'hex')"
    with transaction.atomic(), connection.cursor() as cursor:
        deferred = DeferredIndexes(["billing_charge", "billing_posting", "billing_ledgertransaction"])
        deferred.drop()

        def run(label: str, sql: str, params=()) -> int:
            started = time.monotonic()
            cursor.execute(sql, list(params))
            log(f"year: {label}: {cursor.rowcount:,} rows in {time.monotonic() - started:.1f}s")
            return cursor.rowcount

        cursor.execute("CREATE TEMPORARY TABLE bench_month (k int, ms date) ON COMMIT DROP")
        cursor.executemany("INSERT INTO bench_month VALUES (%s, %s)", list(enumerate(months)))
        cursor.execute("CREATE TEMPORARY TABLE bench_earlier (plan_id bigint, earlier_id bigint) ON COMMIT DROP")
        cursor.executemany(
            "INSERT INTO bench_earlier VALUES (%s, %s)",
            [(plans[a], plans[b]) for a, b in EARLIER_PLAN.items() if a in plans and b in plans],
        )
        # Each plan's price in force at the year's start (the demo catalog's prices date from 2020).
        run(
            "prices",
            "CREATE TEMPORARY TABLE bench_price ON COMMIT DROP AS SELECT DISTINCT ON (pp.plan_id) pp.plan_id, "
            "pp.id AS price_id, pp.monthly_fee, p.charge_mode FROM catalog_planprice pp "
            "JOIN catalog_plan p ON p.id = pp.plan_id WHERE pp.valid_from <= %s "
            "ORDER BY pp.plan_id, pp.valid_from DESC",
            [months[0]],
        )
        run(
            "fees planned",
            "CREATE TEMPORARY TABLE bench_fee ON COMMIT DROP AS "
            "SELECT f.*, pr.price_id, pr.monthly_fee AS fee, "
            "CASE WHEN pr.charge_mode = 'daily' THEN f.ms ELSE f.ms + (LEAST(f.anchor_day, 28) - 1) END "
            "AS period_start, 'fees:' || f.ms || ':bench-' || f.chunk AS tx_key FROM ("
            "  SELECT x.id AS subscription_id, x.subscriber_id, a.id AS account_id, m.k, m.ms, x.anchor_day, "
            "  x.subscriber_id / %s AS chunk, "
            f"  CASE WHEN m.k < 6 AND {bucket('x.subscriber_id', 7)} < 10 THEN COALESCE(e.earlier_id, x.plan_id) "
            "  ELSE x.plan_id END AS plan_id "
            "  FROM billing_subscription x CROSS JOIN bench_month m "
            "  JOIN billing_ledgeraccount a ON a.subscriber_id = x.subscriber_id "
            "  LEFT JOIN bench_earlier e ON e.plan_id = x.plan_id "
            "  WHERE x.started_on < m.ms + interval '1 month') f JOIN bench_price pr ON pr.plan_id = f.plan_id",
            [CHUNK],
        )
        cursor.execute("ANALYZE bench_fee")
        counts["fee_transactions"] = run(
            "fee batches",
            "INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, created_at, "
            f"subscriber_id, memo, legs) SELECT d.tx_key, {hash_of.format('d.tx_key')}, 'fee', d.ms, %s, NULL, '', "
            "NULL FROM (SELECT DISTINCT tx_key, ms FROM bench_fee) d ORDER BY d.ms, d.tx_key",
            [now],
        )
        run(
            "batch ids",
            "CREATE TEMPORARY TABLE bench_tx ON COMMIT DROP AS SELECT id, idempotency_key AS tx_key "
            "FROM billing_ledgertransaction WHERE idempotency_key LIKE 'fees:%%:bench-%%'",
        )
        counts["fees"] = run(
            "fees",
            "INSERT INTO billing_charge (subscription_id, kind, period_start, period_end, amount, price_id, cycle, "
            "transaction_id) SELECT f.subscription_id, 'fee', f.period_start, "
            "f.period_start + interval '1 month', f.fee, f.price_id, 0, t.id "
            "FROM bench_fee f JOIN bench_tx t ON t.tx_key = f.tx_key ORDER BY t.id, f.subscription_id",
        )
        run(
            "fee postings",
            "INSERT INTO billing_posting (transaction_id, account_id, amount) "
            "SELECT t.id, f.account_id, -f.fee FROM bench_fee f JOIN bench_tx t ON t.tx_key = f.tx_key "
            "UNION ALL SELECT t.id, %s, SUM(f.fee) FROM bench_fee f JOIN bench_tx t ON t.tx_key = f.tx_key "
            "GROUP BY t.id",
            [accounts["revenue:internet"]],
        )

        # Freeze credits: half of about 1.5 % of the fees given back, one batch per month and chunk.
        run(
            "credits planned",
            "CREATE TEMPORARY TABLE bench_credit ON COMMIT DROP AS SELECT c.id AS charge_id, c.subscription_id, "
            "c.period_start, c.period_end, -ROUND(c.amount / 2, 2) AS amount, f.account_id, "
            "'freeze:bench-' || f.ms || '-' || f.chunk AS tx_key, f.ms FROM bench_fee f "
            "JOIN billing_charge c ON c.subscription_id = f.subscription_id AND c.period_start = f.period_start "
            f"AND c.kind = 'fee' AND c.cycle = 0 WHERE {bucket('f.subscription_id * 31 + f.k', 11, 1000)} < 15",
        )
        counts["credit_transactions"] = run(
            "credit batches",
            "INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, created_at, "
            f"subscriber_id, memo, legs) SELECT d.tx_key, {hash_of.format('d.tx_key')}, 'freeze', d.ms + 14, %s, "
            "NULL, '', NULL FROM (SELECT DISTINCT tx_key, ms FROM bench_credit) d ORDER BY d.ms, d.tx_key",
            [now],
        )
        counts["credits"] = run(
            "credits",
            "INSERT INTO billing_charge (subscription_id, kind, period_start, period_end, amount, price_id, cycle, "
            "transaction_id, reverses_id) SELECT k.subscription_id, 'reversal', "
            "LEAST(k.period_start + 14, k.period_end - 1), k.period_end, k.amount, NULL, 0, t.id, k.charge_id "
            "FROM bench_credit k JOIN billing_ledgertransaction t ON t.idempotency_key = k.tx_key "
            "ORDER BY t.id, k.subscription_id",
        )
        run(
            "credit postings",
            "INSERT INTO billing_posting (transaction_id, account_id, amount) "
            "SELECT t.id, k.account_id, -k.amount FROM bench_credit k "
            "JOIN billing_ledgertransaction t ON t.idempotency_key = k.tx_key "
            "UNION ALL SELECT t.id, %s, SUM(k.amount) FROM bench_credit k "
            "JOIN billing_ledgertransaction t ON t.idempotency_key = k.tx_key GROUP BY t.id",
            [accounts["revenue:internet"]],
        )

        # Installation for the subscribers connected during the year: one-off revenue, no charge rows.
        run(
            "installations planned",
            "CREATE TEMPORARY TABLE bench_install ON COMMIT DROP AS SELECT x.subscriber_id, a.id AS account_id, "
            "x.started_on AS day, 'one_off:installation:bench-' || x.subscriber_id AS tx_key "
            "FROM billing_subscription x JOIN billing_ledgeraccount a ON a.subscriber_id = x.subscriber_id "
            "WHERE x.started_on >= %s AND x.started_on <= %s",
            [months[0], today],
        )
        counts["one_offs"] = run(
            "installations",
            "INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, created_at, "
            f"subscriber_id, memo, legs) SELECT i.tx_key, {hash_of.format('i.tx_key')}, 'one_off', i.day, %s, "
            "i.subscriber_id, 'Подключение', 2 FROM bench_install i ORDER BY i.day, i.subscriber_id",
            [now],
        )
        run(
            "installation postings",
            "INSERT INTO billing_posting (transaction_id, account_id, amount) "
            "SELECT t.id, CASE WHEN leg.n = 1 THEN i.account_id ELSE %s END, "
            "CASE WHEN leg.n = 1 THEN -1500.00 ELSE 1500.00 END FROM bench_install i "
            "JOIN billing_ledgertransaction t ON t.idempotency_key = i.tx_key "
            "CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2) leg ORDER BY t.id, leg.n",
            [accounts["revenue:installation"]],
        )

        # Payments: about a third of the subscribers each month, three months' fee rounded to 50 ₽.
        channel_case, upper = [], 0
        for channel, code, share in CHANNELS:
            upper += share
            channel_case.append(f"WHEN {bucket('f.subscriber_id + f.k', 5)} < {upper} THEN '{channel}|{code}'")
        channel_expr = f"CASE {' '.join(channel_case)} ELSE '{GATEWAY[0]}|{GATEWAY[1]}' END"
        run(
            "payments planned",
            "CREATE TEMPORARY TABLE bench_pay ON COMMIT DROP AS SELECT p.*, "
            "'payment:' || split_part(p.via, '|', 1) || ':bench-' || p.subscriber_id || '-' || p.k AS tx_key, "
            "a.id AS channel_account FROM ("
            "  SELECT f.subscriber_id, f.account_id, f.k, "
            f"  f.ms + {bucket('f.subscriber_id', 13, 28)}::int AS day, "
            "  CEIL(f.fee * 3 / 50) * 50 AS amount, "
            f"  {channel_expr} AS via FROM bench_fee f WHERE (f.subscriber_id + f.k) %% 3 = 0 "
            f"  AND {bucket('f.subscriber_id', 2)} < 85"
            ") p JOIN billing_ledgeraccount a ON a.code = split_part(p.via, '|', 2) WHERE p.day <= %s",
            [today],
        )
        counts["payments"] = run(
            "payments",
            "INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, created_at, "
            f"subscriber_id, memo, legs) SELECT p.tx_key, {hash_of.format('p.tx_key')}, 'payment', p.day, %s, "
            "p.subscriber_id, '', 2 FROM bench_pay p ORDER BY p.day, p.subscriber_id",
            [now],
        )
        run(
            "payment ids",
            "CREATE TEMPORARY TABLE bench_pay_tx ON COMMIT DROP AS SELECT t.id, p.account_id, p.channel_account, "
            "p.amount, p.day, p.subscriber_id FROM bench_pay p "
            "JOIN billing_ledgertransaction t ON t.idempotency_key = p.tx_key",
        )
        run(
            "payment postings",
            "INSERT INTO billing_posting (transaction_id, account_id, amount) "
            "SELECT p.id, CASE WHEN leg.n = 1 THEN p.account_id ELSE p.channel_account END, "
            "CASE WHEN leg.n = 1 THEN p.amount ELSE -p.amount END FROM bench_pay_tx p "
            "CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2) leg ORDER BY p.id, leg.n",
        )
        # Cancelled payments: the ledger's reversal (``ledger.reverse``), the next day.
        counts["cancellations"] = run(
            "cancellations",
            "INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, created_at, "
            f"subscriber_id, memo, legs, reverses_id) SELECT {REVERSAL_KEY}, "
            f"{hash_of.format(REVERSAL_KEY)}, 'reversal', "
            "LEAST(p.day + 1, %s), %s, p.subscriber_id, 'Отмена платежа', 2, p.id FROM bench_pay_tx p "
            f"WHERE {bucket('p.id', 17, 1000)} < 5 ORDER BY p.id",
            [today, now],
        )
        run(
            "cancellation postings",
            "INSERT INTO billing_posting (transaction_id, account_id, amount) "
            "SELECT t.id, CASE WHEN leg.n = 1 THEN p.account_id ELSE p.channel_account END, "
            "CASE WHEN leg.n = 1 THEN -p.amount ELSE p.amount END FROM billing_ledgertransaction t "
            "JOIN bench_pay_tx p ON p.id = t.reverses_id CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2) leg "
            "WHERE t.idempotency_key LIKE 'reversal:%%' AND t.id > (SELECT MAX(id) FROM bench_pay_tx) "
            "ORDER BY t.id, leg.n",
        )
        # The mark is kept outside the ledger (a transaction without postings would fail ``ledger verify``).
        cursor.execute(f"COMMENT ON TABLE billing_charge IS '{YEAR_MARKER}'")
        deferred.restore(sys.stderr)
    with connection.cursor() as cursor:
        for table in ("billing_charge", "billing_posting", "billing_ledgertransaction", "billing_ledgeraccount"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    return counts


def _admin():
    from abonent.staff.models import StaffUser
    from abonent.staff.permissions import Role

    user, _created = StaffUser.objects.get_or_create(
        username="bench-reports-admin", defaults={"role": Role.ADMIN, "full_name": "Benchmark admin"}
    )
    return user


def main() -> None:
    parser = base_parser(NAME, default_n=1_000_000, description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="timed report pages (default 20)")
    args = parser.parse_args()
    if args.engine != "postgresql":
        raise SystemExit("bench/reports.py loads its year with PostgreSQL's SQL: --engine postgresql only")
    setup = prepare(NAME, args.n, engine=args.engine, reseed=args.reseed, seed=args.seed, seeded_apps=SEEDED_APPS)

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from abonent.core import clock
    from abonent.reports import facts
    from abonent.reports.business import AccrualRevenue
    from abonent.reports.pages import ReportQuery, add_months, month_start, next_month

    today = clock.today()
    started = time.monotonic()
    counts = seed_year(today)
    if counts:
        log(f"year loaded in {time.monotonic() - started:.1f}s: {counts}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM billing_charge")
        charges = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM billing_ledgertransaction")
        transactions = cursor.fetchone()[0]
    log(f"{charges:,} charges, {transactions:,} ledger transactions")

    started = time.perf_counter()
    call_command("reports", "rebuild")
    rebuild_seconds = time.perf_counter() - started
    started = time.perf_counter()
    verification = facts.verify_facts()
    verify_seconds = time.perf_counter() - started
    log(f"rebuild {rebuild_seconds:.1f}s, verify {verify_seconds:.1f}s: {len(verification.differences)} differences")
    for difference in verification.differences[:10]:
        log(f"  {difference}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM reports_revenuefact")
        revenue_facts = cursor.fetchone()[0]

    this_month = month_start(today)
    query = ReportQuery(start=add_months(this_month, -11), end=next_month(today), branch_ids=None, group_by="month")
    report = AccrualRevenue()
    rows = report.rows(query, using="default")
    selector_ms = []
    for _ in range(args.requests):
        started = time.perf_counter()
        report.rows(query, using="default")
        selector_ms.append((time.perf_counter() - started) * 1000)

    client = Client(raise_request_exception=True)
    client.force_login(_admin())
    url = reverse("reports:report", args=["revenue"]) + "?period=last_12_months&group_by=month"
    response = client.get(url)
    if response.status_code != 200 or "Интернет" not in response.content.decode():
        raise SystemExit(f"the report page answered {response.status_code} without the service's rows")
    page_ms = []
    for _ in range(args.requests):
        started = time.perf_counter()
        response = client.get(url)
        page_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    seconds = max(page_ms) / 1000
    total = sum((r["net"] for r in rows), Decimal("0.00"))
    log(
        f"revenue report: {len(rows)} rows, {total} ₽ over the year, {revenue_facts:,} revenue facts; selector p95 "
        f"{percentile(selector_ms, 95):.0f} ms, page p95 {percentile(page_ms, 95):.0f} ms, slowest {seconds:.2f}s"
    )
    emit(
        {
            "bench": NAME,
            "engine": setup.engine,
            "n": args.n,
            "seconds": round(seconds, 3),
            "rebuild_seconds": round(rebuild_seconds, 1),
            "charges": charges,
            "p95_ms": round(percentile(page_ms, 95), 1),
            "selector_p95_ms": round(percentile(selector_ms, 95), 1),
            "verify_seconds": round(verify_seconds, 1),
            "verify_differences": len(verification.differences),
            "ledger_transactions": transactions,
            "revenue_facts": revenue_facts,
            "report_rows": len(rows),
            "target_seconds": TARGET_SECONDS,
            "seed_seconds": setup.seed_seconds,
        }
    )


if __name__ == "__main__":
    main()
