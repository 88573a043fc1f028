"""Asterisk's call events turned into calls: which AMI events we read, which fields of them, and the two lanes
that write them (docs/telephony.md, "Asterisk").

Events read (others are ignored): ``Newchannel`` (the caller's channel opens a call), ``DialBegin`` (an extension
rings: the screen-pop), ``DialEnd`` with ``DialStatus: ANSWER`` (who answered), ``Hangup`` of the caller's channel
(the end) and ``Cdr`` (cdr_manager: disposition, billable seconds and the recording file).

A call's id is its ``Linkedid``, the same on every channel of the call (the caller's ``Uniqueid``).

Two lanes, each a queue and one database thread. The ring lane only sends the screen-pop of each ``DialBegin``
(match the number, read the subscribers' figures, write the pop): nothing else delays it. The other lane writes
every event, the ``DialBegin`` too, into the call's row, in order. A call's row is created by whichever of its
events comes first, and each event updates only its own fields (actions' module docstring), so lateness or a
replay does not matter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import zoneinfo
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction

from abonent.core import clock

from . import actions, pops
from .models import CallStatus, Extension

logger = logging.getLogger(__name__)

SOURCE = "ami"
RING_EVENTS = frozenset({"DialBegin"})
BOOK_EVENTS = frozenset({"Newchannel", "DialBegin", "DialEnd", "Hangup", "Cdr"})
# Q.850 cause 17 = user busy; 1, 3, 21, 27, 34, 38 = the call could not be placed.
BUSY_CAUSES = frozenset({"17"})
FAILED_CAUSES = frozenset({"1", "3", "21", "27", "34", "38"})
DISPOSITIONS = {
    "ANSWERED": CallStatus.ANSWERED,
    "NO ANSWER": CallStatus.MISSED,
    "BUSY": CallStatus.BUSY,
    "FAILED": CallStatus.FAILED,
    "CONGESTION": CallStatus.FAILED,
}
# Where the recording's file name may be, in the order looked at: a cdr_manager mapping (``Recordingfile`` from
# ``CDR(recordingfile)``, as FreePBX sets it), the CDR's userfield, a channel variable of MixMonitor.
RECORDING_KEYS = ("Recordingfile", "RecordingFile", "recordingfile", "UserField")
RECORDING_VARS = ("MIXMONITOR_FILENAME", "RECORDINGFILE", "CALLFILENAME")
PRUNE_EVERY = 60.0
MAX_SECONDS = 86400 * 7  # a talk time past a week is garbage (the webhook's bound too)
RETRIES = 10
EXTENSIONS_EVERY = 30.0


def get(message: dict, *keys: str) -> str:
    for key in keys:
        value = message.get(key)
        if value:
            return value
    return ""


def call_id(message: dict) -> str:
    # Cut to the column's length here, once: every event of a long id (Originate's ChannelId, up to 150) then finds
    # the same row, and the pops' "already finished" check compares like with like.
    return get(message, "Linkedid", "LinkedID", "Uniqueid", "UniqueID")[: actions.CALL_ID_MAX]


def channel_peer(channel: str) -> str:
    """``PJSIP/101-0000000a`` → ``101``; ``SIP/trunk-00af`` → ``trunk``; ``Local/101@from-queue-0001;1`` → ``101``."""
    if not channel or "/" not in channel:
        return ""
    peer = channel.split("/", 1)[1]
    peer = peer.split("@", 1)[0]
    return peer.rsplit("-", 1)[0] if "-" in peer else peer


def event_time(message: dict) -> dt.datetime:
    """The event's ``Timestamp`` (``timestampevents = yes`` in manager.conf) or, without it, now."""
    stamp = message.get("Timestamp")
    if stamp:
        try:
            return dt.datetime.fromtimestamp(float(stamp), tz=dt.UTC)
        except (ValueError, OverflowError, OSError):
            pass
    return clock.now()


