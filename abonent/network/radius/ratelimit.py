"""Limits on bad authentications, per login and per NAS, held in memory by each RADIUS process.

A bad authentication is an Access-Request carrying a password (PAP, CHAP, MS-CHAP, MS-CHAPv2) that opens no
login: a wrong password, a login that does not exist, a request for the NAS's console. Good ones take nothing
from any limit, so a reconnect storm of subscribers with the right passwords is never slowed by it.

A *known device* of a login is a Calling-Station-Id behind a NAS (the pair: a MAC through another NAS is
another device, as anyone can set a MAC) that the login connected from: in the database's sessions, open or
recent (``policy_devices.py``: so a restarted process, or another of ``--processes``, knows it too), or
accepted by this process since. The caller (``handler.py``) tells each call which device asks, or ``None``
when it is not a known one. A NAS that sends no Calling-Station-Id has no known devices: its subscribers share
their login's limit with whoever guesses, and wait through a flood from their NAS.

- **Per login** (the User-Name as sent, whether it exists or not): ``per_login_per_minute`` bad ones a minute,
  as a bucket of that many refilled evenly. Over it, the login's requests are rejected without a check, with
  the Access-Reject a wrong password gets: the answer says nothing about whether the login exists, or whether
  the password was right. Each known device has a bucket of its own: someone guessing from elsewhere cannot
  lock the subscriber's own router out, and a router retrying an old password is limited all the same.
- **Per NAS**: ``per_nas_per_second`` bad ones a second, with ten seconds' worth as a burst: a flood of random
  names, or password spraying (one guess at each of many logins, which no per-login limit sees). Over it, the
  NAS's requests carrying a password are rejected unchecked, except those from a known device of their login:
  subscribers keep connecting through an attack, and through a restart's storm of routers with stale passwords.

Memory is bounded: a bucket exists only while it is not full, only a bad authentication that was checked
creates one (and those are bounded by the NAS limit), and the table is capped at ``MAX_KEYS``; the devices this
process accepted are a few per login (``DEVICES_PER_LOGIN``) for at most ``MAX_DEVICES`` logins. A flood of
random names grows neither without end. Everything runs on the event loop's thread.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Hashable

from django.conf import settings

logger = logging.getLogger("abonent.radius")

DEFAULT_PER_LOGIN_PER_MINUTE = 10
DEFAULT_PER_NAS_PER_SECOND = 50
NAS_BURST_SECONDS = 10
MAX_KEYS = 100_000
MAX_DEVICES = 500_000
DEVICES_PER_LOGIN = 4
LOG_LINES_PER_MINUTE = 10


class Buckets:
    """Token buckets by key: each holds up to ``burst`` tokens, refilled at ``rate`` a second. A key not in
    the table has a full bucket; a bucket is stored as (level, when), refilled when it is next read."""

    def __init__(self, rate: float, burst: float, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.levels: dict[Hashable, tuple[float, float]] = {}

    def level(self, key: Hashable, now: float) -> float:
        stored = self.levels.get(key)
        if stored is None:
            return self.burst
        level, at = stored
        return min(self.burst, level + (now - at) * self.rate)

    def empty(self, key: Hashable, now: float) -> bool:
        stored = self.levels.get(key)  # read on every request carrying a password: kept short
        if stored is None:
            return False
        return stored[0] + (now - stored[1]) * self.rate < 1.0

    def take(self, key: Hashable, now: float) -> bool:
        """Take a token (never below zero); True when this took the last one."""
        level = max(self.level(key, now) - 1.0, 0.0)
        levels = self.levels
        levels.pop(key, None)  # inserted again at the end: the table's order is the order of last use
        levels[key] = (level, now)
        if len(levels) > self.max_keys:
            self._trim(now)
        return level < 1.0

    def reset(self, key: Hashable) -> None:
        self.levels.pop(key, None)

    def _trim(self, now: float) -> None:
        """Forget the buckets that have filled up again, then, if the table is still over 90 % of its cap,
        the least recently used (they get a fresh bucket: an attacker filling the table gains at most that)."""
        levels = self.levels
        for key in [key for key in levels if self.level(key, now) >= self.burst]:
            del levels[key]
        excess = len(levels) - self.max_keys * 9 // 10
        if excess > 0:
            for key in list(itertools.islice(levels, excess)):
                del levels[key]


class BadAuthLimiter:
    """The per-login and per-NAS limits of one RADIUS process (module docstring). 0 turns a limit off.

    ``device`` arguments: the (NAS id, Calling-Station-Id) of a known device of the login, or a false value."""

    def __init__(
        self,
        per_login_per_minute: int = DEFAULT_PER_LOGIN_PER_MINUTE,
        per_nas_per_second: int = DEFAULT_PER_NAS_PER_SECOND,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
        max_devices: int = MAX_DEVICES,
    ) -> None:
        self.per_login_per_minute = per_login_per_minute
        self.per_nas_per_second = per_nas_per_second
        self.logins = (
            Buckets(per_login_per_minute / 60.0, per_login_per_minute, max_keys) if per_login_per_minute > 0 else None
        )
        self.nas = (
            Buckets(per_nas_per_second, per_nas_per_second * NAS_BURST_SECONDS, max_keys)
            if per_nas_per_second > 0
            else None
        )
        self.clock = clock
        self.max_devices = max_devices
        # User-Name → the devices (NAS id, Calling-Station-Id) this process accepted it from, the newest last.
        self.devices: dict[str, tuple[Hashable, ...]] = {}
        self._log_window = 0.0
        self._log_lines = 0

    @classmethod
    def from_settings(cls) -> BadAuthLimiter:
        return cls(
            settings.ABONENT_RADIUS_BAD_AUTH_PER_LOGIN,
            settings.ABONENT_RADIUS_BAD_AUTH_PER_NAS,
        )

    def accepted_here(self, username: str, device: Hashable) -> bool:
        """Whether this process accepted ``username`` from ``device`` (the database may not say so yet)."""
        devices = self.devices.get(username)
        return devices is not None and device in devices

    def throttled(self, nas: str, username: str, device: Hashable | None) -> bool:
        """Whether a request carrying a password is to be rejected unchecked."""
        now = self.clock()
        logins = self.logins
        if logins is not None and logins.levels and logins.empty((username, device or None), now):
            return True
        return self.nas is not None and not device and self.nas.empty(nas, now)

    def failed(self, nas: str, username: str, device: Hashable | None) -> None:
        """A bad authentication that was checked."""
        now = self.clock()
        if self.logins is not None and self.logins.take((username, device or None), now):
            self._log(now, "login %r (NAS %s) over %d a minute", username, nas, self.per_login_per_minute)
        if self.nas is not None and self.nas.take(nas, now):
            self._log(now, "NAS %s over %d a second", nas, self.per_nas_per_second)

    def succeeded(self, username: str, device: Hashable | None) -> None:
        """The right password from ``device`` (None: the NAS sent no Calling-Station-Id): the device is known from
        now, and its own bucket starts full."""
        if not device:
            return
        if self.logins is not None and self.logins.levels:
            self.logins.reset((username, device))
        devices = self.devices
        mine = devices.get(username)
        if mine is not None and mine[-1] == device:
            return  # the usual accept: the same router as last time
        devices.pop(username, None)  # inserted again at the end: the table's order is the order of change
        devices[username] = (*(d for d in mine or () if d != device), device)[-DEVICES_PER_LOGIN:]
        if len(devices) > self.max_devices:
            for key in list(itertools.islice(devices, len(devices) - self.max_devices * 9 // 10)):
                del devices[key]

    def _log(self, now: float, message: str, *args) -> None:
        # A few lines a minute at most: spraying over many logins must not become a flood of log lines.
        if now - self._log_window >= 60.0:
            self._log_window, self._log_lines = now, 0
        self._log_lines += 1
        if self._log_lines <= LOG_LINES_PER_MINUTE:
            logger.warning("radius: bad authentications of " + message + "; rejecting them unchecked", *args)
