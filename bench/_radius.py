"""What bench/radius_auth.py and bench/radius_acct.py share: the seeded RADIUS data, the server under test,
FreeRADIUS's radclient, and a load generator (an epoll loop over raw UDP sockets) that measures per-request latency.

The database is ``abonent_bench_radius_<n>``: ``abonent seed`` (subscribers, catalog, subscriptions, opening
payments) plus, set-based, one PPPoE login per subscriber (``u<subscriber id>``, one of a few passwords,
each encrypted once with ``abonent.core.secrets.encrypt`` and the token reused) and one NAS at 127.0.0.1
(MikroTik, Message-Authenticator required). Requests go to the logins of subscribers with an active
internet subscription and money (balance + credit limit ≥ 0): every answer is a full-policy Access-Accept.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, base_parser, log, percentile, prepare

NAME = "radius"
SECRET = "bench-radius-secret"
NAS_IP = "127.0.0.1"
PASSWORDS = ["pw-alpha-1", "pw-bravo-22", "pw-charlie-333", "pw-delta-4444"]
PEER_NAME = "FreeRADIUS 3.2.1 + rlm_sql"


def parser(name: str, description: str, default_requests: int):
    p = base_parser(name, default_n=100_000, description=description)
    p.add_argument("--processes", type=int, default=1, help="abonent radius --processes (default 1)")
    p.add_argument("--inflight", type=int, default=50, help="requests in flight (default 50)")
    p.add_argument(
        "--requests", type=int, default=default_requests, help=f"timed requests (default {default_requests:,})"
    )
    p.add_argument("--burst", type=int, default=1000, help="requests sent at once for the drop check (default 1000)")
    p.add_argument("--no-radclient", action="store_true", help="skip the radclient measurement")
    p.add_argument("--profile", metavar="SVG", help="py-spy record the server (first process) during the generator run")
    return p


# --- data -----------------------------------------------------------------------------------------------------


def setup_data(args):
    """The seeded database plus logins and the NAS (idempotent); returns (Setup, eligible [(username, password)])."""
    setup = prepare(
        NAME,
        args.n,
        engine="postgresql",
        reseed=args.reseed,
        seed=args.seed,
        seeded_apps=("staff", "catalog", "subscribers", "billing"),
    )
    from django.db import connection, transaction

    from abonent.core import secrets
    from abonent.network.models import Nas

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM network_login")
        logins = cur.fetchone()[0]
    if logins != args.n:
        started = time.monotonic()
        tokens = [secrets.encrypt(pw) for pw in PASSWORDS]  # once each; every row reuses a token
        case = " ".join(f"WHEN {i} THEN %s" for i in range(len(tokens)))
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("DELETE FROM network_session")
            cur.execute("DELETE FROM network_login")
            cur.execute(
                "INSERT INTO network_login (subscriber_id, subscription_id, kind, username, password_encrypted, "
                "static_ip, pool_id, simultaneous_use, is_active, created_at, updated_at) "
                f"SELECT s.id, NULL, 'pppoe', 'u' || s.id, CASE s.id %% {len(tokens)} {case} END, NULL, NULL, 1, true, "
                "now(), now() FROM subscribers_subscriber s ORDER BY s.id",
                tokens,
            )
        with connection.cursor() as cur:
            cur.execute("ANALYZE network_login")
        log(f"logins: {args.n:,} PPPoE logins in {time.monotonic() - started:.1f}s")
    nas = Nas.objects.filter(ip_address=NAS_IP).first() or Nas(ip_address=NAS_IP)
    if nas.pk is None or nas.secret != SECRET or not nas.require_message_authenticator or not nas.is_active:
        nas.name, nas.vendor = "bench-nas", "mikrotik"
        nas.require_message_authenticator = True
        nas.is_active = True
        nas.set_secret(SECRET)
        nas.save()
    # A clean slate: no sessions (simultaneous-use would reject), no usage, no attempts from earlier runs.
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE network_coarequest, network_session, network_usageday, network_authattempt, network_radiusnode"
        )
        cur.execute(
            "SELECT l.username, l.subscriber_id FROM network_login l "
            "JOIN billing_subscription x ON x.subscriber_id = l.subscriber_id AND x.status = 'active' "
            "JOIN catalog_plan p ON p.id = x.plan_id JOIN catalog_service sv ON sv.id = p.service_id "
            "AND sv.kind = 'internet' "
            "JOIN billing_ledgeraccount a ON a.subscriber_id = l.subscriber_id "
            "JOIN subscribers_subscriber s ON s.id = l.subscriber_id AND s.status <> 'closed' "
            "WHERE a.balance >= -a.credit_limit ORDER BY l.subscriber_id"
        )
        rows = cur.fetchall()
    eligible = [(username, PASSWORDS[sid % len(PASSWORDS)]) for username, sid in rows]
    log(f"{len(eligible):,} of {args.n:,} logins have an active internet subscription and money")
    return setup, eligible


def pick(eligible: list, count: int, rng: random.Random) -> list:
    """``count`` users, distinct while there are enough (then cycling through a fresh shuffle)."""
    out: list = []
    while len(out) < count:
        chunk = eligible[:]
        rng.shuffle(chunk)
        out.extend(chunk[: count - len(out)])
    return out


# --- the server under test ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bound_sockets(port: int) -> int:
    needle = f":{port:04X} "
    count = 0
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as fh:
                next(fh)
                count += sum(1 for line in fh if needle in line.split()[1] + " ")
        except OSError:
            pass
    return count


def udp_counters() -> dict[str, int]:
    with open("/proc/net/snmp") as fh:
        rows = [line.split() for line in fh if line.startswith("Udp:")]
    return dict(zip(rows[0][1:], map(int, rows[1][1:]), strict=True))


def terminate(proc: subprocess.Popen | None) -> None:
    """SIGTERM (a server answers what it has queued before leaving), then SIGKILL after 30 s."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Server:
    database_url: str
    processes: int
    auth_port: int = field(default_factory=_free_port)
    acct_port: int = field(default_factory=_free_port)
    proc: subprocess.Popen | None = None
    spool: str = ""

    def start(self, timeout: float = 300.0) -> None:
        self.spool = tempfile.mkdtemp(prefix="bench-radius-")
        env = dict(
            os.environ,
            DATABASE_URL=self.database_url,
            ABONENT_LOG_LEVEL="WARNING",
            ABONENT_LOG_FORMAT="text",
            ABONENT_DEBUG=os.environ.get("ABONENT_DEBUG", "0"),  # DEBUG wraps every cursor (CursorDebugWrapper)
        )
        cmd = [
            str(ROOT / ".venv" / "bin" / "abonent"), "radius", "--bind", "127.0.0.1",
            "--auth-port", str(self.auth_port), "--acct-port", str(self.acct_port),
            "--processes", str(self.processes), "--spool-dir", self.spool,
        ]  # fmt: skip
        log("starting: " + " ".join(cmd[1:]))
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"abonent radius exited with {self.proc.returncode}")
            if _bound_sockets(self.auth_port) >= self.processes and _bound_sockets(self.acct_port) >= self.processes:
                break
            time.sleep(0.2)
        else:
            raise SystemExit("abonent radius did not bind its ports in time")
        log(f"server listening after {time.monotonic() - started:.1f}s (pid {self.proc.pid})")

    def pids(self) -> list[int]:
        """The processes that serve (the forked children when there are several)."""
        if self.processes <= 1:
            return [self.proc.pid]
        try:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
            return [int(x) for x in out.split()] or [self.proc.pid]
        except OSError:
            return [self.proc.pid]

    def cpu_seconds(self) -> float:
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in {self.proc.pid, *self.pids()}:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    parts = fh.read().rsplit(")", 1)[1].split()
                total += (int(parts[11]) + int(parts[12])) / tick
            except OSError:
                pass
        return total

    def stop(self) -> None:
        terminate(self.proc)
        if self.spool:
            shutil.rmtree(self.spool, ignore_errors=True)


