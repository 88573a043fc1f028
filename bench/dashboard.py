"""The dashboard (the console's home page) over N subscribers, and the two periodic jobs behind it.

    python bench/dashboard.py [--n 1000000] [--requests 300] [--nas 20]

Seeded once by ``abonent seed``'s staff, catalog, subscribers and billing steps, then built set-based (not timed):
one billing run, so that the subscribers without an opening payment owe their first fee (debtors for the ageing);
``--nas`` NAS with 60 % of the subscribers online on them, each with an address of one pool; a week of
five-minute samples per NAS; 3.3 % of the subscribers paying today (the ledger entries and the payments, by bank,
cash and terminal); 2,000 open tickets.

Timed: the sampler (``network.sample_network``: one pass over the open sessions and their addresses), the
snapshot (``dashboard.snapshot``: receivables and ageing, payments, revenue, ARPU, sessions over time), and the
dashboard itself: ``--requests`` GETs of ``/staff/dashboard/widgets/`` (the fragment the page reloads every 30 s,
which is the whole page but the layout) as the administrator, who sees every widget, in-process through Django's
test client, one after another. Each answer is checked: 200, and the receivables it shows are the sum of the
negative balances in the ledger. Target (DESIGN.md §5): p95 ≤ 200 ms over 1,000,000 subscribers.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, emit, log, percentile, prepare

os.environ.setdefault("ABONENT_DEBUG", "0")

NAME = "dashboard"
TARGET_P95_MS = 200
MARKER_TABLE = "bench_dashboard_ready"
ONLINE_PERCENT = 60
PAYING_TODAY_PER_MILLE = 33
OPEN_TICKETS = 2000
RECEIVABLES = re.compile(r'data-figure="receivables">([^<]*)<')


def _execute(sql: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.rowcount


def _scalar(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def build(nas_count: int) -> None:
    """The world the dashboard reads, once per seeded database."""
    from django.db import connection

    from abonent.billing.engine import run_billing
    from abonent.core import clock
    from abonent.network.actions import do_create_nas
    from abonent.network.models import IpPool, Nas, NasSample
    from abonent.network.monitoring.sampler import SAMPLE_INTERVAL
    from abonent.staff.models import StaffUser

    if _scalar(f"SELECT to_regclass('{MARKER_TABLE}') IS NOT NULL" if connection.vendor == "postgresql" else
               f"SELECT COUNT(*) FROM sqlite_master WHERE name = '{MARKER_TABLE}'"):  # fmt: skip
        log("world already built")
        return
    admin = StaffUser.objects.filter(role="admin").order_by("pk").first()
    started = time.monotonic()
    result = run_billing()
    log(f"billing run: {result.charges:,} charges in {time.monotonic() - started:.1f}s")

    started = time.monotonic()
    for n in range(nas_count):
        if not Nas.objects.filter(name=f"bras-{n:02d}").exists():
            do_create_nas(
                acting_user=admin, name=f"bras-{n:02d}", ip_address=f"10.20.0.{n + 1}",
                secret="bench-dashboard-shared-secret", vendor="mikrotik",
            )  # fmt: skip
    first_nas = Nas.objects.filter(name="bras-00").values_list("pk", flat=True).get()
    IpPool.objects.get_or_create(name="cgnat", defaults={"network": "100.64.0.0/10"})
    now = connection.ops.adapt_datetimefield_value(clock.now())
    octet = "(s.id / 65536 %% 64 + 64) || '.' || (s.id / 256 %% 256) || '.' || (s.id %% 256)"
    sessions = _execute(
        "INSERT INTO network_session (nas_id, unique_id, acct_session_id, subscriber_id, username, framed_ip, "
        "calling_station_id, nas_port_id, status, started_at, updated_at, session_time, input_octets, output_octets, "
        "last_delta_in, last_delta_out, terminate_cause, counters_32bit) "
        f"SELECT {first_nas} + s.id %% {nas_count}, 'bench-' || s.id, 'b' || s.id, s.id, 'b' || s.id, "
        f"{'CAST(' if connection.vendor == 'postgresql' else '('}'100.' || {octet}"
        f"{' AS inet)' if connection.vendor == 'postgresql' else ')'}, "
        "'', '', 'open', %s, %s, 3600, s.id * 1000, s.id * 10000, 5000, 50000, '', false "
        f"FROM subscribers_subscriber s WHERE s.id %% 100 < {ONLINE_PERCENT}",
        [now, now],
    )
    log(f"{sessions:,} sessions online on {nas_count} NAS in {time.monotonic() - started:.1f}s")

    moment = clock.now() - dt.timedelta(days=7)
    rows = []
    while moment < clock.now():
        for n in range(nas_count):
            rows.append(NasSample(nas_id=first_nas + n, taken_at=moment, interval_seconds=300,
                                  open_sessions=sessions // nas_count, output_octets=10**9))  # fmt: skip
        moment += SAMPLE_INTERVAL
    NasSample.objects.bulk_create(rows, batch_size=5000, ignore_conflicts=True)

    started = time.monotonic()
    paid = _payments_today(now)
    tickets = _tickets(now)
    if connection.vendor == "postgresql":
        _execute("ANALYZE")
    _execute(f"CREATE TABLE {MARKER_TABLE} (built_at varchar(40))")
    log(f"{paid:,} payments today and {tickets:,} open tickets in {time.monotonic() - started:.1f}s")


def _payments_today(now) -> int:
    """Ledger entries (both legs in one statement, as the ledger's trigger wants) and payments for 3.3 % of the
    subscribers, today, by three channels."""
    from abonent.billing import ledger

    channels = {0: "bank", 1: "cash", 2: "agent:bench"}
    accounts = {k: ledger.cash_account(c).pk for k, c in channels.items()}
    chosen = f"s.id %% 1000 < {PAYING_TODAY_PER_MILLE}"
    _execute(
        "INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, created_at, "
        "subscriber_id, memo, legs) "
        f"SELECT 'payment:bench|' || s.id, 'bench', 'payment', %s, %s, s.id, '', 2 FROM subscribers_subscriber s "
        f"WHERE {chosen}",
        [now[:10] if isinstance(now, str) else now.date(), now],
    )
    case = " ".join(f"WHEN t.subscriber_id %% 3 = {k} THEN {a}" for k, a in accounts.items())
    _execute(
        "INSERT INTO billing_posting (transaction_id, account_id, amount) "
        "SELECT t.id, a.id, 500 FROM billing_ledgertransaction t JOIN billing_ledgeraccount a "
        "ON a.subscriber_id = t.subscriber_id WHERE t.idempotency_key LIKE 'payment:bench|%%' "
        f"UNION ALL SELECT t.id, CASE {case} END, -500 FROM billing_ledgertransaction t "
        "WHERE t.idempotency_key LIKE 'payment:bench|%%'"
    )
    channel = " ".join(f"WHEN t.subscriber_id %% 3 = {k} THEN '{c}'" for k, c in channels.items())
    return _execute(
        "INSERT INTO payments_payment (channel, external_id, method, amount, subscriber_id, account_ref, payer, "
        "payer_inn, status, suspense_reason, received_at, credited_at, created_at, transaction_id, refunded_amount, "
        "memo, status_reason, details) "
        f"SELECT CASE {channel} END, 'bench-' || t.subscriber_id, 'bank', 500, t.subscriber_id, '', '', '', "
        "'credited', '', %s, %s, %s, t.id, 0, '', '', '{}' FROM billing_ledgertransaction t "
        "WHERE t.idempotency_key LIKE 'payment:bench|%%'",
        [now, now, now],
    )


def _tickets(now) -> int:
    return _execute(
        "INSERT INTO helpdesk_ticket (number, subscriber_id, category, subject, address, status, priority, source, "
        "created_at, updated_at, public_updated_at) "
        f"SELECT 900000000 + s.id, s.id, 'other', 'bench', '', 'new', 'normal', 'console', %s, %s, %s "
        f"FROM subscribers_subscriber s ORDER BY s.id LIMIT {OPEN_TICKETS}",
        [now, now, now],
    )


def main() -> None:
    parser = base_parser(NAME, default_n=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--nas", type=int, default=20)
    args = parser.parse_args()
    setup = prepare(NAME, args.n, engine=args.engine, reseed=args.reseed,
                    seeded_apps=("staff", "catalog", "subscribers", "billing"))  # fmt: skip
    build(args.nas)

    from decimal import Decimal

    from django.db.models import Sum
    from django.test import Client
    from django.utils.formats import number_format

    from abonent.billing.models import LedgerAccount
    from abonent.dashboard.snapshot import do_take_snapshot
    from abonent.network.monitoring.sampler import take_samples
    from abonent.staff.models import StaffUser

    started = time.monotonic()
    run = take_samples()
    sampler_seconds = time.monotonic() - started
    log(f"sampler: {run.samples} samples, {run.pools} pools in {sampler_seconds:.2f}s")
    started = time.monotonic()
    snapshot = do_take_snapshot()
    snapshot_seconds = time.monotonic() - started
    log(f"snapshot in {snapshot_seconds:.2f}s")

    owed = -(LedgerAccount.objects.filter(kind="subscriber", balance__lt=0).aggregate(s=Sum("balance"))["s"] or 0)
    expected = number_format(Decimal(owed).quantize(Decimal("0.01")), decimal_pos=2, force_grouping=True)
    client = Client()
    client.force_login(StaffUser.objects.filter(role="admin").order_by("pk").first())
    client.get("/staff/dashboard/widgets/")  # warm: templates, the session
    timings = []
    started = time.monotonic()
    for _ in range(args.requests):
        began = time.perf_counter()
        response = client.get("/staff/dashboard/widgets/")
        timings.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
        shown = RECEIVABLES.search(response.content.decode())
        assert shown and shown.group(1).startswith(expected), (shown and shown.group(1), expected)
    seconds = time.monotonic() - started
    p95 = percentile(timings, 95)
    log(f"dashboard: p50 {percentile(timings, 50):.1f} ms, p95 {p95:.1f} ms (target {TARGET_P95_MS})")
    emit(
        {
            "bench": NAME,
            "engine": setup.engine,
            "n": args.n,
            "seconds": round(seconds, 2),
            "rate": round(args.requests / seconds, 1),
            "p95_ms": round(p95, 1),
            "p50_ms": round(percentile(timings, 50), 1),
            "snapshot_seconds": round(snapshot_seconds, 2),
            "snapshot_ms_recorded": snapshot.duration_ms,
            "sampler_seconds": round(sampler_seconds, 2),
            "seed_seconds": setup.seed_seconds,
        }
    )


if __name__ == "__main__":
    main()
