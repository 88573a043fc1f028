"""Deadlines on every database wait of ``abonent radius`` (issue 12; docs/radius.md, "Timeouts").

A NAS ends a session whose accounting goes unanswered (accel-ppp's ``acct-timeout``, 3 s by default), so no wait
on the database may be open-ended: not a lock held by someone else, not a server that stopped answering, not a
connection whose peer vanished in a failover. The deadlines, from the outside in:

- libpq's ``connect_timeout`` and TCP keepalives / ``tcp_user_timeout`` on every connection of the process: a
  connect, or a connection whose peer is gone, fails instead of waiting for the kernel's two hours;
- ``statement_timeout``, ``lock_timeout`` and ``idle_in_transaction_session_timeout`` set on each session: the
  server cancels a statement stuck behind a lock or running too long, and drops a transaction whose client went
  away with it open; ``client_connection_check_interval`` (PostgreSQL 14) has it notice a client that closed
  the connection while the statement still waits;
- for a server that accepted the statement and says nothing (a frozen host, a proxy that stopped forwarding),
  nothing on the server can help: the accounting lanes' watchdog (``writer.py``) gives up on a batch past its
  deadline, and on the threads that use Django's connection (the maintenance thread, the lanes' threads) the
  watchdog below (``_Watchdog``) shuts down the socket of a connection that has waited on the server past its deadline,
  which wakes the waiting thread with an error;
- for a server that accepts the TCP connection and never finishes the startup handshake, libpq's 2 s is longer
  than an accounting deadline: a bound thread's Django connect is cut at its own deadline (``_ConnectWithin``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager, nullcontext, suppress

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.signals import connection_created
from psycopg import pq

logger = logging.getLogger("abonent.radius")

# libpq's smallest connect_timeout (a 1 is taken as 2); the accounting lanes also bound their connect by their
# own, shorter, deadline.
CONNECT_TIMEOUT_SECONDS = 2
# A connection whose peer is gone (a failover moved the address, a cable) is found within about
# idle + interval × count seconds when idle, and tcp_user_timeout after data sent went unacknowledged.
KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3, "keepalives_count": 3}
TCP_USER_TIMEOUT_MS = 10_000
# The server drops a transaction left open by a client that went away (its locks would block the replay).
IDLE_IN_TRANSACTION_SECONDS = 10.0
CLIENT_CHECK_MS = 1000
# The watchdogs act this much later than the server's own timeouts of the same deadline: a server that can still
# say it cancelled the statement says so first, and what it cancelled has certainly not been written.
GRACE = 1.25


def conninfo_params() -> dict[str, int]:
    """libpq connection parameters every connection of the process gets."""
    return {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **KEEPALIVE, "tcp_user_timeout": TCP_USER_TIMEOUT_MS}


def session_sql(statement_seconds: float, lock_seconds: float, server_version: int) -> str:
    """The SET statements of a session (sent as one simple query). SET rather than libpq's ``options``: a
    connection pooler in front of PostgreSQL (PgBouncer) refuses unknown startup parameters."""

    def ms(seconds: float) -> int:
        return max(1, round(seconds * 1000))

    parts = [
        f"SET statement_timeout = {ms(statement_seconds)}",
        f"SET lock_timeout = {ms(lock_seconds)}",
        f"SET idle_in_transaction_session_timeout = {ms(max(IDLE_IN_TRANSACTION_SECONDS, statement_seconds))}",
    ]
    if server_version >= 140000:
        parts.append(f"SET client_connection_check_interval = {CLIENT_CHECK_MS}")
    return "; ".join(parts)


def process_database(database: dict) -> dict:
    """The Django database settings of this process (``abonent radius``): the connect and TCP deadlines, one
    connection per thread kept open (CONN_MAX_AGE None: no reconnect, with its connect_timeout, at every
    maintenance tick or replay), and no connection pool: psycopg_pool checks a connection before handing it out
    with a query that has no deadline."""
    if not database["ENGINE"].endswith("postgresql"):
        return database
    options = {key: value for key, value in database.get("OPTIONS", {}).items() if key != "pool"}
    options = {**conninfo_params(), "application_name": "abonent radius", **options}
    return {**database, "CONN_MAX_AGE": None, "OPTIONS": options}


def configure_process() -> None:
    """``process_database`` for this process's connections; before the first one is opened."""
    database = settings.DATABASES["default"]
    # In place: Django's connections share this dictionary.
    database.update(process_database(database))


CUT, LATER, DONE = object(), object(), object()  # what the watchdog does with an expired guard


