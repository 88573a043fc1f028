"""The web process's side of the screen-pop: one listener per process (per event loop) that receives every pop
and hands it to the SSE streams of the extension it rings.

PostgreSQL: one extra connection per web process LISTENs on ``pops.CHANNEL``; the writer's NOTIFY arrives at its
commit (a few ms). Every ``HEARTBEAT`` without a notification the listener runs ``SELECT 1`` under a deadline, so a
connection a firewall dropped is noticed and replaced; after a reconnect it reads the pops it may have missed from
the table (by id). SQLite (the demo) has no NOTIFY: the listener polls the table every ``POLL_SECONDS`` by id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections

from . import pops
from .models import ScreenPop

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.1
HEARTBEAT = 15.0
DEADLINE = 5.0
BACKOFF_MAX = 30.0
# A slow browser must not hold pops in memory without bound: past this its oldest are dropped (a ring 50 pops ago
# is long over).
QUEUE_SIZE = 50
SEEN_KEPT = 10_000
# Streams of one extension in one web process: an operator's tabs are a handful; a session opening thousands (each a
# socket, a queue, a query per heartbeat) is refused past this.
MAX_STREAMS = 20


def _read_after(last_id: int, limit: int = 500) -> list[tuple[int, str, dict]]:
    try:
        return list(
            ScreenPop.objects.filter(id__gt=last_id).order_by("id").values_list("id", "extension", "payload")[:limit]
        )
    finally:
        close_old_connections()


def _last_id() -> int:
    try:
        return ScreenPop.objects.order_by("-id").values_list("id", flat=True).first() or 0
    finally:
        close_old_connections()


def _payload_of(pop_id: int) -> dict | None:
    try:
        return ScreenPop.objects.filter(pk=pop_id).values_list("payload", flat=True).first()
    finally:
        close_old_connections()


class Hub:
    def __init__(self) -> None:
        self.streams: dict[str, set[asyncio.Queue]] = {}
        self.last_id = 0
        self.seen: set[int] = set()
        self.seen_order: collections.deque[int] = collections.deque()
        self.task: asyncio.Task | None = None
        self.ready = asyncio.Event()

    async def subscribe(self, extension: str) -> asyncio.Queue | None:
        """A queue of ``extension``'s pops; None when the extension holds ``MAX_STREAMS`` already (the view: 429)."""
        if len(self.streams.get(extension, ())) >= MAX_STREAMS:
            return None
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.streams.setdefault(extension, set()).add(queue)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="telephony-hub")
        # Pops written after this stream opened reach it: wait until the listener knows where the table ends.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), DEADLINE)
        return queue

    def unsubscribe(self, extension: str, queue: asyncio.Queue) -> None:
        streams = self.streams.get(extension)
        if streams is not None:
            streams.discard(queue)
            if not streams:
                del self.streams[extension]

    def dispatch(self, pop_id: int, extension: str, payload: dict) -> None:
        # Ids are not committed in order on PostgreSQL (two writers), so "seen" is a set, not "id <= last": a NOTIFY
        # and the catch-up read after a reconnect can both bring the same pop.
        if pop_id in self.seen:
            return
        self.seen.add(pop_id)
        self.seen_order.append(pop_id)
        if len(self.seen_order) > SEEN_KEPT:
            self.seen.discard(self.seen_order.popleft())
        self.last_id = max(self.last_id, pop_id)
        for queue in list(self.streams.get(extension, ())):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(payload)

    async def _catch_up(self, margin: int = 0) -> None:
        after = max(0, self.last_id - margin)
        for pop_id, extension, payload in await sync_to_async(_read_after, thread_sensitive=False)(after):
            self.dispatch(pop_id, extension, payload)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                if not self.ready.is_set():
                    self.last_id = await sync_to_async(_last_id, thread_sensitive=False)()
                if connections["default"].vendor == "postgresql":
                    await self._listen()
                else:
                    self.ready.set()
                    while True:
                        await self._catch_up()
                        await asyncio.sleep(POLL_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("screen-pop listener failed; retrying in %.1f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def _listen(self) -> None:
        import psycopg

        params = connections["default"].settings_dict
        conn = await asyncio.wait_for(
            psycopg.AsyncConnection.connect(
                dbname=params["NAME"],
                user=params.get("USER") or None,
                password=params.get("PASSWORD") or None,
                host=params.get("HOST") or None,
                port=params.get("PORT") or None,
                autocommit=True,
                connect_timeout=int(DEADLINE),
                application_name="abonent-screen-pop",
            ),
            DEADLINE,
        )
        async with conn:
            await conn.execute(f"LISTEN {pops.CHANNEL}")
            # Whatever was written while no one listened; the margin covers ids committed after a higher one.
            await self._catch_up(margin=200)
            self.ready.set()
            while True:
                async for notify in conn.notifies(timeout=HEARTBEAT):
                    await self._on_notify(notify.payload)
                await asyncio.wait_for(conn.execute("SELECT 1"), DEADLINE)

    async def _on_notify(self, text: str) -> None:
        try:
            message = json.loads(text)
            pop_id, extension = int(message["id"]), str(message["extension"])
        except (ValueError, KeyError, TypeError):
            logger.warning("screen-pop: unreadable notification dropped: %.200s", text)
            return
        payload = message.get("payload")
        if payload is None:
            payload = await sync_to_async(_payload_of, thread_sensitive=False)(pop_id)
            if payload is None:
                return
        self.dispatch(pop_id, extension, payload)


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def hub() -> Hub:
    """This event loop's hub (uvicorn runs one loop per process; tests may run servers in threads)."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = Hub()
    return _hubs[loop]
