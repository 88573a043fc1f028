"""Which authentication attempts the RADIUS process writes to the database (``AuthAttempt``).

The attempt log answers "why can't this subscriber connect?": a few rows per login and reason say that, a
flood's worth would only fill the disk. So per window (a minute) at most ``per_key`` rows are kept for one
(NAS, login, outcome, reason) and ``per_window`` in all; the rest are counted (``auth_attempts_dropped``)
and not written. Old rows are deleted by the worker's ``network.prune_auth_attempts``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from django.conf import settings

DEFAULT_PER_WINDOW = 1000
PER_KEY = 3
WINDOW_SECONDS = 60.0


class AttemptBudget:
    """Counts the rows admitted in the current window. Its table holds at most ``per_window`` keys (a key is
    counted only when its row is admitted), so random names cannot grow it."""

    def __init__(
        self,
        per_window: int = DEFAULT_PER_WINDOW,
        per_key: int = PER_KEY,
        *,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_window = per_window
        self.per_key = per_key
        self.window_seconds = window_seconds
        self.clock = clock
        self.counts: dict[Hashable, int] = {}
        self.admitted = 0
        self.window_ends = float("-inf")

    @classmethod
    def from_settings(cls) -> AttemptBudget:
        return cls(settings.ABONENT_RADIUS_ATTEMPTS_PER_MINUTE)

    def admit(self, key: Hashable) -> bool:
        now = self.clock()
        if now >= self.window_ends:
            self.counts.clear()
            self.admitted = 0
            self.window_ends = now + self.window_seconds
        if self.admitted >= self.per_window:
            return False
        seen = self.counts.get(key, 0)
        if seen >= self.per_key:
            return False
        self.counts[key] = seen + 1
        self.admitted += 1
        return True