class _Watchdog:
    """One thread for the whole process, cutting guarded connections that wait on the server past their
    deadline. Arming is a dictionary write; the thread is only woken when a deadline comes sooner than the one
    it sleeps towards."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[_Guard, float] = {}
        self._wake_at = float("inf")
        self._thread: threading.Thread | None = None

    def arm(self, guard: _Guard, at: float) -> None:
        with self._cond:
            self._due[guard] = at
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="radius-db-watchdog", daemon=True)
                self._thread.start()
            if at < self._wake_at:
                self._cond.notify()

    def disarm(self, guard: _Guard) -> None:
        with self._cond:
            self._due.pop(guard, None)

    def _run(self) -> None:
        while True:
            cut: list[_Guard] = []
            with self._cond:
                now = time.monotonic()
                for guard, at in list(self._due.items()):
                    if at > now:
                        continue
                    # Under the lock: the guarded thread cannot leave its section (disarm) while its connection
                    # is looked at and cut.
                    outcome = guard.expired()
                    if outcome is LATER:
                        self._due[guard] = now + guard.seconds
                    else:
                        del self._due[guard]
                        if outcome is CUT:
                            cut.append(guard)
                if not cut:
                    self._wake_at = min(self._due.values(), default=float("inf"))
                    self._cond.wait(None if self._wake_at == float("inf") else self._wake_at - now)
            for guard in cut:  # logged outside the lock, which the guarded threads take at every statement
                logger.error(
                    "radius: %s waited on the database for %.2f s; connection cut", guard.thread_name, guard.seconds
                )


_watchdog = _Watchdog()
# A forked ``--processes`` child has none of the parent's threads: it starts its own watchdog.
os.register_at_fork(after_in_child=_watchdog._reset)


class _Guard:
    """The deadline of one thread's Django connection: while the thread is in a section, a wait on the server
    (a statement, a COMMIT) that goes on ``seconds`` (× ``GRACE``) past the last statement boundary is cut."""

    def __init__(self, statement_seconds: float, lock_seconds: float) -> None:
        self.statement_seconds = statement_seconds
        self.lock_seconds = lock_seconds
        self.database = connections[DEFAULT_DB_ALIAS]  # this thread's DatabaseWrapper
        self.thread_name = threading.current_thread().name
        self.depth = 0
        # (fd, family, local address, peer address) of the connection's socket when it was opened: the watchdog
        # only shuts down that socket, never another that reused the descriptor after a close.
        self.socket: tuple | None = None

    @property
    def seconds(self) -> float:
        return self.statement_seconds * GRACE

    def watch(self, database) -> None:
        """Put ``database``, this thread's DatabaseWrapper, under this guard: each statement (the execute wrapper)
        and each connect (``_ConnectWithin``). Done again for a wrapper put in place since (a test, a reload)."""
        self.database = database
        if self.execute not in database.execute_wrappers:
            database.execute_wrappers.append(self.execute)
        # (A pool hands out connections under its own timeout: the tests' in-process server, see ``configure``.)
        pooled = database.settings_dict["OPTIONS"].get("pool")
        if not pooled and not isinstance(database.__dict__.get("get_new_connection"), _ConnectWithin):
            database.get_new_connection = _ConnectWithin(database.get_new_connection, self)

    @contextmanager
    def section(self):
        if not self.depth:
            self.watch(connections[DEFAULT_DB_ALIAS])  # whatever this thread's connection is now
        self.depth += 1
        _watchdog.arm(self, time.monotonic() + self.seconds)
        try:
            yield
        finally:
            self.depth -= 1
            if self.depth:
                _watchdog.arm(self, time.monotonic() + self.seconds)  # a statement ended: the clock starts again
            else:
                _watchdog.disarm(self)

    def execute(self, execute, sql, params, many, context):
        """A Django execute wrapper: each statement is a section (its own, or a boundary inside a wider one)."""
        with self.section():
            return execute(sql, params, many, context)

    def remember_socket(self, pg) -> None:
        """The socket of a connection just opened, for the watchdog: known before the connection's first statement
        (Django's time zone, the session deadlines below), so that one is cut too if the server goes silent."""
        fd = pg.pgconn.socket
        self.socket = None
        sock = _socket_of(fd)
        if sock is not None:
            with sock, suppress(OSError):
                self.socket = (fd, sock.family, sock.getsockname(), sock.getpeername())

    def configure(self) -> None:
        """Session deadlines for a connection just opened by this thread."""
        pg = self.database.connection
        self.remember_socket(pg)
        # A pooled connection would carry them to whichever thread takes it next; the process's own connections
        # have no pool (process_database), so a pool means the server runs inside another process (the tests'
        # radius_server), where the watchdog alone keeps the deadlines.
        if not self.database.settings_dict["OPTIONS"].get("pool"):
            pg.execute(session_sql(self.statement_seconds, self.lock_seconds, pg.info.server_version))

    def expired(self) -> object:
        """Called by the watchdog at the deadline: CUT, LATER (look again one deadline later) or DONE. Only a
        connection waiting on the server is cut: between statements the thread is doing its own work (reading
        the spool, building a batch), which no database deadline is about."""
        pg = self.database.connection
        if pg is None or pg.closed:
            return LATER  # not connected yet: connect_timeout bounds the connect
        try:
            if pg.pgconn.transaction_status != pq.TransactionStatus.ACTIVE:
                return LATER
        except Exception:  # closed under our feet by its thread
            return LATER
        return CUT if self._cut() else DONE

    def _cut(self) -> bool:
        if self.socket is None:
            return False
        fd, family, name, peer = self.socket
        sock = _socket_of(fd)
        if sock is None:
            return False
        with sock:
            try:
                if (sock.family, sock.getsockname(), sock.getpeername()) != (family, name, peer):
                    return False
                # Shut down, not closed: the descriptor stays libpq's, and the thread blocked reading it wakes
                # to an end of file, which psycopg raises as OperationalError.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                return False
        return True


class _ConnectWithin:
    """A DatabaseWrapper's ``get_new_connection`` cut at its thread's deadline.

    A connect cannot be cut like a statement: until psycopg returns the connection there is no socket the watchdog
    knows of, and libpq's ``connect_timeout`` cannot go below 2 s (psycopg rounds a 1 up to 2), longer than the
    accounting deadline, for a server that accepts the TCP connection and never answers the startup (a frozen host,
    a proxy whose upstream hangs). So the connect runs on a thread of its own and the bound thread waits for it
    ``statement_seconds`` at most, then fails as a connect would (psycopg's ConnectionTimeout, an OperationalError:
    the caller spools). The connect left behind ends within libpq's 2 s, and a connection it still gets is closed.
    Connections are kept open (``process_database``), so this costs a thread only when the database was away."""

    def __init__(self, connect, guard: _Guard) -> None:
        self.connect = connect
        self.guard = guard

    def __call__(self, conn_params):
        seconds = self.guard.statement_seconds
        result: Future = Future()

        def attempt() -> None:
            try:
                result.set_result(self.connect(conn_params))
            except BaseException as exc:  # handed to the waiting thread, which raises it
                result.set_exception(exc)

        threading.Thread(target=attempt, name=f"{self.guard.thread_name}-connect", daemon=True).start()
        try:
            pg = result.result(seconds)
        except FutureTimeout:
            result.add_done_callback(_close_connection)
            raise psycopg.errors.ConnectionTimeout(f"no connection to the database in {seconds:g} s") from None
        self.guard.remember_socket(pg)
        return pg


def _close_connection(attempt: Future) -> None:
    """Close the connection a connect given up on got after all."""
    if attempt.exception() is None:
        with suppress(Exception):
            attempt.result().close()


def _socket_of(fd: int) -> socket.socket | None:
    """A socket object on a duplicate of ``fd`` (closing it leaves ``fd`` open), or None if it is none."""
    try:
        duplicate = os.dup(fd)
    except OSError:
        return None
    try:
        return socket.socket(fileno=duplicate)
    except OSError:
        os.close(duplicate)
        return None


_local = threading.local()


def bind_thread(statement_seconds: float, lock_seconds: float) -> None:
    """Put this thread's Django connection under deadlines: the session settings on each connection it opens,
    and the watchdog on each statement and section. Threads of the radius process call it when they start."""
    if connection.vendor != "postgresql":
        return  # SQLite waits on a file lock, with its own timeout (settings.DATABASES OPTIONS)
    guard = getattr(_local, "guard", None)
    if guard is None:
        guard = _local.guard = _Guard(statement_seconds, lock_seconds)
    guard.watch(connections[DEFAULT_DB_ALIAS])
    guard.statement_seconds, guard.lock_seconds = statement_seconds, lock_seconds
    if connection.connection is not None:
        connection.close()  # reopened, and so configured, by the next statement


def section():
    """A stretch of database work on this thread: a server wait inside it longer than the thread's deadline
    (also a COMMIT, which passes no execute wrapper) is cut. Nothing where the thread is not bound."""
    guard = getattr(_local, "guard", None)
    return nullcontext() if guard is None else guard.section()


def _configure_new_connection(sender, connection, **kwargs) -> None:
    guard = getattr(_local, "guard", None)
    if guard is not None and connection.alias == DEFAULT_DB_ALIAS:
        guard.database = connection
        guard.configure()


connection_created.connect(_configure_new_connection, dispatch_uid="abonent.radius.deadlines")
