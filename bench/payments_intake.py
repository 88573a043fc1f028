"""Payments through the terminal ``pay`` protocol over HTTP, each sent twice, against ``abonent web``.

    python bench/payments_intake.py [--n 100000] [--payments P] [--concurrency 32] [--workers 2]

Seeds (or reuses) ``abonent_bench_payments_intake_<n>`` (staff, subscribers and billing: accounts, subscriptions and
opening payments, the ledger a running ISP has),
registers an agent ``bench`` allowing 127.0.0.1, starts ``abonent web --workers W`` on a free loopback port, then
sends ``pay`` for P payments to random accounts, every ``txn_id`` twice: the second copy follows the first within
a few requests, so with C connections in flight many copies race the first (the unique constraint's path), the
rest hit the repeat path. The load generator is a plain asyncio loop over keep-alive HTTP/1.1 connections (no
HTTP library: it shares the two cores with the server and PostgreSQL and must stay cheap).

Then it checks in the database what it timed: one payment per txn_id, each answered 0 with the same prv_txn both
times, the subscribers' balances grown by exactly the distinct sums, and ``ledger.verify() == []``.
``duplicates`` = payments credited more than once (balance growth beyond the distinct sums, in payments, plus
ledger entries beyond one per txn_id); it must be 0.

``rate`` is distinct payments per second (each of them two requests); ``requests_per_s`` is both copies.
Target (DESIGN.md §5): ≥ 1,000 payments/s, no duplicates, on the 2-core machine.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, emit, log, percentile, prepare

BENCH = "payments_intake"
AGENT = "bench"
_RESULT = re.compile(rb"<result>(\d+)</result>")
_PRV = re.compile(rb"<prv_txn>(\d+)</prv_txn>")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(database_url: str, port: int, workers: int, path: str = "fast") -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ABONENT_LOG_LEVEL": "WARNING",
        "ABONENT_DEBUG": "0",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="abonent-bench-prom-"),
        # Under ASGI a worker runs its requests one at a time (the sync middleware share one thread), so it needs
        # one connection, and one spare.
        "ABONENT_DB_POOL_MAX": os.environ.get("ABONENT_DB_POOL_MAX", "2"),
    }
    if path == "fast":
        # The agents' route (payments.agents_asgi) runs requests in ABONENT_AGENT_THREADS threads, each holding a
        # pooled connection while it runs; the pay is one function call (actions.fastpay).
        env["ABONENT_AGENT_THREADS"] = os.environ.get("ABONENT_AGENT_THREADS", "4")
        env["ABONENT_DB_POOL_MAX"] = os.environ.get("ABONENT_DB_POOL_MAX", str(int(env["ABONENT_AGENT_THREADS"]) + 1))
        env["ABONENT_AGENT_FAST_PATH"] = "1"
    else:
        env["ABONENT_AGENT_LEAN_ROUTE"] = "0"
        env["ABONENT_AGENT_FAST_PATH"] = "0"
    abonent = Path(sys.executable).with_name("abonent")
    command = [str(abonent), "web", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"abonent web exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("abonent web did not answer in time")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def build_requests(accounts: list[str], payments: int, run: str, rng: random.Random, auth: str):
    """(txn_id, request bytes) in sending order: every payment twice, the copy 1–40 places after the first."""
    slots: list[tuple[float, int]] = []
    for i in range(payments):
        slots.append((i, i))
        slots.append((i + rng.uniform(0.5, 40), i))
    slots.sort()
    prepared = {}
    out = []
    for _position, i in slots:
        if i not in prepared:
            txn_id = f"{run}{i:08d}"
            query = urlencode(
                {
                    "command": "pay",
                    "txn_id": txn_id,
                    "account": accounts[rng.randrange(len(accounts))],
                    "sum": f"{rng.randint(100, 2000)}.{rng.randint(0, 99):02d}",
                    "txn_date": time.strftime("%Y%m%d%H%M%S"),
                }
            )
            prepared[i] = (
                txn_id,
                (
                    f"GET /pay/agents/{AGENT}/?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Basic {auth}\r\n\r\n"
                ).encode(),
            )
        out.append(prepared[i])
    return out


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return head + await reader.readexactly(length)


async def load(port: int, requests, concurrency: int):
    """Send every request over ``concurrency`` keep-alive connections; per request: (txn_id, result, prv, ms)."""
    position = 0
    results = []

    async def worker():
        nonlocal position
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while position < len(requests):
                txn_id, raw = requests[position]
                position += 1
                started = time.perf_counter()
                writer.write(raw)
                body = await _read_response(reader)
                elapsed = (time.perf_counter() - started) * 1000
                result = _RESULT.search(body)
                prv = _PRV.search(body)
                results.append(
                    (txn_id, int(result[1]) if result else -1, int(prv[1]) if prv else None, elapsed, body[:12])
                )
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def main() -> None:
    parser = base_parser(BENCH, default_n=100_000, description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=None, help="distinct payments (default min(n, 20,000))")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="abonent web processes")
    parser.add_argument(
        "--path",
        choices=("fast", "old"),
        default="fast",
        help="fast: the agents' lean route and the one-statement pay (the default); old: Django's full stack and "
        "the Python intake (ABONENT_AGENT_LEAN_ROUTE=0, ABONENT_AGENT_FAST_PATH=0)",
    )
    args = parser.parse_args()
    payments = args.payments or min(args.n, 20_000)
    # Billing's seed too: an ISP's ledger holds history (accounts, subscriptions, opening payments) before the
    # first terminal payment. On an empty ledger the web processes' connections plan the ledger triggers' lookups
    # as sequential scans of tiny tables and keep those plans while the tables grow under the benchmark (the rate
    # fell from 640 to 246/s over 20,000 payments); docs/payments-terminals.md, "Performance".
    setup = prepare(
        BENCH,
        args.n,
        engine=args.engine,
        reseed=args.reseed,
        seed=args.seed,
        seeded_apps=("staff", "subscribers", "catalog", "billing"),
    )

    import base64

    from django.db import connections
    from django.db.models import Sum

    from abonent.billing import ledger
    from abonent.billing.models import LedgerAccount, LedgerTransaction
    from abonent.payments.actions.agents import do_create_agent, do_rotate_agent_secret, do_update_agent
    from abonent.payments.models import Agent, Payment
    from abonent.subscribers.models import Subscriber, SubscriberStatus

    rng = random.Random(args.seed)
    agent = Agent.objects.filter(code=AGENT).first()
    limits = {"networks": "127.0.0.1/32", "max_sum": Decimal("100000.00"), "active": True}
    if agent is None:
        agent, secret = do_create_agent(code=AGENT, name="Bench", login=AGENT, acting_user=None, **limits)
    else:
        do_update_agent(agent, acting_user=None, **limits)
        secret = do_rotate_agent_secret(agent, acting_user=None)
    auth = base64.b64encode(f"{AGENT}:{secret}".encode()).decode()
    accounts = list(Subscriber.objects.filter(status=SubscriberStatus.ACTIVE).values_list("account_number", flat=True))
    run = f"r{int(time.time())}-"
    requests = build_requests(accounts, payments, run, rng, auth)
    expected = {}
    for txn_id, raw in requests:
        query = raw.split(b" ", 2)[1].decode()
        expected[txn_id] = Decimal(re.search(r"sum=([\d.]+)", query)[1])
    balance_before = LedgerAccount.objects.filter(subscriber__isnull=False).aggregate(s=Sum("balance"))["s"] or 0
    connections.close_all()

    port = free_port()
    log(f"starting abonent web --workers {args.workers} on port {port}")
    web = start_web(setup.database_url, port, args.workers, args.path)
    try:
        wait_ready(port, web)
        log(f"sending {len(requests):,} pay requests ({payments:,} payments twice) over {args.concurrency} connections")
        started = time.perf_counter()
        results = asyncio.run(load(port, requests, args.concurrency))
        seconds = time.perf_counter() - started
    finally:
        stop(web)

    log("checking the database")
    not_ok = [r for r in results if r[1] != 0]
    if not_ok:
        log(f"{len(not_ok)} answers were not 0, e.g. {not_ok[:3]}")
    prv_of: dict[str, set] = {}
    for txn_id, _result, prv, _ms, _head in results:
        prv_of.setdefault(txn_id, set()).add(prv)
    split_answers = sum(1 for prvs in prv_of.values() if len(prvs) > 1)
    ours = Payment.objects.filter(channel=f"agent:{AGENT}", external_id__startswith=run)
    stored = ours.count()
    stored_sum = ours.aggregate(s=Sum("amount"))["s"] or Decimal(0)
    # The intake's ledger key (actions.intake.ledger_key): "payment:<channel>|<txn_id>".
    entries = LedgerTransaction.objects.filter(idempotency_key__startswith=f"payment:agent:{AGENT}|{run}").count()
    balance_after = LedgerAccount.objects.filter(subscriber__isnull=False).aggregate(s=Sum("balance"))["s"] or 0
    growth = balance_after - balance_before
    expected_sum = sum(expected.values(), Decimal(0))
    mean = expected_sum / len(expected)
    duplicates = max(0, entries - payments) + max(0, round((growth - expected_sum) / mean))
    problems = ledger.verify()
    log(
        f"payments stored {stored:,}/{payments:,}, sum {stored_sum} (expected {expected_sum}), balances grew {growth}, "
        f"ledger entries {entries:,}, split answers {split_answers}, ledger.verify: {len(problems)} problems"
    )
    latencies = [r[3] for r in results]
    emit(
        {
            "bench": BENCH,
            "engine": setup.engine,
            "n": args.n,
            "payments": payments,
            "requests": len(results),
            "workers": args.workers,
            "path": args.path,
            "concurrency": args.concurrency,
            "seconds": round(seconds, 2),
            "rate": round(payments / seconds),
            "requests_per_s": round(len(results) / seconds),
            "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
            "duplicates": duplicates,
            "not_ok": len(not_ok),
            "missing": payments - stored,
            "split_answers": split_answers,
            "ledger_problems": len(problems),
            "seed_seconds": setup.seed_seconds,
        }
    )


if __name__ == "__main__":
    main()
