"""The calls' lane of ``abonent telephony`` in a process of its own.

Writing every event into the calls' rows costs several ORM queries per event, 1,000 events a second at 200 calls
per second: Python time that, in the same process, took the GIL from the ring lane and delayed the pops by seconds
(bench/screen_pop.py). Here it runs beside, fed batches of events through a pipe. Nothing in this module imports
Django at the top: the child imports it before setting Django up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue as queue_module
import threading

logger = logging.getLogger("abonent.integrations.telephony.calls_process")

FLUSH_SECONDS = 0.05
BATCH = 500


def _child(events, parent: int) -> None:
    import os
    import signal

    # systemd (and a terminal's Ctrl-C) signal the whole group: the child must not die with the batches still in the
    # pipe. It ends on the parent's sentinel (ProcessLane.close), or when the parent is gone without one.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import django

    django.setup()
    from .asterisk import Book

    book = Book()
    while True:
        try:
            batch = events.get(timeout=1.0)
        except queue_module.Empty:
            if os.getppid() != parent:
                return
            continue
        if batch is None:
            return
        book.run_batch(batch)


class ProcessLane:
    def __init__(self) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.events = self.context.Queue(maxsize=1000)  # batches; full: the AMI reader waits
        self.lock = threading.Lock()
        self.restarts = 0
        self.process = self._start()
        self.pending: list[dict] = []
        self.queue = asyncio.Queue()  # empty always: Dispatcher.drained() looks at it

    def _start(self):
        process = self.context.Process(
            target=_child, args=(self.events, os.getpid()), name="telephony-calls", daemon=True
        )
        process.start()
        return process

    def ensure_child(self) -> None:
        """A dead child (killed, out of memory, an error that escaped) is replaced: it reads on from the same pipe.
        Without this the pipe filled, the AMI reader waited on it for ever, and pops stopped too, silently."""
        with self.lock:
            if self.process.is_alive():
                return
            logger.error(
                "telephony: the calls' process ended (exit code %s); starting another (the batch it was writing "
                "may be lost; the CDRs of the calls still going complete them)",
                self.process.exitcode,
            )
            self.restarts += 1
            self.process = self._start()

    def _put(self, batch) -> None:
        while True:
            try:
                self.events.put(batch, timeout=1.0)
                return
            except queue_module.Full:
                self.ensure_child()

    async def put(self, message: dict) -> None:
        self.pending.append(message)
        if len(self.pending) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._put, batch)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.ensure_child()
            await self.flush()

    def close(self, timeout: float = 30.0) -> None:
        """Hand over what is pending and let the child finish writing it."""
        self.ensure_child()
        if self.pending:
            self._put(self.pending)
            self.pending = []
        with contextlib.suppress(queue_module.Full):
            self.events.put(None, timeout=timeout)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
