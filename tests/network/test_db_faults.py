"""A database that hangs, loses a backend or restarts: every Accounting-Request is still answered within 2 s,
and the totals come out exact (issue 12).

``abonent radius`` runs as its own process here, its database reached through a TCP proxy that can go silent
(sockets open, nothing forwarded: a frozen server, a failover in progress) and drop every connection (the
server restarted), so the PostgreSQL server the other tests share is never touched. radclient is the NAS.
"""

from __future__ import annotations

import datetime as dt
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import OperationalError, connection, connections

from abonent.network.accounting import INTERIM, START, AcctRecord
from abonent.network.models import RadiusNode, Session, SessionStatus, UsageDay
from abonent.network.radius.spool import Spool
from abonent.network.radius.stats import Stats
from abonent.network.radius.writer import AccountingWriter
from abonent.network.testing import radclient

from .conftest import SECRET
from .test_radclient_acct import acct
from .test_writer import run_on_postgresql, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("radius")]

ROOT = Path(__file__).resolve().parents[2]
# The issue asks for a lock held 30 s (ABONENT_TEST_LOCK_SECONDS=30); 15 s by default keep the test near 30 s
# in a suite that runs beside others. Either is far past accel-ppp's acct-timeout and a NAS's retransmissions.
LOCK_SECONDS = float(os.environ.get("ABONENT_TEST_LOCK_SECONDS", 15))


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the database faults are PostgreSQL's")


class PostgresProxy:
    """127.0.0.1:<port> in front of the test's PostgreSQL. ``silence()``: nothing is forwarded any more, and
    every socket stays open, new ones too (the server says nothing); ``silence(answers_only=True)``: what the
    clients send still reaches the server, which executes and commits it, but its answers are held back;
    ``restart(refuse_seconds)``: every connection is reset and new ones refused for a while, then forwarded
    again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._peers: dict[socket.socket, socket.socket | None] = {}
        self._upstream: set[socket.socket] = set()  # the server's side of each connection
        self._silent = False
        self._answers_held = False
        self._refuse_until = 0.0
        self._reset = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="postgres-proxy", daemon=True)
        self._thread.start()

    def silence(self, *, answers_only: bool = False) -> None:
        if answers_only:
            self._answers_held = True
        else:
            self._silent = True

    def restart(self, refuse_seconds: float) -> None:
        self._refuse_until = time.monotonic() + refuse_seconds
        self._reset.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        while not self._stop.is_set():
            if self._reset.is_set():
                self._reset.clear()
                self._drop_all(selector)
                self._silent = self._answers_held = False
            for key, _events in selector.select(0.02):
                sock = key.fileobj
                if sock is self.listener:
                    self._accept(selector)
                elif self._silent or (self._answers_held and sock in self._upstream):
                    selector.unregister(sock)  # left unread: what was sent waits in the kernel, unanswered
                else:
                    self._pump(selector, sock)
        self._drop_all(selector)
        selector.close()
        self.listener.close()

    def _accept(self, selector) -> None:
        try:
            client, _addr = self.listener.accept()
        except BlockingIOError:
            return
        if time.monotonic() < self._refuse_until:
            _reset(client)
            return
        if self._silent:
            self._peers[client] = None
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _reset(client)
            return
        self.connections += 1
        self._peers[client], self._peers[server] = server, client
        self._upstream.add(server)
        for sock in (client, server):
            selector.register(sock, selectors.EVENT_READ)

    def _pump(self, selector, sock) -> None:
        peer = self._peers.get(sock)
        try:
            data = sock.recv(65536)
            if data and peer is not None:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._drop(selector, sock, reset=False)

    def _drop_all(self, selector) -> None:
        while self._peers:
            self._drop(selector, next(iter(self._peers)), reset=True)

    def _drop(self, selector, sock, *, reset: bool) -> None:
        peer = self._peers.pop(sock, None)
        for each in (sock, peer):
            if each is None:
                continue
            self._peers.pop(each, None)
            self._upstream.discard(each)
            with suppress(KeyError, ValueError):
                selector.unregister(each)
            if reset:
                _reset(each)
            else:
                each.close()


def _reset(sock: socket.socket) -> None:
    """Close with a RST, as a host whose server died answers."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.fixture