def cdr_time(value: str) -> dt.datetime | None:
    """A CDR time, ``2026-12-07 10:15:00``, in the PBX's (the installation's) time zone; empty: None."""
    if not value:
        return None
    try:
        moment = dt.datetime.strptime(value.strip()[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))


class Book:
    """The database side of the calls, run in a lane's thread."""

    def __init__(self) -> None:
        self.operators: dict[str, object] = {}
        self.operators_read = -EXTENSIONS_EVERY
        self.pruned = time.monotonic()

    def extensions(self) -> dict:
        """Extension number → its operator, re-read every EXTENSIONS_EVERY seconds (one query, not one per event)."""
        if time.monotonic() - self.operators_read > EXTENSIONS_EVERY:
            self.operators = {e.number: e.user for e in Extension.objects.select_related("user")}
            self.operators_read = time.monotonic()
        return self.operators

    def ringing_extension(self, message: dict) -> str:
        """The extension a ``DialBegin`` rings, or "" when an operator dials out (nothing rings at a desk)."""
        extension = channel_peer(get(message, "DestChannel")) or get(message, "DialString").rsplit("/", 1)[-1]
        if get(message, "CallerIDNum") in self.extensions():
            return ""
        return extension

    def handle(self, message: dict) -> None:
        name = message.get("Event")
        cid = call_id(message)
        if not cid:
            return
        at = event_time(message)
        caller = get(message, "CallerIDNum")
        if name == "Newchannel":
            # Only an operator's own channel tells us something the ring does not: the call is outgoing. An incoming
            # call's row is made by its first ring, hang-up or CDR.
            if get(message, "Uniqueid")[: actions.CALL_ID_MAX] in ("", cid) and caller in self.extensions():
                actions.do_register_outbound(SOURCE, cid, extension=caller, called_number=get(message, "Exten"), at=at)
        elif name == "DialBegin":
            if extension := self.ringing_extension(message):
                actions.do_register_ring(
                    SOURCE,
                    cid,
                    extension=extension,
                    caller_number=caller,
                    called_number=get(message, "Exten"),
                    at=at,
                    operator=self.extensions().get(extension),
                )
        elif name == "DialEnd":
            if get(message, "DialStatus").upper() == "ANSWER":
                extension = channel_peer(get(message, "DestChannel"))
                actions.do_register_answer(
                    SOURCE, cid, extension=extension, at=at, operator=self.extensions().get(extension)
                )
        elif name == "Hangup":
            if get(message, "Uniqueid")[: actions.CALL_ID_MAX] not in ("", cid):
                return  # one leg of a ring group hung up; the call goes on
            cause = get(message, "Cause")
            status = CallStatus.BUSY if cause in BUSY_CAUSES else CallStatus.FAILED if cause in FAILED_CAUSES else None
            actions.do_register_end(SOURCE, cid, at=at, status=status)
        elif name == "Cdr":
            self.handle_cdr(message, cid)

    def handle_cdr(self, message: dict, cid: str) -> None:
        recording = get(message, *RECORDING_KEYS) or next(
            (v for k in RECORDING_VARS if (v := message.get("_vars", {}).get(k))), ""
        )
        try:
            billable = int(get(message, "BillableSeconds") or "x")
        except ValueError:
            billable = None
        if billable is not None and not 0 <= billable < MAX_SECONDS:
            billable = None  # absurd: past the column's range PostgreSQL refused the whole CDR (status, recording)
        actions.do_register_cdr(
            SOURCE,
            cid,
            status=DISPOSITIONS.get(get(message, "Disposition").upper(), CallStatus.MISSED),
            duration_seconds=billable,
            recording_file=recording,
            caller_number=get(message, "Source"),
            called_number=get(message, "Destination"),
            started_at=cdr_time(get(message, "StartTime")),
            answered_at=cdr_time(get(message, "AnswerTime")),
            ended_at=cdr_time(get(message, "EndTime")),
        )

    # The pops are an outbox of a few minutes' life: their lane commits without waiting for the disk (a crash of
    # PostgreSQL may lose the last fraction of a second of pops, never corrupt anything); see Pops.
    relaxed_commit = False

    def run_batch(self, batch: list[dict]) -> None:
        """The batch in one transaction (one commit, which is what costs at 200 calls/s), each event in a savepoint
        of its own: a bad event is logged and dropped without its neighbours. The database away: the whole batch
        is tried again (events are idempotent), with backoff, then dropped with an error line."""
        close_old_connections()
        delay = 0.5
        for attempt in range(1, RETRIES + 1):
            try:
                with transaction.atomic():
                    if self.relaxed_commit and connection.vendor == "postgresql":
                        with connection.cursor() as cursor:
                            cursor.execute("SET LOCAL synchronous_commit = off")
                    for message in batch:
                        self.handle_one(message)
                break
            except (OperationalError, InterfaceError) as exc:
                logger.warning("telephony: database unavailable (%s); retry %d in %.1f s", exc, attempt, delay)
                connection.close()
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        else:
            logger.error("telephony: %d event(s) dropped, the database stayed unavailable", len(batch))
        if time.monotonic() - self.pruned > PRUNE_EVERY:
            self.pruned = time.monotonic()
            try:
                pops.prune_pops()
            except (OperationalError, InterfaceError) as exc:
                # The database away at this moment: prune next time. Raised, it ended the lane (the calls' child).
                logger.warning("telephony: pops not pruned (%s)", exc)
                connection.close()

    def handle_one(self, message: dict) -> None:
        try:
            with transaction.atomic():
                self.handle(message)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            logger.exception("telephony: event %s of call %s not recorded", message.get("Event"), call_id(message))


