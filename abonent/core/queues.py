"""Draining a queue batch by batch: the CoA requests and the notification outbox are sent the same way.

``send(limit)`` claims and sends up to ``limit`` items and returns how many ended in each way; a batch smaller
than ``limit`` means nothing more is due now. ``drain`` is the worker's periodic job (a time budget, handing the
worker back before the next slot); ``send_loop`` is the ``abonent … send [--loop]`` commands.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from django.db import close_old_connections

Send = Callable[[int], dict[str, int]]


def drain(send: Send, *, limit: int, budget_s: float) -> dict[str, int]:
    """Batch after batch until one comes back short or ``budget_s`` seconds have passed; the totals."""
    totals: Counter[str] = Counter()
    started = time.monotonic()
    while time.monotonic() - started < budget_s:
        counts = send(limit)
        totals.update(counts)
        if sum(counts.values()) < limit:
            break
    return dict(totals)


def send_loop(send: Send, *, limit: int, loop: bool, interval: float, report: Callable[[dict], None]) -> None:
    """One batch, or (``loop``) batches until interrupted, pausing ``interval`` seconds whenever the queue had
    less than a batch due. ``report`` gets each batch's counts that are not empty."""
    try:
        while True:
            counts = send(limit)
            if counts:
                report(counts)
            if not loop:
                return
            close_old_connections()
            if sum(counts.values()) < limit:
                time.sleep(interval)
    except KeyboardInterrupt:
        return
