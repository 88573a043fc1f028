"""The subscriber portal's home page under load: 20 browsers at once, each signed in as random subscribers.

    python bench/portal_home.py [--subscribers 1000000] [--clients 20] [--requests 6000] [--workers 2]

The database is ``bench/dunning_sweep.py``'s: seeded once by ``abonent seed``'s staff, catalog, subscribers and
billing steps, then its world built set-based (balances through the ledger, most subscribers paid up and some
warned, restricted, suspended, frozen or exempt, access states as a sweep leaves them). On top of it, once,
set-based: a NAS, two closed sessions per subscriber over the last two days, an open one for 60 % (with today's
traffic), and the daily traffic rows. Nothing of that is timed.

Timed: real HTTP against ``abonent web`` (uvicorn, ``--workers`` processes, its clock fixed at the world's moment
by ``ABONENT_CLOCK``), ``--clients`` threads each sending ``GET /my/`` back to back over its own keep-alive
connection, each request with the portal session (cookie) of another random subscriber. Every answer is
checked: 200, the balance on the page is the subscriber's balance in the ledger, the access warning is there
exactly for the restricted and suspended. Target (DESIGN.md §5): p95 ≤ 50 ms at 20 clients over 1,000,000
subscribers. The load generator runs on the same machine as the server and the database: its own CPU time is
in the figures. Progress goes to stderr; the last line on stdout is the JSON result.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dunning_sweep as world
from _common import ROOT, base_parser, emit, log, percentile, prepare

os.environ.setdefault("ABONENT_DEBUG", "0")

NAME = "portal_home"
TARGET_P95_MS = 50
MOMENT = world.MOMENT
MARKER_TABLE = "bench_portal_home_ready"
ONLINE_PERCENT = 60
BALANCE = re.compile(r'data-testid="home-balance">([^<]*)</p>')
DEBT_NOTICE = re.compile(r'data-testid="home-access" data-state="(restricted|suspended)"')


def build(rebuild: bool) -> None:
    """dunning_sweep's world, settled, and the sessions and traffic: once per seeded database."""
    from abonent.catalog.models import Plan
    from abonent.core import clock
    from abonent.dunning import evaluation
    from abonent.subscribers.models import SubscriberGroup

    if not rebuild and world._scalar(f"SELECT to_regclass('{MARKER_TABLE}') IS NOT NULL"):
        log("world, sessions and traffic already built")
        return
    world._execute(f"DROP TABLE IF EXISTS {MARKER_TABLE}")
    gamer_plan = Plan.objects.get(code=world.RULE_PLAN).pk
    exempt_group = SubscriberGroup.objects.filter(name=world.EXEMPT_GROUP).values_list("pk", flat=True).first() or 0
    started = time.monotonic()
    groups = world.build_world(exempt_group)
    log(f"world: {sum(groups.values()):,} subscribers in groups {groups}")
    with clock.travel_to(world.SETTLED_AT):
        world.reset(str(int(time.time())), gamer_plan, exempt_group)
        world.vacuum()
        settled = evaluation.sweep()
    log(f"world settled in {time.monotonic() - started:.1f}s ({settled})")
    started = time.monotonic()
    seed_network()
    log(f"sessions and traffic in {time.monotonic() - started:.1f}s")
    world._execute(f"CREATE TABLE {MARKER_TABLE} AS SELECT now() AS built_at")