def proxy():
    database = settings.DATABASES["default"]
    running = PostgresProxy((database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432)))
    yield running
    running.close()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RadiusProcess:
    def __init__(self, process: subprocess.Popen, acct_port: int, log: Path) -> None:
        self.process, self.acct_port, self.log = process, acct_port, log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def radius_process(tmp_path: Path, database_port: int, **environment: str):
    """``abonent radius`` as a process of its own, its database at 127.0.0.1:``database_port``."""
    database = settings.DATABASES["default"]
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{credentials}@127.0.0.1:{database_port}/{database['NAME']}",
        "ABONENT_LOG_FORMAT": "text",
        "ABONENT_LOG_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **environment,
    }
    auth_port, acct_port = _free_udp_port(), _free_udp_port()
    log = tmp_path / "radius.log"
    command = [sys.executable, "-m", "abonent.cli", "radius", "--bind", "127.0.0.1"]
    command += ["--auth-port", str(auth_port), "--acct-port", str(acct_port), "--spool-dir", str(tmp_path / "spool")]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    running = RadiusProcess(process, acct_port, log)
    try:
        deadline = time.monotonic() + 60
        while " listening on " not in running.output():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("abonent radius did not start:\n" + running.output()[-4000:])
            time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def interim(session: int, step: int, status: str = "Interim-Update") -> str:
    """Session ``session``'s record at ``step``: its counters are cumulative and grow with every step."""
    return acct(
        status,
        f"fault-{session}",
        Acct_Session_Time=10 * step,
        Acct_Input_Octets=1000 * step * (session + 1),
        Acct_Output_Octets=3000 * step * (session + 1),
    )


class Traffic:
    """Two NAS-like senders, each with two sessions, sending Interim-Updates one after another through every
    fault. radclient sends each request once and waits 2 s for the answer: an unanswered one is listed."""

    SESSIONS = 4

    def __init__(self, acct_port: int) -> None:
        self.acct_port = acct_port
        self.steps = [0] * self.SESSIONS
        self.waits: list[float] = []
        self.unanswered: list[tuple] = []  # (the request's status and session, seconds waited, radclient's words)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send_loop, args=(range(first, self.SESSIONS, 2),), daemon=True)
            for first in (0, 1)
        ]

    def send(self, packet: str) -> None:
        started = time.monotonic()
        result = radclient(self.acct_port, SECRET, "acct", packet, retries=1, timeout=2.0)
        wait = time.monotonic() - started
        self.waits.append(wait)
        if "Received Accounting-Response" not in result.stdout:
            self.unanswered.append((packet.splitlines()[1:3], round(wait, 2), result.stdout[-300:]))

    def _send_loop(self, sessions) -> None:
        while not self._stop.is_set():
            for session in sessions:
                self.steps[session] += 1
                self.send(interim(session, self.steps[session]))
            time.sleep(0.05)

    def start(self) -> None:
        for session in range(self.SESSIONS):
            self.send(acct("Start", f"fault-{session}"))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the senders, then end each session with a Stop one step past its last record."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        for session in range(self.SESSIONS):
            self.steps[session] += 1
            self.send(interim(session, self.steps[session], status="Stop"))


def wait_for(predicate, seconds: float, what: str, radius: RadiusProcess | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out waiting for {what}" + (f"; the server said:\n{radius.output()[-4000:]}" if radius else "")
            )
        time.sleep(0.1)


def spool_replayed(since: dt.datetime) -> bool:
    """The process has published, after ``since``, that its spool has nothing left to replay."""
    connection.close()  # a fresh look, not a connection the faults may have broken
    return RadiusNode.objects.filter(updated_at__gt=since, spool_backlog=False).exists()


def published_counter(name: str) -> int:
    connection.close()
    return sum((node.counters or {}).get("all", {}).get(name, 0) for node in RadiusNode.objects.all())


