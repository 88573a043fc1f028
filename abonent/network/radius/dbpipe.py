"""The accounting writer's PostgreSQL connection, driven straight from the event loop.

psycopg's asyncio connection waits for the socket once to send and again to read, each time through a future
and a task step; on a loop that is also serving thousands of datagrams a second every such step waits its turn
behind them, and a batch that PostgreSQL wrote in 2 ms was answered after 8 (measured: docs/radius.md,
"Performance"). Here the reply is read by a reader callback registered once per connection, so the answer
is taken in the same turn in which the socket becomes readable, and the statement is sent without waiting.

The connection is opened by psycopg (asynchronously, with its connection-string handling) and then spoken to
through psycopg's libpq wrapper (``psycopg.pq``), one prepared statement at a time.
"""

from __future__ import annotations

import asyncio
import time

import psycopg
from psycopg import pq

from .deadlines import session_sql

STATEMENT = b"abonent_write_sessions"


class BatchTimeout(psycopg.OperationalError):
    """A batch went unanswered past its deadline and was given up (the writer's watchdog)."""


class BatchPipe:
    """One connection with one batch in flight. The statement records the days online itself (migration
    0005), so the rows it returns are not read: the answer is whether the batch was written.

    The session's ``statement_timeout`` and ``lock_timeout`` are ``timeout``: the server cancels a batch stuck
    behind a lock or running too long. A server that says nothing at all is the writer's watchdog's to notice
    (``sent_at``, ``abandon``)."""

    def __init__(self, conninfo: str, timeout: float) -> None:
        self.conninfo = conninfo
        self.timeout = timeout
        self.sent_at = 0.0  # time.monotonic() when the batch in flight was sent
        self.conn: psycopg.AsyncConnection | None = None
        self.pgconn: pq.abc.PGconn | None = None
        self._fd = -1
        self._callback = None
        self._error: Exception | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing = False

    @property
    def usable(self) -> bool:
        return self.pgconn is not None and self._fd >= 0 and self.pgconn.status == pq.ConnStatus.OK

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        await self.conn.execute(
            session_sql(self.timeout, self.timeout, self.conn.info.server_version)
            # One row back, not one per subscriber: nothing of the answer is read but whether it came.
            + f"; PREPARE {STATEMENT.decode()}(json, text) AS SELECT count(*) FROM network_write_sessions($1, $2)"
        )
        self.pgconn = self.conn.pgconn
        self._fd = self.pgconn.socket
        self._loop.add_reader(self._fd, self._readable)

    def send(self, document: str, time_zone: str, callback) -> None:
        """Send one batch; ``callback(error)`` (None: written) is called from the reader callback when it is answered
        (or the connection fails), so the caller can answer the NAS and send the next batch in that turn."""
        if self._callback is not None:
            raise RuntimeError("a batch is already in flight on this connection")
        self.pgconn.send_query_prepared(STATEMENT, [document.encode(), time_zone.encode()])
        self._flush()
        self._callback = callback  # only once sent: if sending raised, the caller has the error already
        self._error = None
        self.sent_at = time.monotonic()

    @property
    def in_flight(self) -> bool:
        return self._callback is not None

    def abandon(self, exc: Exception) -> None:
        """Give up on the batch in flight: its callback gets ``exc`` now, and the connection is not read again
        (the caller closes it, which also ends the statement on the server: see the writer's ``_watch``)."""
        self._fail(exc)

    def poll(self) -> None:
        """Take the answer if it is already here (the event loop may be busy with datagrams)."""
        if self._callback is not None and self._fd >= 0:
            self._readable()

    def _flush(self) -> None:
        # A batch is a few kilobytes and nearly always fits the socket buffer at once; if not, the rest goes
        # out when the socket is writable again.
        if self.pgconn.flush() and not self._writing:
            self._writing = True
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        try:
            done = self.pgconn.flush() == 0
        except psycopg.Error as exc:
            self._fail(exc)
            return
        if done:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def _readable(self) -> None:
        try:
            self.pgconn.consume_input()
        except psycopg.Error as exc:  # the connection is gone
            self._fail(exc)
            return
        # get_result() only while libpq has a whole message: called when it is busy it would block the loop
        # until the rest arrives (and forever if the connection died in between).
        try:
            while not self.pgconn.is_busy():
                result = self.pgconn.get_result()
                if result is None:
                    break  # the statement is over (or there was none: a notice while idle, now consumed)
                if result.status == pq.ExecStatus.FATAL_ERROR:
                    self._error = _error(result)
            else:
                return  # the rest of the answer is still on its way
        except Exception as exc:  # a reader callback must not raise: asyncio would only log it
            self._fail(exc)
            return
        callback, self._callback = self._callback, None
        if callback is not None:
            callback(self._error)

    def _fail(self, exc: Exception) -> None:
        self._unregister()
        callback, self._callback = self._callback, None
        if callback is not None:
            callback(exc)

    def _unregister(self) -> None:
        if self._loop is not None and self._fd >= 0:
            self._loop.remove_reader(self._fd)
            if self._writing:
                self._loop.remove_writer(self._fd)
                self._writing = False
        self._fd = -1

    async def close(self) -> None:
        self._fail(psycopg.OperationalError("the accounting connection was closed"))
        conn, self.conn, self.pgconn = self.conn, None, None
        if conn is not None and not conn.closed:
            await conn.close()


def _error(result: pq.abc.PGresult) -> psycopg.Error:
    """psycopg's exception class for the SQLSTATE, or for its class (22xxx is a DataError) when psycopg does not
    know the code: a DataError means one bad row, anything else an outage."""
    sqlstate = (result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
    message = (result.error_message or b"").decode("utf-8", "replace").strip()
    for code in (sqlstate, sqlstate[:2] + "000"):
        try:
            return psycopg.errors.lookup(code)(message)
        except KeyError:
            continue
    return psycopg.DatabaseError(message)
