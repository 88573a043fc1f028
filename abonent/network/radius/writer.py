"""The accounting writer: records batched into database transactions, answered after commit."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection

from .. import accounting
from ..accounting import AcctRecord
from . import deadlines
from .dbpipe import BatchPipe, BatchTimeout
from .spool import Spool
from .stats import Stats

logger = logging.getLogger("abonent.radius")


def _first_line(error: BaseException) -> str:
    """An error's first line: PostgreSQL's go on with the whole statement of network_write_sessions."""
    return (str(error).strip().splitlines() or [repr(error)])[0]


def _database_thread(name: str, timeout: float) -> ThreadPoolExecutor:
    """A thread with a Django connection of its own, every wait of it on the database under ``timeout``."""
    return ThreadPoolExecutor(
        max_workers=1, thread_name_prefix=name, initializer=deadlines.bind_thread, initargs=(timeout, timeout)
    )


class _Lane:
    """One database connection (on its own thread) writing the batches of a share of the sessions."""

    def __init__(self, index: int, timeout: float) -> None:
        self.index = index
        self.pending: list[tuple[int, AcctRecord, object]] = []
        # The thread's Django connection (Accounting-On/Off, a batch split around a refused row, the thread path)
        # has the same deadline as a batch.
        self.executor = _database_thread(f"radius-db-{index}", timeout)
        self.wake: asyncio.Event | None = None
        self.busy = False
        self.pipe: BatchPipe | None = None
        # A written batch whose answer waits for the lane's task (a failure: the batch is split or spooled).
        self.settling: tuple | None = None


class AccountingWriter:
    """Batches accounting records into database transactions; answers after commit.

    While a batch is being written, new records gather into the next one, so batches grow with the load
    and a quiet server still answers at once. There is one lane (connection) by default; with more
    (``ABONENT_RADIUS_DB_LANES``) a session always goes to the same lane, so its records stay in order and two
    writers never meet on one row. Each lane's connection (``BatchPipe``) is read from the loop's reader
    callback, and polled between accounting datagrams (``poll``), which answers the batch and sends the lane's
    next one there and then; what needs a thread (a failure: the batch is split or spooled) is settled by the
    lane's task before the lane sends anything else. The days online are recorded by the same statement.
    Accounting-On/Off is a barrier: it is written after everything received before it, and before anything
    received after it.

    If the database fails, or leaves a batch unanswered for ``timeout`` seconds (``_watch``), the batch goes to
    the disk spool (appended and fsynced) and is answered; everything after it is spooled too, until the spool
    has been replayed in order. At most ``max_queue`` records wait (``full``).
    """

    def __init__(
        self,
        spool: Spool,
        stats: Stats,
        max_batch: int = 2000,
        lanes: int | None = None,
        use_async: bool | None = None,
        timeout: float | None = None,
        max_queue: int | None = None,
    ) -> None:
        self.spool = spool
        self.stats = stats
        self.max_batch = max_batch
        self.timeout = settings.ABONENT_RADIUS_DB_TIMEOUT if timeout is None else timeout
        self.max_queue = settings.ABONENT_RADIUS_QUEUE_MAX if max_queue is None else max_queue
        if lanes is None:
            # One: with its answer taken between datagrams (poll), a lane's batches are as large as the load
            # allows and PostgreSQL commits once per batch; two lanes measured 5,600/s against one's 6,000.
            lanes = int(os.environ.get("ABONENT_RADIUS_DB_LANES", 1))
        self.lanes = [_Lane(i, self.timeout) for i in range(lanes)]
        # The spool replay has a thread (and connection) of its own: a replay of a large spool takes seconds, and
        # a lane's thread is where the live records wait to be spooled behind it, and an Accounting-On/Off to be
        # written.
        self.executor = _database_thread("radius-db-replay", self.timeout)
        # On PostgreSQL the lanes write from the event loop itself, on psycopg's asyncio connections: a
        # batch then costs one round trip and no thread hand-off (each hand-off waited for the GIL).
        if use_async is None:
            use_async = connection.vendor == "postgresql"
        self.conninfo = self._conninfo() if use_async else None
        self._seq = 0
        # Every record received and not yet answered (written, spooled or forgotten), by sequence number: what
        # shutdown waits for (``drain``), whichever path holds it (queued, in flight, being settled on a thread).
        self._unanswered: dict[int, tuple[int, AcctRecord, object]] = {}
        self._barriers: list[tuple[int, AcctRecord, object]] = []
        self._barrier_wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._barrier_wake = asyncio.Event()
        for lane in self.lanes:
            lane.wake = asyncio.Event()
            self._tasks.append(loop.create_task(self._run_lane(lane)))
        self._tasks.append(loop.create_task(self._run_barriers()))
        if self.conninfo is not None:
            self._tasks.append(loop.create_task(self._watch()))

    @property
    def full(self) -> bool:
        """No room for another record: the caller drops the request unanswered (the NAS resends it). Counted
        over every record held, queued or in flight, which is what memory holds; and one len() where ``depth``
        sums the lanes, on a path taken for every Accounting-Request."""
        return len(self._unanswered) >= self.max_queue

    def submit(self, record: AcctRecord, done) -> bool:
        """Queue a record; ``done()`` is called once it is written or spooled. False (and ``done.forget()``, so
        the NAS's retransmission is let through) when the queue is full."""
        if self.full:
            self.stats.inc("all", "accounting_queue_full")
            getattr(done, "forget", lambda: None)()
            return False
        self._seq += 1
        item = (self._seq, record, done)
        self._unanswered[self._seq] = item
        if record.status in (accounting.ACCOUNTING_ON, accounting.ACCOUNTING_OFF):
            self._barriers.append(item)
            self._barrier_wake.set()
        else:
            lane = self.lanes[hash((record.nas_id, record.unique_id)) % len(self.lanes)]
            lane.pending.append(item)
            lane.wake.set()
        return True

    @staticmethod
    def _conninfo() -> str:
        params = connection.get_connection_params()
        keep = {k: v for k, v in params.items() if k not in ("cursor_factory", "context", "prepare_threshold")}
        keep = {**deadlines.conninfo_params(), **keep, "application_name": "abonent radius accounting"}
        return psycopg.conninfo.make_conninfo(**{k: v for k, v in keep.items() if v not in (None, "")})

    @property
    def depth(self) -> int:
        return sum(len(lane.pending) for lane in self.lanes) + len(self._barriers)

    def _executors(self) -> list[ThreadPoolExecutor]:
        return [lane.executor for lane in self.lanes] + [self.executor]

    def close(self, seconds: float | None = None) -> None:
        """Close each thread's connection on that thread, then stop the threads; a thread still busy ``seconds``
        (a database wait, bounded by its deadline) is left to end on its own."""
        for executor in self._executors():
            # A lambda: ``connection.close`` evaluated here would be this thread's connection.
            closing = executor.submit(lambda: connection.close())
            with suppress(FutureTimeout):
                closing.result(seconds)
            executor.shutdown(wait=closing.done())
        self.spool.close()  # its locks: what is left is replayed by the next start, or by another process

    def _finish(self, batch, ok: bool) -> None:
        unanswered = self._unanswered
        if ok:
            for seq, _record, done in batch:
                if unanswered.pop(seq, None) is not None:  # else answered already: spooled at shutdown (``drain``)
                    done()
            self.stats.inc("all", "accounting_committed", len(batch))
            self.stats.inc("all", "accounting_batches")
        else:
            for seq, _record, done in batch:
                if unanswered.pop(seq, None) is not None:
                    getattr(done, "forget", lambda: None)()

    async def drain(self, seconds: float) -> None:
        """At shutdown, once no record comes in any more: wait until every record received has been answered
        (written or spooled), whatever holds it (a lane's queue, a batch in flight, a batch being split or spooled
        on a lane's thread, an Accounting-On/Off); past ``seconds``, spool what is still unanswered and answer it,
        so the NAS does not retransmit to a server that is gone. A batch the database still has may then be written
        as well as spooled, which counts nothing twice (``_watch``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self._unanswered and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if not self._unanswered:
            return
        left = [self._unanswered[seq] for seq in sorted(self._unanswered)]
        for lane in self.lanes:
            lane.pending = []
        self._barriers = []
        logger.error("accounting: %d records not written %g s into the shutdown; spooling them", len(left), seconds)
        # On a thread of its own: a lane's thread may be what has not finished.
        self._finish(left, await asyncio.to_thread(self._spool_now, [r for _s, r, _d in left]))

    def poll(self) -> None:
        """Answered batches taken without waiting for the loop's next turn (called between datagrams)."""
        for lane in self.lanes:
            if lane.busy and lane.pipe is not None:
                lane.pipe.poll()

    def _take(self, lane: _Lane) -> list | None:
        """The lane's next batch: what is pending, up to the first Accounting-On/Off still to be written."""
        limit = self._barriers[0][0] if self._barriers else None
        count = 0
        for seq, _record, _done in lane.pending[: self.max_batch]:
            if limit is not None and seq > limit:
                break
            count += 1
        if not count:
            return None  # everything here came after a barrier still to be written
        batch, lane.pending = lane.pending[:count], lane.pending[count:]
        return batch

    def _pump(self, lane: _Lane) -> None:
        """Send the lane's next batch down its connection. Called by the lane's task and, above all, from the
        connection's reader callback the moment a batch is answered, so PostgreSQL does not sit idle while
        the loop serves a turn's worth of datagrams first."""
        if lane.busy or lane.settling is not None or not lane.pending:
            return
        if lane.pipe is None or not lane.pipe.usable or self.spool.has_backlog():
            lane.wake.set()  # the lane's task reconnects, or keeps order behind the spool
            return
        batch = self._take(lane)
        if batch is None:
            return
        records = [r for _s, r, _d in batch]
        count = accounting.mergeable(records)
        if count < len(records):  # a 32-bit counter wraps inside the batch: the rest goes in the next one
            batch, records, lane.pending = batch[:count], records[:count], batch[count:] + lane.pending
        lane.busy = True
        started = time.perf_counter()
        try:
            lane.pipe.send(
                accounting.write_document(accounting.merge(records)),
                settings.TIME_ZONE,
                lambda error: self._written(lane, batch, started, error),
            )
        except Exception as exc:  # psycopg's, or a bug building the document: the task settles it, nothing hangs
            self._written(lane, batch, started, exc)

    def _written(self, lane: _Lane, batch, started: float, error) -> None:
        lane.busy = False
        # Time spent writing, against wall time: how close the database is to being the limit.
        self.stats.counters[("all", "accounting_write_us")] += int((time.perf_counter() - started) * 1e6)
        if error is None:
            self._pump(lane)  # the next batch first: PostgreSQL works on it while this one is answered
            self._finish(batch, True)
            if not lane.busy:
                self._barrier_wake.set()
            return
        # A failure needs a thread (to split the batch, or to spool it), so the lane's task settles the batch
        # before the lane sends anything else.
        lane.settling = (batch, error)
        lane.wake.set()

    async def _settle(self, lane: _Lane, batch, error) -> bool:
        loop = asyncio.get_running_loop()
        records = [r for _s, r, _d in batch]
        if accounting.is_refusal(error):
            # One bad row (a value, a NAS deleted since), not an outage: the thread path writes the others (the
            # batch bisected) and counts it; spooled, it would be refused at every replay and hold back all that
            # follows.
            return await loop.run_in_executor(lane.executor, self._write, records)
        # Closing the connection also ends a statement given up on (BatchTimeout) on the server: PostgreSQL
        # notices the closed connection (client_connection_check_interval) or cancels it at statement_timeout.
        await self._close_pipe(lane)
        # What waited behind the batch has waited as long: spooled with it, in one fsync, and answered with it.
        behind = self._take(lane) or []
        logger.error(
            "accounting: database unavailable (%s); spooling %d records",
            _first_line(error),
            len(records) + len(behind),
        )
        ok = await loop.run_in_executor(lane.executor, self._spool_now, records + [r for _s, r, _d in behind])
        self._finish(behind, ok)
        return ok

    async def _close_pipe(self, lane: _Lane) -> None:
        pipe, lane.pipe = lane.pipe, None
        if pipe is not None:
            await pipe.close()

    async def _run_lane(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await lane.wake.wait()
            lane.wake.clear()
            if lane.settling is not None:
                batch, error = lane.settling
                try:
                    ok = await self._settle(lane, batch, error)
                except Exception:  # the lane must outlive any failure: unanswered, the NAS retransmits
                    logger.exception("accounting: settling a batch of %d failed", len(batch))
                    ok = False
                lane.settling = None
                self._finish(batch, ok)
            while lane.pending and not lane.busy:
                if self.conninfo is not None and not self.spool.has_backlog():
                    if lane.pipe is None or not lane.pipe.usable:
                        await self._close_pipe(lane)
                        pipe = BatchPipe(self.conninfo, self.timeout)
                        try:
                            # connect_timeout cannot go below 2 s (libpq): the lane's own deadline is shorter.
                            await asyncio.wait_for(pipe.open(), self.timeout)
                        except Exception as exc:  # psycopg.Error, or OSError: the lane must outlive both
                            await pipe.close()
                            batch = self._take(lane)
                            if batch is None:
                                break
                            logger.error("accounting: database unavailable (%s); spooling %d records", exc, len(batch))
                            # Busy while spooling, so an Accounting-On/Off waits for this batch.
                            lane.busy = True
                            try:
                                ok = await loop.run_in_executor(
                                    lane.executor, self._spool_now, [r for _s, r, _d in batch]
                                )
                            finally:
                                lane.busy = False
                            self._finish(batch, ok)
                            continue
                        lane.pipe = pipe
                    self._pump(lane)  # the connection's callbacks carry on from here
                    break
                # The thread path: SQLite, or a spool backlog that what follows must queue behind.
                batch = self._take(lane)
                if batch is None:
                    break
                lane.busy = True
                started = time.perf_counter()
                try:
                    ok = await loop.run_in_executor(lane.executor, self._write, [r for _s, r, _d in batch])
                except Exception:  # the lane must outlive any failure: unanswered, the NAS retransmits
                    logger.exception("accounting: writing a batch of %d failed", len(batch))
                    ok = False
                finally:
                    lane.busy = False
                    self.stats.counters[("all", "accounting_write_us")] += int((time.perf_counter() - started) * 1e6)
                self._finish(batch, ok)
            if not lane.busy:
                self._barrier_wake.set()

    async def _watch(self) -> None:
        """The lanes' watchdog: a batch the database has left unanswered for ``timeout`` seconds is given up,
        spooled and answered (``_settle``), and the lane spools what follows until the spool has been replayed.
        The server's statement_timeout and lock_timeout (``timeout``; the watchdog waits ``GRACE`` times as long)
        end most waits first, with an error; this is for a server, or a path to it, that has gone silent.

        A batch given up on may still commit on the server: the statement was sent, and it may be running, or
        still on its way in the network, when the connection is closed. The spool then writes the same records
        again on replay, and that cannot count anything twice: the session's counters are cumulative totals kept
        with GREATEST (a 32-bit wrap only when the record has more session time than the row, which the same
        record written again has not), the traffic added to the day is the new total minus the stored one (zero
        the second time), a closed session stays closed, and online days are inserted once (ON CONFLICT DO
        NOTHING); see ``accounting`` and network_write_sessions (migrations 0005, 0008, 0010). Late or early,
        twice or once, the rows end the same."""
        deadline = self.timeout * deadlines.GRACE
        period = min(0.1, self.timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for lane in self.lanes:
                pipe = lane.pipe
                if pipe is not None and pipe.in_flight and now - pipe.sent_at > deadline:
                    self.stats.inc("all", "accounting_timeouts")
                    pipe.abandon(BatchTimeout(f"no answer from the database in {deadline:g} s"))

    async def _run_barriers(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._barrier_wake.wait()
            self._barrier_wake.clear()
            while self._barriers:
                seq = self._barriers[0][0]
                if any(
                    lane.busy or lane.settling is not None or (lane.pending and lane.pending[0][0] < seq)
                    for lane in self.lanes
                ):
                    break  # a lane still has earlier records: it wakes us when it is done
                item = self._barriers[0]  # stays at the head while written: the lanes hold back what follows
                try:
                    ok = await loop.run_in_executor(self.lanes[0].executor, self._write, [item[1]])
                except Exception:
                    logger.exception("accounting: writing an Accounting-On/Off failed")
                    ok = False
                self._barriers.pop(0)
                self._finish([item], ok)
                for lane in self.lanes:
                    lane.wake.set()

    def _spool_now(self, records: list[AcctRecord]) -> bool:
        try:
            self.spool.append(records)
        except OSError:
            logger.exception("accounting: spool write failed; %d records left unanswered", len(records))
            return False  # not answered: the NAS retransmits, nothing is lost
        self.stats.inc("all", "accounting_spooled", len(records))
        return True

    async def aclose(self) -> None:
        for lane in self.lanes:
            await self._close_pipe(lane)

    def _write(self, records: list[AcctRecord]) -> bool:
        try:
            if self.spool.has_backlog():
                return self._spool_now(records)  # behind the backlog, in order
            # No close_old_connections() here: it would add a health-check round trip to every batch. A
            # broken connection raises below and is closed there; the next batch reconnects.
            # A refused row is isolated (bisected) within the deadline too; what is left then is spooled and
            # answered, and the replay sets the bad row aside.
            deadline = time.monotonic() + self.timeout
            with deadlines.section():  # the COMMIT too: a silent server is cut after ``timeout``
                left = accounting.write_batch_isolating(records, self._refused, deadline)
            if left:
                logger.error(
                    "accounting: %d records not written while a refused one was isolated; spooling them", len(left)
                )
                return self._spool_now(left)
            return True
        except (DatabaseError, psycopg.Error) as exc:  # psycopg's own, from the raw cursor of the upsert
            connection.close()
            logger.error("accounting: database unavailable (%s); spooling %d records", exc, len(records))
            return self._spool_now(records)

    def _refused(self, record: AcctRecord, exc: Exception) -> None:
        self.stats.inc("all", "accounting_rejected_rows")
        logger.error("accounting: record refused by the database (%s): %r", exc, record)

    def replay(self) -> int:
        """Write the spool to the database in order (on the replay's thread, under its deadline: each wait on the
        server longer than ``timeout`` is cut, so a database that hangs during the replay cannot hang the
        maintenance thread that waits for it). The lanes go on meanwhile: what reaches them is spooled behind the
        replay, and answered, within the deadline."""
        return self.executor.submit(self._replay).result()

    def _replay(self) -> int:
        try:
            with deadlines.section():
                return self.spool.replay(statement_seconds=self.timeout)
        except (DatabaseError, psycopg.Error):
            connection.close()  # this thread's: the next write or replay reconnects
            raise