@pytest.mark.slow  # abonent radius in a process of its own
def test_accounting_is_answered_within_2_s_through_a_lock_a_killed_backend_and_a_restart(
    customer, make_nas, tmp_path, proxy
):
    make_nas()
    with radius_process(tmp_path, proxy.port) as radius:
        traffic = Traffic(radius.acct_port)
        traffic.start()
        time.sleep(0.5)

        # 1. Someone holds an exclusive lock on the sessions table for LOCK_SECONDS.
        with psycopg.connect(proxy_free_conninfo(), autocommit=False) as locker:
            locker.execute("LOCK TABLE network_session IN ACCESS EXCLUSIVE MODE")
            time.sleep(LOCK_SECONDS)
            locker.rollback()
        released = dt.datetime.now(dt.UTC)
        wait_for(lambda: spool_replayed(released), 20, "the spool to be replayed after the lock", radius)
        assert not traffic.unanswered, traffic.unanswered

        # 2. The backends of the server are killed, the accounting writer's among them (back on its connection
        # now that the spool is empty).
        with psycopg.connect(proxy_free_conninfo(), autocommit=True) as admin:
            wait_for(lambda: writer_backends(admin), 10, "the accounting writer to reconnect", radius)
            killed = admin.execute(
                "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE 'abonent radius%'"
            ).fetchall()
        assert ("abonent radius accounting", True) in killed, killed
        killed_at = dt.datetime.now(dt.UTC)
        time.sleep(2)
        wait_for(lambda: spool_replayed(killed_at), 20, "the spool to be replayed after the kill", radius)
        assert not traffic.unanswered, traffic.unanswered

        # 3. The database goes silent (a failover under way): what is sent still reaches it and is written, but no
        # answer comes back, so a batch given up on is both committed and spooled. Then it restarts: every
        # connection is reset and new ones are refused for a while.
        timeouts_before = published_counter("accounting_timeouts")
        with psycopg.connect(proxy_free_conninfo(), autocommit=True) as admin:
            wait_for(lambda: writer_backends(admin), 10, "the accounting writer to reconnect", radius)
        proxy.silence(answers_only=True)
        time.sleep(3)
        proxy.restart(refuse_seconds=1.5)
        restarted = dt.datetime.now(dt.UTC)
        wait_for(lambda: spool_replayed(restarted), 30, "the spool to be replayed after the restart", radius)
        assert not traffic.unanswered, traffic.unanswered

        traffic.stop()
        stopped = dt.datetime.now(dt.UTC)
        wait_for(lambda: spool_replayed(stopped), 20, "the last records to be written", radius)
    output = radius.output()
    assert radius.process.returncode == 0, output[-4000:]
    assert not traffic.unanswered, traffic.unanswered
    # The silent database was noticed by the writer's watchdog, not by the restart.
    assert published_counter("accounting_timeouts") > timeouts_before, output[-4000:]

    connection.close()
    sessions = {s.acct_session_id: s for s in Session.objects.all()}
    assert set(sessions) == {f"fault-{i}" for i in range(Traffic.SESSIONS)}
    for i, step in enumerate(traffic.steps):
        session = sessions[f"fault-{i}"]
        assert (session.status, session.session_time) == (SessionStatus.CLOSED, 10 * step)
        assert (session.input_octets, session.output_octets) == (1000 * step * (i + 1), 3000 * step * (i + 1))
    # Each record's growth added to the day exactly once: the days sum to the sessions' totals.
    days = UsageDay.objects.filter(subscriber=customer)
    assert sum(d.input_octets for d in days) == sum(1000 * s * (i + 1) for i, s in enumerate(traffic.steps))
    assert sum(d.output_octets for d in days) == sum(3000 * s * (i + 1) for i, s in enumerate(traffic.steps))
    print(
        f"\n{len(traffic.waits)} Accounting-Requests, slowest answer {max(traffic.waits):.2f} s, "
        f"lock held {LOCK_SECONDS:g} s"
    )