# --- radclient ------------------------------------------------------------------------------------------------


# radclient walks its whole request list on every turn of its loop, so its CPU per request grows with the
# file (measured here: ~900 µs per request with 50,000 requests in one file). Files of this many requests,
# run one after another at the same concurrency, keep radclient from being the bottleneck.
RADCLIENT_FILE_REQUESTS = 2000


def run_radclient(blocks: list[str], port: int, command: str, inflight: int) -> dict:
    """``radclient -q -p <inflight> -s -f file 127.0.0.1:port command SECRET`` over the requests in ``blocks``,
    in files of ``RADCLIENT_FILE_REQUESTS`` run back to back."""
    paths = []
    for start in range(0, len(blocks), RADCLIENT_FILE_REQUESTS):
        with tempfile.NamedTemporaryFile("w", suffix=".radclient", delete=False) as fh:
            fh.write("\n\n".join(blocks[start : start + RADCLIENT_FILE_REQUESTS]) + "\n")
            paths.append(fh.name)
    log(f"running: radclient -q -p {inflight} -s -f FILE 127.0.0.1:{port} {command} SECRET over {len(paths)} files")
    before = udp_counters()
    t0 = time.monotonic()
    cpu0 = os.times()
    summary: dict[str, int] = {}
    returncode = 0
    for path in paths:
        cmd = ["radclient", "-q", "-p", str(inflight), "-s", "-f", path, f"127.0.0.1:{port}", command, SECRET]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        returncode = returncode or proc.returncode
        for line in (proc.stdout + proc.stderr).splitlines():
            if ":" in line:
                key, _, value = line.partition(":")
                value = value.strip()
                if value.isdigit():
                    summary[key.strip()] = summary.get(key.strip(), 0) + int(value)
    seconds = time.monotonic() - t0
    cpu1 = os.times()
    after = udp_counters()
    for path in paths:
        os.unlink(path)
    received = (
        summary.get("Accepted", 0) + summary.get("Rejected", 0)
        if "Accepted" in summary
        else summary.get("Packets received", 0)
    )
    return {
        "requests": len(blocks),
        "seconds": round(seconds, 3),
        "rate": round(len(blocks) / seconds),
        "received": received,
        "lost": summary.get("Lost", summary.get("Packets lost")),
        "rc": returncode,
        "cpu_s": round((cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system), 2),
        "kernel_drops": after["RcvbufErrors"] - before["RcvbufErrors"],
        "summary": summary,
    }