def seed_network() -> None:
    """Sessions and daily traffic for everyone, set-based. Sessions' days are the operator's (Moscow)."""
    from django.db import connection

    from abonent.core import clock
    from abonent.network import actions as network
    from abonent.network.models import Nas
    from abonent.staff.models import StaffUser

    with clock.travel_to(MOMENT):
        nas = Nas.objects.filter(name="bench-portal").first() or network.do_create_nas(
            acting_user=StaffUser.objects.filter(role="admin").order_by("pk").first(),
            name="bench-portal",
            ip_address="198.51.100.1",
            secret="bench-portal-radius-secret",
            vendor="mikrotik",
        )
    world._execute("TRUNCATE network_session, network_usageday, network_coarequest")
    today = world.TODAY
    online = f"(s.id * 2654435761 % 4294967296) / 4096 % 100 < {ONLINE_PERCENT}"
    address = "('10.' || (s.id / 65536) % 256 || '.' || (s.id / 256) % 256 || '.' || s.id % 256)::inet"
    columns = (
        "nas_id, unique_id, acct_session_id, subscriber_id, username, framed_ip, calling_station_id, nas_port_id, "
        "status, started_at, updated_at, stopped_at, session_time, input_octets, output_octets, last_delta_in, "
        "last_delta_out, terminate_cause, counters_32bit"
    )
    # Two closed sessions a day ago and two days ago, 8 hours each from 18:00 Moscow time.
    closed = world._execute(
        f"INSERT INTO network_session ({columns}) "
        f"SELECT %s, md5(s.id || ':' || k), 'bench-' || s.id || '-' || k, s.id, 'demo' || s.id, {address}, "
        "'AA:BB:CC:' || lpad(to_hex(s.id % 16777216), 6, '0'), '', 'closed', "
        "(%s::date - k + TIME '15:00') AT TIME ZONE 'UTC', (%s::date - k + TIME '23:00') AT TIME ZONE 'UTC', "
        "(%s::date - k + TIME '23:00') AT TIME ZONE 'UTC', 28800, 50000000 + s.id % 1000, 900000000 + s.id % 7919, "
        "0, 0, 'User-Request', false "
        "FROM subscribers_subscriber s CROSS JOIN generate_series(1, 2) AS k ORDER BY s.id, k",
        [nas.pk, today, today, today],
    )
    opened = world._execute(
        f"INSERT INTO network_session ({columns}) "
        f"SELECT %s, md5(s.id || ':open'), 'bench-' || s.id || '-open', s.id, 'demo' || s.id, {address}, "
        "'AA:BB:CC:' || lpad(to_hex(s.id % 16777216), 6, '0'), '', 'open', "
        "%s - make_interval(mins => (s.id % 600)::int), %s, NULL, 0, 1000000 + s.id % 1000, "
        "20000000 + s.id % 7919, 0, 0, '', false "
        f"FROM subscribers_subscriber s WHERE {online} ORDER BY s.id",
        [nas.pk, MOMENT, MOMENT],
    )
    days = world._execute(
        "INSERT INTO network_usageday (subscriber_id, day, input_octets, output_octets) "
        "SELECT s.id, %s::date - k, 50000000 + s.id % 1000, 900000000 + s.id % 7919 "
        "FROM subscribers_subscriber s CROSS JOIN generate_series(1, 2) AS k ORDER BY s.id, k",
        [today],
    )
    days += world._execute(
        "INSERT INTO network_usageday (subscriber_id, day, input_octets, output_octets) "
        f"SELECT s.id, %s, 1000000 + s.id % 1000, 20000000 + s.id % 7919 FROM subscribers_subscriber s "
        f"WHERE {online} ORDER BY s.id",
        [today],
    )
    with connection.cursor() as cursor:
        for table in ("network_session", "network_usageday"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    log(f"network: {closed:,} closed and {opened:,} open sessions, {days:,} days of traffic")


def sign_in(subscriber_ids: list[int]) -> list[str]:
    """A portal session (cookie secret) per subscriber, as the login view opens them (one INSERT)."""
    import secrets

    from abonent.core import clock
    from abonent.portal.models import PortalSession, SessionKind
    from abonent.portal.sessions import _lifetimes, hash_secret

    with clock.travel_to(MOMENT):
        now = clock.now()
        secrets_ = [secrets.token_urlsafe(32) for _ in subscriber_ids]
        PortalSession.objects.bulk_create(
            PortalSession(
                subscriber_id=sid,
                kind=SessionKind.WEB,
                key_hash=hash_secret(secret),
                created_at=now,
                last_seen_at=now,
                expires_at=now + _lifetimes(SessionKind.WEB)[1],
                user_agent="bench/portal_home",
            )
            for sid, secret in zip(subscriber_ids, secrets_, strict=True)
        )
    return secrets_


def expected_pages(subscriber_ids: list[int]) -> dict[int, tuple[str, bool]]:
    """Per subscriber: the balance as the page prints it (English) and whether the debt notice must show."""
    from django.utils import translation

    from abonent.billing.models import LedgerAccount
    from abonent.core.money import format_money
    from abonent.dunning.models import AccessState

    balances = dict(
        LedgerAccount.objects.filter(subscriber_id__in=subscriber_ids).values_list("subscriber_id", "balance")
    )
    debtors = set(
        AccessState.objects.filter(subscriber_id__in=subscriber_ids, state__in=["restricted", "suspended"]).values_list(
            "subscriber_id", flat=True
        )
    )
    with translation.override("en"):
        return {sid: (format_money(balances[sid]), sid in debtors) for sid in subscriber_ids}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(database_url: str, port: int, workers: int, metrics_dir: str, wsgi: bool = False):
    env = {
        **os.environ,
        # The server's own time per request, from every worker: its latency histogram (core.metrics).
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "DATABASE_URL": database_url,
        "ABONENT_CLOCK": MOMENT.isoformat(),
        "ABONENT_DEBUG": "0",
        "ABONENT_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-c", "from abonent.cli import main; main()", "web", "--port", str(port)]
    command += ["--workers", str(workers)]
    if wsgi:
        # For comparison only: the same application served through WSGI (what ASGI's per-request thread hops cost).
        command = [sys.executable, "-m", "uvicorn", "abonent.wsgi:application", "--interface", "wsgi", "--port"]
        command += [str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"abonent web exited: {server.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/my/login/")
            conn.getresponse().read()
            conn.close()
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("abonent web did not answer within 60 s")


_SERIES = re.compile(r"^abonent_http_request_duration_seconds_(sum|count|bucket)\{([^}]*)\} ([0-9.e+-]+)$", re.M)


def server_times(port: int) -> dict[str, float]:
    """The server's latency histogram of ``GET /my/`` so far: ``sum`` (seconds), ``count`` and ``le_<bound>``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics", headers={"Host": "127.0.0.1"})
    text = conn.getresponse().read().decode()
    conn.close()
    found: dict[str, float] = {}
    for kind, labels, value in _SERIES.findall(text):
        if 'route="my/"' not in labels or 'method="GET"' not in labels:
            continue
        if kind == "bucket":
            kind = "le_" + re.search(r'le="([^"]+)"', labels)[1]
        found[kind] = found.get(kind, 0.0) + float(value)
    return found


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_now(server_pid: int, database: str) -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds so far of the web server's processes and of PostgreSQL's backends serving the database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database])
        backends = [pid for (pid,) in cursor.fetchall()]
    connection.close()
    return (
        {pid: _cpu_seconds(pid) for pid in _descendants(server_pid)},
        {pid: _cpu_seconds(pid) for pid in backends},
    )


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


class Client(threading.Thread):
    """One browser: ``GET /my/`` back to back over one keep-alive connection, each time as the next of its own
    subscribers; records the time of each answer and whether it showed what it should."""

    def __init__(self, port: int, signed_in, count: int, expected, rng: random.Random, think_ms: float = 0):
        super().__init__(daemon=True)
        self.port, self.signed_in, self.count, self.expected, self.rng = port, signed_in, count, expected, rng
        self.think = think_ms / 1000
        self.timings: list[float] = []
        self.wrong: list[str] = []
        self.start_gate: threading.Barrier | None = None

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        if self.start_gate is not None:
            self.start_gate.wait()
        for _ in range(self.count):
            if self.think:
                time.sleep(self.rng.uniform(0.5, 1.5) * self.think)
            subscriber_id, secret = self.rng.choice(self.signed_in)
            headers = {"Cookie": f"abonent_my={secret}", "Accept-Language": "en", "Host": "127.0.0.1"}
            started = time.perf_counter()
            conn.request("GET", "/my/", headers=headers)
            response = conn.getresponse()
            body = response.read()
            self.timings.append((time.perf_counter() - started) * 1000)
            self.check(subscriber_id, response.status, body.decode())

    def check(self, subscriber_id: int, status: int, html: str) -> None:
        balance, debtor = self.expected[subscriber_id]
        if status != 200:
            self.wrong.append(f"{subscriber_id}: HTTP {status}")
            return
        shown = BALANCE.search(html)
        if shown is None or shown[1] != balance:
            self.wrong.append(f"{subscriber_id}: balance {shown[1] if shown else None!r}, expected {balance!r}")
        if bool(DEBT_NOTICE.search(html)) != debtor:
            self.wrong.append(f"{subscriber_id}: debt notice {'missing' if debtor else 'shown'}")


def run_clients(port, signed_in, clients: int, per_client: int, expected, rng, think_ms: float = 0):
    pools = [signed_in[k::clients] for k in range(clients)]
    workers = [
        Client(port, pools[k], per_client, expected, random.Random(rng.random()), think_ms) for k in range(clients)
    ]
    gate = threading.Barrier(clients + 1)
    for worker in workers:
        worker.start_gate = gate
        worker.start()
    gate.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return workers, time.perf_counter() - started


def main() -> None:
    parser = base_parser(NAME, default_n=1_000_000, description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", dest="n", type=int, help="the same as --n")
    parser.add_argument("--clients", type=int, default=20, help="browsers at once (default 20)")
    parser.add_argument("--requests", type=int, default=6000, help="timed requests in all (default 6000)")
    parser.add_argument("--warmup", type=int, default=1000, help="untimed requests first (default 1000)")
    parser.add_argument("--signed-in", type=int, default=4000, help="random subscribers signed in (default 4000)")
    parser.add_argument("--workers", type=int, default=2, help="abonent web processes (default 2)")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0,
        help="a pause of about this long before each request (a person reading); default 0: back to back",
    )
    parser.add_argument("--wsgi", action="store_true", help="serve through WSGI instead of abonent web (comparison)")
    parser.add_argument("--rebuild", action="store_true", help="build the world, sessions and traffic again")
    args = parser.parse_args()
    if args.engine != "postgresql":
        raise SystemExit("this benchmark builds its world with PostgreSQL's SQL; run it on PostgreSQL")
    setup = prepare(NAME, args.n, engine=args.engine, reseed=args.reseed, seed=args.seed, seeded_apps=world.SEEDED_APPS)
    build(args.rebuild or setup.seed_seconds is not None)

    from django.db import connections

    from abonent.portal.models import PortalSession
    from abonent.subscribers.models import Subscriber

    rng = random.Random(args.seed)
    top = Subscriber.objects.order_by("-pk").values_list("pk", flat=True).first()
    chosen = sorted(rng.sample(range(1, top + 1), min(args.signed_in, top)))
    chosen = list(Subscriber.objects.filter(pk__in=chosen).order_by("pk").values_list("pk", flat=True))
    PortalSession.objects.filter(user_agent="bench/portal_home").delete()
    signed_in = list(zip(chosen, sign_in(chosen), strict=True))
    expected = expected_pages(chosen)
    log(f"{len(signed_in):,} subscribers signed in; {sum(d for _b, d in expected.values()):,} of them in debt")
    connections.close_all()

    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="bench-portal-metrics-")
    server = start_server(setup.database_url, port, args.workers, metrics_dir, wsgi=args.wsgi)
    try:
        log(f"abonent web on port {port} with {args.workers} workers; warm-up: {args.warmup} requests")
        run_clients(port, signed_in, args.clients, max(args.warmup // args.clients, 1), expected, rng)
        before = server_times(port)
        cpu_before = cpu_now(server.pid, setup.database)
        per_client = max(args.requests // args.clients, 1)
        log(f"timing {per_client * args.clients:,} requests from {args.clients} clients")
        clients, seconds = run_clients(port, signed_in, args.clients, per_client, expected, rng, args.think_ms)
        after = server_times(port)
        cpu_after = cpu_now(server.pid, setup.database)
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    served = after.get("count", 0) - before.get("count", 0)
    server_mean = (after.get("sum", 0) - before.get("sum", 0)) / served * 1000 if served else None
    within_100 = (after.get("le_0.1", 0) - before.get("le_0.1", 0)) / served if served else None
    web_cpu_ms = cpu_spent(cpu_before[0], cpu_after[0]) / max(served, 1) * 1000
    db_cpu_ms = cpu_spent(cpu_before[1], cpu_after[1]) / max(served, 1) * 1000
    timings = [t for c in clients for t in c.timings]
    wrong = [w for c in clients for w in c.wrong]
    for line in wrong[:10]:
        log(f"  WRONG {line}")

    def r(value):
        return None if value is None else round(value, 1)

    log(f"p50 {r(percentile(timings, 50))} ms, p95 {r(percentile(timings, 95))} ms, {len(timings) / seconds:.0f}/s")
    log(f"server time: mean {r(server_mean)} ms, {within_100:.2%} within 100 ms" if served else "no server times")
    log(f"CPU per request: web {web_cpu_ms:.1f} ms, PostgreSQL {db_cpu_ms:.1f} ms; machine load {os.getloadavg()}")
    emit(
        {
            "bench": NAME,
            "engine": setup.engine,
            "subscribers": args.n,
            "n": args.n,
            "clients": args.clients,
            "workers": args.workers,
            "server": "uvicorn --interface wsgi" if args.wsgi else "abonent web",
            "think_ms": args.think_ms,
            "requests": len(timings),
            "seconds": round(seconds, 1),
            "rate": round(len(timings) / seconds, 1),
            "p50_ms": r(percentile(timings, 50)),
            "p95_ms": r(percentile(timings, 95)),
            "p99_ms": r(percentile(timings, 99)),
            "wrong": len(wrong),
            # The server's own time (after the socket, before the answer leaves), from its latency histogram.
            "server_mean_ms": r(server_mean),
            "server_within_100ms": None if within_100 is None else round(within_100, 4),
            # CPU spent per request by the web server's processes and by PostgreSQL's backends for this database.
            "web_cpu_ms": round(web_cpu_ms, 2),
            "db_cpu_ms": round(db_cpu_ms, 2),
            "load_average": round(os.getloadavg()[0], 1),
            "target_p95_ms": TARGET_P95_MS,
            "seed_seconds": setup.seed_seconds,
        }
    )


if __name__ == "__main__":
    main()