def writer_backends(admin) -> list:
    return admin.execute(
        "SELECT pid FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'abonent radius accounting'"
    ).fetchall()


def proxy_free_conninfo() -> str:
    """The test's own database, directly (not through the proxy)."""
    database = settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        host=database["HOST"] or "127.0.0.1",
        port=database["PORT"] or 5432,
        dbname=database["NAME"],
        user=database["USER"],
        password=database["PASSWORD"] or None,
    )


# --- each deadline on its own, in this process ------------------------------------------------------------------


def record(nas, name: str, status: int = START) -> AcctRecord:
    return AcctRecord(
        status=status, nas_id=nas.pk, event_time=dt.datetime.now(dt.UTC), unique_id=name, acct_session_id=name
    )


def test_a_batch_a_silent_database_leaves_unanswered_is_spooled_and_answered(tmp_path, make_nas, proxy, settings):
    settings.ABONENT_RADIUS_DB_TIMEOUT = 0.5
    nas = make_nas()
    stats = Stats()
    spool = Spool(tmp_path)
    writer = AccountingWriter(spool, stats, lanes=1)
    writer.conninfo = psycopg.conninfo.make_conninfo(writer.conninfo, host="127.0.0.1", port=proxy.port)
    waited = []

    async def steps(writer, submit):
        answered = submit([record(nas, "before")])
        await until(lambda: len(answered) == 1)
        proxy.silence()
        started = time.monotonic()
        submit([record(nas, "during-1"), record(nas, "during-2")])
        await until(lambda: len(answered) == 3, seconds=10)
        waited.append(time.monotonic() - started)
        proxy.restart(refuse_seconds=0)

    answered = run_on_postgresql(writer, steps)
    assert len(answered) == 3
    assert waited[0] < 2.0
    assert (stats.total("accounting_timeouts"), stats.total("accounting_spooled")) == (1, 2)
    assert spool.replay() == 2
    assert set(Session.objects.values_list("unique_id", flat=True)) == {"before", "during-1", "during-2"}


def test_a_batch_given_up_on_that_the_database_wrote_anyway_is_counted_once(
    customer, tmp_path, make_nas, proxy, settings
):
    settings.ABONENT_RADIUS_DB_TIMEOUT = 0.5
    nas = make_nas()
    stats = Stats()
    spool = Spool(tmp_path)
    writer = AccountingWriter(spool, stats, lanes=1)
    writer.conninfo = psycopg.conninfo.make_conninfo(writer.conninfo, host="127.0.0.1", port=proxy.port)

    def interim_record(name: str, seconds: int, octets: int) -> AcctRecord:
        return AcctRecord(
            status=INTERIM,
            nas_id=nas.pk,
            event_time=dt.datetime.now(dt.UTC),
            unique_id=name,
            acct_session_id=name,
            subscriber_id=customer.pk,
            session_time=seconds,
            input_octets=octets,
            output_octets=2 * octets,
        )

    async def steps(writer, submit):
        answered = submit([interim_record("late", 60, 1000)])
        await until(lambda: len(answered) == 1)
        proxy.silence(answers_only=True)
        submit([interim_record("late", 120, 5000)])
        await until(lambda: len(answered) == 2, seconds=10)  # given up on, spooled, answered
        proxy.restart(refuse_seconds=0)

    run_on_postgresql(writer, steps)
    assert (stats.total("accounting_timeouts"), stats.total("accounting_spooled")) == (1, 1)
    connection.close()
    session = Session.objects.get(unique_id="late")
    # The database wrote the batch it never answered...
    assert (session.session_time, session.input_octets, session.output_octets) == (120, 5000, 10000)
    # ...and the spool writes it again: nothing is counted twice.
    assert spool.replay() == 1
    session.refresh_from_db()
    assert (session.session_time, session.input_octets, session.output_octets) == (120, 5000, 10000)
    usage = UsageDay.objects.filter(subscriber=customer)
    assert (sum(d.input_octets for d in usage), sum(d.output_octets for d in usage)) == (5000, 10000)


