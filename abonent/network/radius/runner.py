"""Running the RADIUS server: sockets, the event loop, the maintenance thread, and several processes.

The maintenance thread (one per process) keeps the in-memory policy fresh, reloads the NAS table, writes
the authentication attempts worth keeping, replays the accounting spool, saves the outage snapshot and
publishes the counters (``RadiusNode``). None of it runs on the event loop, so a slow database never
delays an answer; and each of its waits on the database has a deadline (``deadlines``), so a database that
hangs cannot stop it for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
)

from abonent.core import clock
from abonent.core.files import make_private_directory

from ..models import AuthAttempt, RadiusNode
from ..policy import PolicyStore
from . import deadlines
from . import snapshot as snapshots
from .handler import RECV_BUFFER, RadiusServer
from .nas import load_nas_table
from .spool import Spool
from .writer import AccountingWriter

logger = logging.getLogger("abonent.radius")

REFRESH_SECONDS = 2.0
NAS_RELOAD_SECONDS = 10.0
SNAPSHOT_SECONDS = 60.0
# After a failed snapshot save, the next try comes this much later, doubling up to SNAPSHOT_SECONDS.
SNAPSHOT_RETRY_SECONDS = 5.0
# A maintenance step failing tick after tick is logged once in this many seconds.
FAILURE_LOG_SECONDS = 60.0
# While the database is away, the policy's age is logged this often.
AGE_LOG_SECONDS = 300.0
# At shutdown, how long accounting records received may take to be written; what is left then is spooled.
SHUTDOWN_SECONDS = 10.0


@dataclass
class Options:
    bind: str
    auth_port: int
    acct_port: int
    processes: int = 1
    spool_dir: Path | None = None


def _socket(bind: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # A burst of requests waits in the kernel, not dropped, while the loop is busy. The kernel caps this
    # at net.core.rmem_max (docs/radius.md shows how to raise it); the effective size is logged.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
    sock.bind((bind, port))
    sock.setblocking(False)
    return sock


# Up to this many datagrams are handled per wake-up of the loop; then other work (accounting replies, timers)
# gets its turn.
DRAIN = 256


class _Socket:
    """A UDP socket served straight from the event loop's reader callback.

    asyncio's datagram transport schedules one callback per datagram and wraps every send; reading the socket
    until it is empty on each wake-up and sending with the socket itself cost about half as much per request
    (measured with py-spy: asyncio's transport was ~45 % of the time per Access-Request).
    """

    def __init__(self, sock: socket.socket, server: RadiusServer, kind: str) -> None:
        self.sock = sock
        self.server = server
        self.kind = kind

    def send(self, data: bytes, addr) -> None:
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            # The send buffer is full: the NAS retransmits and the reply is replayed from the dedup cache.
            self.server.stats.inc("all", "send_dropped")
        except OSError as exc:
            logger.warning("radius: cannot send to %s: %s", addr, exc)

    def ready(self) -> None:
        recv = self.sock.recvfrom
        server = self.server
        handle = server.handle_auth if self.kind == "auth" else None
        # Between accounting datagrams, a look at the database connections: an answered batch is answered to
        # the NAS and the lane's next batch sent now, not after the rest of this drain.
        poll = server.writer.poll if handle is None and server.writer is not None else None
        for count in range(DRAIN):
            try:
                data, addr = recv(65535)  # the largest datagram, so an oversized one is seen whole and dropped
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.warning("radius: receive failed: %s", exc)
                return
            try:
                if handle is not None:
                    reply = handle(data, addr)
                    if reply is not None:
                        self.send(reply, addr)
                else:
                    server.handle_acct(data, addr, self.send)
                    if poll is not None and count & 3 == 3:
                        poll()
            except Exception:  # a bug must cost one packet, never the server
                logger.exception("radius: %s handler failed", self.kind)
                server.stats.inc("all", "handler_errors")


class _StepFailures:
    """One maintenance step's failures in a row, so that a step failing every tick (every 2 s) is logged once a
    minute with a count, and its recovery once."""

    def __init__(self) -> None:
        self.in_a_row = 0
        self.unlogged = 0
        self.logged_at = -math.inf

    def failed(self, name: str, exc: BaseException, *, traceback: bool) -> None:
        self.in_a_row += 1
        now = time.monotonic()
        if now - self.logged_at < FAILURE_LOG_SECONDS:
            self.unlogged += 1
            return
        more = f" ({self.unlogged} more failures not logged since)" if self.unlogged else ""
        logger.error("radius: maintenance: %s failed: %s%s", name, exc, more, exc_info=traceback)
        self.logged_at, self.unlogged = now, 0

    def succeeded(self, name: str) -> None:
        if self.in_a_row:
            logger.warning("radius: maintenance: %s works again after %d failures", name, self.in_a_row)
        self.in_a_row, self.unlogged, self.logged_at = 0, 0, -math.inf


class Maintenance(threading.Thread):
    """The maintenance thread: every ``every`` seconds, each of its steps in turn, each on its own.

    A step that fails is logged (at most once a minute, with how many failures were not) and tried again at
    the next tick; it never keeps the steps after it from running. A disk that cannot take the snapshot must not
    stop the node publishing its counters (it would look dead on /metrics), nor the spool being replayed.
    The one exception: once the database is found unreachable in a tick, the database steps after it wait for
    the next tick (each would only wait out the same deadline); the disk's steps still run.
    """

    def __init__(
        self, server: RadiusServer, writer: AccountingWriter, snapshot: Path, node: str, every: float = REFRESH_SECONDS
    ) -> None:
        super().__init__(name="radius-maintenance", daemon=True)
        self.every = every
        self.server = server
        self.writer = writer
        self.snapshot = snapshot
        self.node = node
        self.started_at = clock.now()
        self.stop_event = threading.Event()
        self.database_up = True
        self._age_logged = 0.0
        self._too_old_logged = False
        self._last_nas = 0.0
        self._snapshot_due = 0.0
        self._snapshot_failures = 0
        self._failures: dict[str, _StepFailures] = {}

    def run(self) -> None:
        # Reads of the whole policy may take seconds on a large database: this thread's statements get the
        # longer deadline, and a lock wait the short one (a table locked by someone else: try again next tick).
        deadlines.bind_thread(settings.ABONENT_RADIUS_DB_MAINTENANCE_TIMEOUT, settings.ABONENT_RADIUS_DB_TIMEOUT)
        while not self.stop_event.wait(self.every):
            self.tick()
        connection.close()

    def tick(self) -> None:
        away: Exception | None = None
        for name, step in (
            ("policy refresh", self._refresh_policy),
            ("NAS table reload", self._reload_nas),
            ("authentication attempt log", self._flush_attempts),
            # Also finds the spool of a process that has died since, which this one may replay.
            ("spool replay", self._replay_spool),
            ("publishing the counters", self._publish),
        ):
            if away is None:
                # The replay runs on the writer's thread, under the accounting deadline; the rest on this
                # thread's connection, under the maintenance deadline.
                away = self._step(name, step, watched=step != self._replay_spool)
        if time.monotonic() >= self._snapshot_due:
            self._step("snapshot save", self._save_snapshot, watched=False)
        if away is None:
            if not self.database_up:
                logger.warning("radius: database is back")
            self.database_up = True
            self._too_old_logged = False
        else:
            if self.database_up:
                logger.error("radius: database unavailable (%s); answering from the in-memory policy", away)
            self.database_up = False
            self._report_age()

    def _step(self, name: str, step, *, watched: bool = True) -> Exception | None:
        """Run one step. Returns the error when it found the database unreachable (a connection error or a
        deadline: Django's OperationalError and InterfaceError), which ``tick`` reports as the outage it is;
        any other failure is this step's own, logged here."""
        failures = self._failures.setdefault(name, _StepFailures())
        try:
            with deadlines.section() if watched else contextlib.nullcontext():
                step()
        except (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError) as exc:
            # (psycopg's own: the replay's upsert runs on psycopg's cursor, whose errors Django does not wrap.)
            connection.close()  # the next tick reconnects
            return exc
        except Exception as exc:
            if isinstance(exc, DatabaseError):
                connection.close()
            # A full or read-only disk says enough in one line; anything else may be a bug: its traceback.
            failures.failed(name, exc, traceback=not isinstance(exc, OSError))
        else:
            failures.succeeded(name)
        return None

    def _refresh_policy(self) -> None:
        self.server.store.warm_passwords()
        close_old_connections()
        self.server.store.refresh()

    def _reload_nas(self) -> None:
        now = time.monotonic()
        if now - self._last_nas >= NAS_RELOAD_SECONDS:
            self.server.nas_table = load_nas_table()
            self._last_nas = now

    def _replay_spool(self) -> None:
        if self.writer.spool.refresh():
            self.writer.replay()

    def _save_snapshot(self) -> None:
        """Every minute; after a failure (a full disk) again sooner, backing off to the minute: the policy in
        memory may be newer than the file, but a disk that refuses is not asked every tick."""
        now = time.monotonic()
        try:
            snapshots.save(self.snapshot, self.server.store, self.server.nas_table)
        except Exception:
            self._snapshot_failures += 1
            self._snapshot_due = now + min(
                SNAPSHOT_SECONDS, SNAPSHOT_RETRY_SECONDS * 2 ** (self._snapshot_failures - 1)
            )
            raise
        self._snapshot_failures = 0
        self._snapshot_due = now + SNAPSHOT_SECONDS

    def _report_age(self) -> None:
        """While the database is away: how old the policy answering is, and when it is too old for new logins
        (logs only: /metrics reads the database too)."""
        store = self.server.store
        now = time.monotonic()
        if now - self._age_logged >= AGE_LOG_SECONDS:
            self._age_logged = now
            logger.warning(
                "radius: answering from a policy read from the database %.0f s ago%s",
                store.age(),
                " (a restored snapshot)" if store.restored else "",
            )
        if time.time() >= store.stale_at and not self._too_old_logged:
            self._too_old_logged = True
            logger.error(
                "radius: the policy is %.0f s old, past ABONENT_RADIUS_SNAPSHOT_MAX_AGE (%.0f s): logins that had no"
                " session open are refused (policy_too_old) until the database is back",
                store.age(),
                store.max_age,
            )

    def final_flush(self) -> None:
        try:
            self._flush_attempts()
        except DatabaseError:
            logger.error("radius: %d authentication attempts not written at exit", len(self.server.attempts))

    def _flush_attempts(self) -> None:
        attempts, self.server.attempts = self.server.attempts, []
        if attempts:
            try:
                AuthAttempt.objects.bulk_create(attempts, batch_size=1000)
            except (DataError, IntegrityError):
                # A row the database refuses (a value out of range; a NAS or subscriber deleted since the attempt,
                # its foreign key gone) is dropped: one bad row must not block the rest forever.
                connection.close()
                for attempt in attempts:
                    try:
                        AuthAttempt.objects.bulk_create([attempt])
                    except (DataError, IntegrityError) as exc:
                        logger.error(
                            "radius: authentication attempt refused by the database: %r: %s", attempt.username, exc
                        )
            except DatabaseError:
                self.server.attempts[:0] = attempts  # kept for the next try (bounded by the server)
                raise

    def _publish(self) -> None:
        counters: dict[str, dict[str, int]] = {}
        for (nas, name), value in self.server.stats.counters.items():
            counters.setdefault(nas, {})[name] = value
        RadiusNode.objects.update_or_create(
            node=self.node,
            defaults={
                "started_at": self.started_at,
                "updated_at": clock.now(),
                "counters": counters,
                "last_packet": dict(self.server.stats.last_packet),
                "accounting_queue": self.writer.depth,
                "spool_backlog": self.writer.spool.has_backlog(),
                "policy_as_of": dt.datetime.fromtimestamp(self.server.store.as_of, dt.UTC),
            },
        )


def build_server(spool_dir: Path, node: str) -> tuple[RadiusServer, AccountingWriter, Path]:
    store = PolicyStore(max_age=settings.ABONENT_RADIUS_SNAPSHOT_MAX_AGE)
    snapshot = snapshots.snapshot_path(spool_dir, node)
    snapshots.remove_pickles(spool_dir)
    try:
        store.load_all()
        nas_table = load_nas_table()
        snapshots.save(snapshot, store, nas_table)
    except DatabaseError as exc:
        connection.close()
        logger.error("radius: database unavailable at start (%s); using the last snapshot", exc)
        nas_table = snapshots.restore(snapshot, store)
        if nas_table is None:
            raise
    server = RadiusServer(store=store, nas_table=nas_table)
    # The spool's file names depend on neither the host nor the process index: every process replays them all.
    writer = AccountingWriter(Spool(spool_dir, server.stats), server.stats)
    server.writer = writer
    return server, writer, snapshot


def prepare(options: Options, index: int):
    """Everything that touches the database before the loop starts (Django's ORM is synchronous)."""
    spool_dir = options.spool_dir or settings.ABONENT_RADIUS_SPOOL_DIR
    # It holds the snapshot and the spool: nobody else's to list, nor to plant a file in.
    problem = make_private_directory(spool_dir)
    if problem:
        logger.warning("radius: spool directory %s", problem)
    node = f"{socket.gethostname()}:{options.auth_port}:{index}"
    deadlines.bind_thread(settings.ABONENT_RADIUS_DB_MAINTENANCE_TIMEOUT, settings.ABONENT_RADIUS_DB_TIMEOUT)
    with deadlines.section():
        return (*build_server(spool_dir, node), node)


async def _serve(
    options: Options,
    prepared,
    stop: asyncio.Event | None = None,
    on_ready=None,
    refresh_seconds: float = REFRESH_SECONDS,
) -> None:
    server, writer, snapshot, node = prepared
    loop = asyncio.get_running_loop()
    reuse = options.processes > 1
    auth_sock = _socket(options.bind, options.auth_port, reuse)
    acct_sock = _socket(options.bind, options.acct_port, reuse)
    for sock, kind in ((auth_sock, "auth"), (acct_sock, "acct")):
        loop.add_reader(sock.fileno(), _Socket(sock, server, kind).ready)
    writer.start()
    maintenance = Maintenance(server, writer, snapshot, node, refresh_seconds)
    maintenance.start()
    logger.info(
        "radius %s listening on %s auth %d acct %d (receive buffer %d bytes, %d NAS)",
        node,
        options.bind,
        options.auth_port,
        options.acct_port,
        auth_sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        len(server.nas_table),
    )
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    if on_ready is not None:
        on_ready(server, auth_sock.getsockname()[1], acct_sock.getsockname()[1])
    await stop.wait()
    # Stop taking requests, then answer every record received before leaving (written, or spooled past
    # SHUTDOWN_SECONDS): the NAS would otherwise retransmit to a server that is gone.
    for sock in (auth_sock, acct_sock):
        loop.remove_reader(sock.fileno())
    await writer.drain(SHUTDOWN_SECONDS)
    writer.spool.stop_replay()  # a replay under way ends after its chunk; the next start resumes it
    maintenance.stop_event.set()
    await asyncio.to_thread(maintenance.join, 5)
    # On a lane's thread: its connection is open, and under the accounting deadline.
    await loop.run_in_executor(writer.lanes[0].executor, maintenance.final_flush)
    await writer.aclose()
    writer.close(seconds=5)
    for sock in (auth_sock, acct_sock):
        sock.close()
    try:
        snapshots.save(snapshot, server.store, server.nas_table)
    except OSError as exc:  # a full disk: the last minute's snapshot stays; the exit goes on
        logger.error("radius: cannot save the policy snapshot at exit: %s", exc)


def serve(options: Options) -> None:
    """Run one process, or ``options.processes`` forked children sharing the ports (SO_REUSEPORT)."""
    deadlines.configure_process()
    if options.processes <= 1:
        asyncio.run(_serve(options, prepare(options, 0)))
        return
    connection.close()  # never share a database connection across fork
    children: dict[int, int] = {}

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(_serve(options, prepare(options, index)))
            finally:
                os._exit(0)
        children[pid] = index

    for index in range(options.processes):
        spawn(index)
    stopping = False

    def terminate(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is not None and not stopping:
            logger.error("radius process %d exited (%s); restarting", index, status)
            time.sleep(1)
            spawn(index)