# --- the load generator -------------------------------------------------------------------------------------


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        fut = self.waiting.pop(data[1], None)
        if fut is not None and not fut.done():
            fut.set_result((time.perf_counter(), data[0]))


SOCKETS = 8  # source ports: SO_REUSEPORT spreads by source address and port, so one port would pin one process


def _nsock(workers: int) -> int:
    return max(min(SOCKETS, workers), (workers + 255) // 256)


def plan_ids(count: int, workers: int) -> list[tuple[int, int]]:
    """(socket index, RADIUS identifier) of each request: request i is sent by worker i % workers, and each
    worker owns one identifier on one of a few sockets, so no two requests in flight share an identifier."""
    nsock = _nsock(workers)
    return [((i % workers) % nsock, (i % workers) // nsock) for i in range(count)]


def _drive(packets: list[bytes], port: int, workers: int, timeout: float, retries: int) -> dict:
    """``workers`` requests in flight, each worker sending its next packet when the last one is answered.

    A plain epoll loop reading each socket until it is empty, with one scan for timeouts every 50 ms: it
    costs about a quarter of what an asyncio future and ``wait_for`` per request did, and every microsecond the
    generator spends is taken from the server and the database on this 2-core machine.
    """
    nsock = _nsock(workers)
    socks = []
    for _ in range(nsock):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        socks.append(sock)
    poller = select.epoll()
    by_fd = {}
    for index, sock in enumerate(socks):
        poller.register(sock.fileno(), select.EPOLLIN)
        by_fd[sock.fileno()] = (index, sock.recv)
    count = len(packets)
    active = min(workers, count)
    # Worker w sends packets w, w + workers, ... from socket w % nsock with identifier w // nsock (plan_ids).
    worker_of = [[-1] * 256 for _ in range(nsock)]
    for w in range(active):
        worker_of[w % nsock][w // nsock] = w
    current = list(range(active))  # each worker's packet in flight, -1 once it has none left
    sent_at = [0.0] * active
    attempts = [0] * active
    latencies: list[float] = [0.0] * count
    codes: dict[int, int] = {}
    lost = retried = 0
    remaining = active
    sends = [socks[w % nsock].send for w in range(active)]
    clock = time.perf_counter

    def advance(w: int, now: float) -> None:
        nonlocal remaining
        i = current[w] + workers
        if i < count:
            current[w], attempts[w], sent_at[w] = i, 0, now
            sends[w](packets[i])
        else:
            current[w] = -1
            remaining -= 1

    cpu0 = time.process_time()
    t0 = clock()
    for w in range(active):
        sent_at[w] = clock()
        sends[w](packets[w])
    next_scan = t0 + 0.05
    while remaining:
        for fd, _mask in poller.poll(0.05):
            index, recv = by_fd[fd]
            owners = worker_of[index]
            while True:
                try:
                    data = recv(4096)
                except (BlockingIOError, InterruptedError):
                    break
                now = clock()
                w = owners[data[1]]
                if w < 0 or current[w] < 0:
                    continue
                latencies[current[w]] = now - sent_at[w]
                codes[data[0]] = codes.get(data[0], 0) + 1
                advance(w, now)
        now = clock()
        if now >= next_scan:
            next_scan = now + 0.05
            for w in range(active):
                if current[w] >= 0 and now - sent_at[w] > timeout:
                    if attempts[w] < retries:
                        attempts[w] += 1
                        retried += 1
                        sent_at[w] = now
                        sends[w](packets[current[w]])
                    else:
                        lost += 1
                        latencies[current[w]] = -1.0
                        advance(w, now)
    seconds = clock() - t0
    cpu = time.process_time() - cpu0
    poller.close()
    for sock in socks:
        sock.close()
    done = [x * 1000 for x in latencies if x >= 0]
    return {
        "requests": count,
        "seconds": round(seconds, 3),
        "rate": round(count / seconds),
        "answered": len(done),
        "lost": lost,
        "retransmits": retried,
        "codes": codes,
        "p50_ms": round(percentile(done, 50), 3) if done else None,
        "p99_ms": round(percentile(done, 99), 3) if done else None,
        "max_ms": round(max(done), 3) if done else None,
        "source_sockets": nsock,
        "generator_cpu_s": round(cpu, 2),
        "generator_cpu_share": round(cpu / seconds, 2),
    }


def run_generator(packets: list[bytes], port: int, workers: int, timeout: float = 3.0, retries: int = 0) -> dict:
    before = udp_counters()
    result = _drive(packets, port, workers, timeout, retries)
    after = udp_counters()
    result["kernel_drops"] = after["RcvbufErrors"] - before["RcvbufErrors"]
    return result


async def _burst(packets: list[bytes], port: int, wait: float) -> dict:
    """All packets at once, none waited for; then count the answers that arrive within ``wait`` seconds."""
    loop = asyncio.get_running_loop()
    nsock = (len(packets) + 255) // 256
    clients = []
    for _ in range(nsock):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        _t, proto = await loop.create_datagram_endpoint(_Client, sock=sock)
        clients.append(proto)
    futs = []
    for i, _data in enumerate(packets):
        client = clients[i // 256]
        fut = loop.create_future()
        client.waiting[i % 256] = fut
        futs.append(fut)
    t0 = time.perf_counter()
    for i, data in enumerate(packets):
        clients[i // 256].transport.sendto(data)
    done, _pending = await asyncio.wait(futs, timeout=wait)
    seconds = max((f.result()[0] for f in done), default=t0) - t0
    for c in clients:
        c.transport.close()
    return {"sent": len(packets), "answered": len(done), "seconds_to_last_answer": round(seconds, 3)}


def run_burst(packets: list[bytes], port: int, wait: float = 10.0) -> dict:
    before = udp_counters()
    result = asyncio.run(_burst(packets, port, wait))
    after = udp_counters()
    result["kernel_drops"] = after["RcvbufErrors"] - before["RcvbufErrors"]
    result["udp_in_errors"] = after["InErrors"] - before["InErrors"]
    return result


def burst_ids(count: int) -> list[tuple[int, int]]:
    return [(i // 256, i % 256) for i in range(count)]


# --- profiling ------------------------------------------------------------------------------------------------


def start_profile(pid: int, svg: str) -> subprocess.Popen | None:
    spy = ROOT / ".venv" / "bin" / "py-spy"
    if not spy.exists():
        log("py-spy not installed (.venv/bin/pip install py-spy); no profile")
        return None
    log(f"py-spy record --pid {pid} -> {svg}")
    return subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--nonblocking",
            *os.environ.get("ABONENT_PYSPY_ARGS", "").split(),
            "-o",
            svg,
            "--format",
            "flamegraph" if svg.endswith(".svg") else "raw",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(proc: subprocess.Popen | None) -> None:
    if proc is not None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def chunked(seq, size):
    it = iter(seq)
    while chunk := list(itertools.islice(it, size)):
        yield chunk