def proxied_database(port: int):
    """A Django connection to the test's database through the proxy, set up as ``abonent radius`` sets up its own."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    database = {**settings.DATABASES["default"], "HOST": "127.0.0.1", "PORT": port, "CONN_MAX_AGE": None}
    # As abonent radius has its own (radius/deadlines.py, process_database): kept open, no pool, a connect timeout.
    options = {key: value for key, value in database["OPTIONS"].items() if key != "pool"}
    database["OPTIONS"] = {**options, "connect_timeout": 2}
    return DatabaseWrapper(database, "default")


def test_the_spool_replay_gives_up_on_a_silent_database_at_its_deadline(tmp_path, make_nas, proxy, settings):
    """The replay runs on the writer's thread, which the maintenance thread waits for: a database that stops
    answering in the middle of it must not stop both for good."""
    settings.ABONENT_RADIUS_DB_TIMEOUT = 0.5
    nas = make_nas()
    spool = Spool(tmp_path)
    spool.append([record(nas, "spooled-1"), record(nas, "spooled-2")])
    writer = AccountingWriter(spool, Stats(), lanes=1, use_async=False)

    def through_the_proxy():
        connections["default"] = proxied_database(proxy.port)
        return Session.objects.count()  # connected through the proxy

    assert writer.executor.submit(through_the_proxy).result(10) == 0
    proxy.silence()
    outcome = []

    def replay():
        started = time.monotonic()
        try:
            writer.replay()
        except Exception as exc:  # the test asserts which below
            outcome.append(exc)
        outcome.append(time.monotonic() - started)

    thread = threading.Thread(target=replay, daemon=True)
    thread.start()
    thread.join(10)
    proxy.restart(refuse_seconds=0)  # also frees a replay still waiting
    assert not thread.is_alive() and outcome, "the replay still waits on the silent database"
    error, waited = outcome
    assert isinstance(error, OperationalError)
    assert waited < 2.0
    assert spool.has_backlog()  # kept for the next attempt
    writer.close()
    # The process stops; the next one on the directory replays the file (2 records), nothing lost.
    successor = Spool(tmp_path)
    assert successor.refresh()
    assert successor.replay() == 2
    successor.close()


def test_past_the_queue_limit_a_request_is_dropped_unanswered_and_its_retransmission_answered(
    customer, make_nas, server, settings
):
    settings.ABONENT_RADIUS_QUEUE_MAX = 3  # records held: the one in flight and two waiting behind it
    settings.ABONENT_RADIUS_DB_TIMEOUT = 20  # the batch held by the lock waits for it, and the queue fills
    make_nas()
    results = {}

    def send_in_background(name: str, **kw) -> threading.Thread:
        def run():
            results[name] = radclient(running.acct_port, SECRET, "acct", acct("Start", name), **kw)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    with server() as running, psycopg.connect(proxy_free_conninfo()) as locker:
        writer = running.server.writer
        locker.execute("LOCK TABLE network_session IN ACCESS EXCLUSIVE MODE")
        threads = [send_in_background("held", retries=1, timeout=30)]
        wait_for(lambda: writer.lanes[0].busy, 10, "the first batch to be sent")
        threads += [send_in_background(name, retries=1, timeout=30) for name in ("queued-1", "queued-2")]
        wait_for(lambda: writer.depth == 2, 10, "two records to wait behind it")
        # Resent every 0.5 s with the same identifier and authenticator, as a NAS does.
        threads.append(send_in_background("dropped", retries=20, timeout=0.5))
        wait_for(lambda: running.counter("accounting_queue_full") >= 1, 10, "the request to be dropped")
        assert writer.depth == 2
        locker.rollback()
        for thread in threads:
            thread.join(60)
        assert all("Received Accounting-Response" in r.stdout for r in results.values()), results
    connection.close()
    assert set(Session.objects.values_list("acct_session_id", flat=True)) == {
        "held",
        "queued-1",
        "queued-2",
        "dropped",
    }
