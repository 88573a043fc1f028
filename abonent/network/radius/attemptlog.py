"""Which authentication attempts the RADIUS process writes to the database (``AuthAttempt``).

The attempt log answers "why can't this subscriber connect?": a few rows per login and reason say that, a
flood's worth would only fill the disk. So per window (a minute) at most ``per_key`` rows are kept for one
(NAS, login, outcome, reason), and the rest are counted (``auth_attempts_dropped``) and not written.

Logins that exist and names that do not have budgets of their own, ``per_window`` rows each: a flood of random
names spends only the second, and a subscriber's own rejects are still written while it lasts. A subscriber's
requests rejected unchecked over the limits (``ratelimit.py``) are written as one ``rate_limited`` row per login
a minute (``RATE_LIMITED_PER_KEY``), so the log says why the right password was refused. Old rows are deleted
by the worker's ``network.prune_auth_attempts``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from django.conf import settings

DEFAULT_PER_WINDOW = 1000
PER_KEY = 3
RATE_LIMITED_PER_KEY = 1
WINDOW_SECONDS = 60.0


class AttemptBudget:
    """Counts the rows admitted in the current window, for known logins and for unknown names apart. Its table
    holds at most ``per_window`` keys of each (a key is counted only when its row is admitted), so random names
    cannot grow it."""

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
        self.admitted = {False: 0, True: 0}  # rows of unknown names, of known logins
        self.window_ends = float("-inf")

    @classmethod
    def from_settings(cls) -> AttemptBudget:
        return cls(settings.ABONENT_RADIUS_ATTEMPTS_PER_MINUTE)

    def admit(self, key: Hashable, *, known: bool = False, per_key: int | None = None) -> bool:
        """Whether a row for ``key`` is written: ``known`` when the login exists (its own budget); ``per_key``
        instead of the budget's rows per key."""
        now = self.clock()
        if now >= self.window_ends:
            self.counts.clear()
            self.admitted = {False: 0, True: 0}
            self.window_ends = now + self.window_seconds
        admitted = self.admitted
        if admitted[known] >= self.per_window:
            return False
        seen = self.counts.get(key, 0)
        if seen >= (self.per_key if per_key is None else per_key):
            return False
        self.counts[key] = seen + 1
        admitted[known] += 1
        return True
