"""The calls' lane of ``abonent telephony`` in a process of its own.

Writing every event into the calls' rows costs several ORM queries per event, 1,000 events a second at 200 calls
per second: Python time that, in the same process, took the GIL from the ring lane and delayed the pops by seconds
(bench/screen_pop.py). Here it runs beside, fed batches of events through a pipe. Nothing in this module imports
Django at the top: the child imports it before setting Django up.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue as queue_module

FLUSH_SECONDS = 0.05
BATCH = 500


def _child(events) -> None:
    import django

    django.setup()
    from .asterisk import Book

    book = Book()
    while True:
        batch = events.get()
        if batch is None:
            return
        book.run_batch(batch)


class ProcessLane:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.events = context.Queue(maxsize=1000)  # batches; full: the AMI reader waits
        self.process = context.Process(target=_child, args=(self.events,), name="telephony-calls", daemon=True)
        self.process.start()
        self.pending: list[dict] = []
        self.queue = asyncio.Queue()  # empty always: Dispatcher.drained() looks at it

    async def put(self, message: dict) -> None:
        self.pending.append(message)
        if len(self.pending) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self.events.put, batch)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()

    def close(self, timeout: float = 30.0) -> None:
        """Hand over what is pending and let the child finish writing it."""
        if self.pending:
            self.events.put(self.pending)
            self.pending = []
        with contextlib.suppress(queue_module.Full):
            self.events.put(None, timeout=timeout)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
