"""Work items handed out to a few threads, each with its own database connection.

The billing run and traffic rating split their work into chunks, each written in its own transaction: with two
threads the database works on one chunk while Python prices the next (docs/scaling.md). A failure in any thread
stops the others taking more work and is raised in the caller once they have all finished.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable

from django.db import connection


def run_in_threads(items: Iterable, work: Callable[[object], None], *, workers: int, name: str) -> None:
    """Call ``work(item)`` for every item on ``workers`` threads; the first exception is re-raised here."""
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for item in items:
        pending.put(item)
    failures: list[BaseException] = []
    stop = threading.Event()

    def worker() -> None:
        try:
            while not stop.is_set():
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    return
                work(item)
        except BaseException as exc:  # re-raised in the calling thread below
            failures.append(exc)
            stop.set()
        finally:
            connection.close()  # each thread's own connection, not the caller's

    threads = [threading.Thread(target=worker, name=f"{name}-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