class Pops(Book):
    """The ring lane's side: only the screen-pop of each ``DialBegin``."""

    relaxed_commit = True

    def handle(self, message: dict) -> None:
        self.handle_many([message])

    def handle_one(self, message: dict) -> None:
        self.handle_many(message["_batch"])

    def handle_many(self, batch: list[dict]) -> None:
        rings = []
        for message in batch:
            cid = call_id(message)
            if cid and message.get("Event") == "DialBegin" and (extension := self.ringing_extension(message)):
                rings.append((SOURCE, cid, extension, get(message, "CallerIDNum")))
        pops.send_pops(rings)

    def run_batch(self, batch: list[dict]) -> None:
        # One set of queries for the whole batch (pops.send_pops); a failure other than the database's own drops
        # the batch's pops with a log line (a pop is worth nothing seconds later; the calls' lane records them).
        try:
            super().run_batch([{"_batch": batch}])
        except Exception:
            logger.exception("telephony: %d pop(s) not sent", len(batch))


class Lane:
    """One queue, one thread: events in order, in batches of what has arrived meanwhile."""

    def __init__(self, name: str, book: Book, *, size: int = 100_000, batch: int = 200) -> None:
        self.name = name
        self.book = book
        self.queue: asyncio.Queue = asyncio.Queue(size)
        self.batch = batch
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"telephony-{name}")

    async def put(self, message: dict) -> None:
        await self.queue.put(message)  # full: the AMI reader waits (TCP pushes back on Asterisk's side)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            await loop.run_in_executor(self.executor, self.book.run_batch, batch)


class Dispatcher:
    """``calls_in_process``: the calls' lane in a child process (``abonent telephony``; calls_process.py says why);
    tests keep both lanes in threads to wait for them."""

    def __init__(self, *, calls_in_process: bool = False) -> None:
        from .calls_process import ProcessLane

        self.rings = Lane("rings", Pops())
        self.rest = ProcessLane() if calls_in_process else Lane("events", Book())

    async def on_event(self, message: dict) -> None:
        name = message.get("Event")
        if name in RING_EVENTS:
            await self.rings.put(message)  # the pop
        if name in BOOK_EVENTS:
            await self.rest.put(message)  # the call's row

    async def drained(self, timeout: float = 5.0) -> None:
        """Wait until both queues are empty (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while (not self.rings.queue.empty() or not self.rest.queue.empty()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
