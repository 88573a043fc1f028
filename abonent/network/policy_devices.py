"""The devices each password login connected from, as accounting recorded them (mixed into ``policy.PolicyStore``).

The limits on bad authentications (``radius/ratelimit.py``) give a subscriber's own router a bucket of its own
and let it through a flood from its NAS. A router is known by what the database says, not only by what one
process saw: a restarted ``abonent radius``, or another of its ``--processes``, knows it too. A device is the
Calling-Station-Id *behind a NAS*: the same MAC through another NAS is another device (anyone can set a MAC).

Read from the sessions: every open one, and each login's newest ``DEVICES_PER_LOGIN`` started within
``DEVICE_DAYS`` (``selectors.login_devices``), when the policy is loaded and once a day; in between, the
sessions written since (``selectors.devices_since``) every ``DEVICES_INCREMENT_SECONDS``. Held as a set of
hashes of (login id, NAS id, Calling-Station-Id), about 80 bytes a device (200,000 in 16 MB): a device whose hash
collides with a known one's (a chance of one in 2**64 a lookup) would only pass for known: a bucket of its own
and no NAS limit, never a password check.
docs/radius.md, "Rate limits and the attempt log".
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from abonent.core import clock

from . import selectors

DEVICE_DAYS = 30
DEVICES_PER_LOGIN = 4
DEVICES_INCREMENT_SECONDS = 30.0
DEVICES_FULL_SECONDS = 24 * 3600.0
# Sessions read per increment: after a long outage the rest comes on the next ticks.
DEVICES_INCREMENT_ROWS = 50_000
# How far behind its last id the increment reads again: a session's id is taken when its row is inserted, and a
# batch that took lower ids may commit after one that took higher ones (as in ``policy.FEED_OVERLAP``).
DEVICES_OVERLAP = 2000
# Past this many (a churn of devices the daily re-read has not trimmed yet), the next refresh reads them afresh.
MAX_KNOWN_DEVICES = 2_000_000


@dataclass
class KnownDevices:
    known_devices: set[int] = field(default_factory=set)
    _devices_after_id: int = 0
    _devices_due: float = 0.0
    _devices_full_due: float = 0.0

    def refresh_devices(self, *, force: bool = False) -> None:
        """Read the devices afresh when ``force``d or a day old, else add those of the sessions written since."""
        now = time.monotonic()
        if force or now >= self._devices_full_due or len(self.known_devices) > MAX_KNOWN_DEVICES:
            rows, head = selectors.login_devices(clock.now() - dt.timedelta(days=DEVICE_DAYS), DEVICES_PER_LOGIN)
            # A new set swapped in: the event loop reads the old one meanwhile, never a half-built one.
            self.known_devices = {hash(row) for row in rows}
            self._devices_after_id = head
            self._devices_full_due = now + DEVICES_FULL_SECONDS
        elif now >= self._devices_due:
            rows, last_id = selectors.devices_since(
                max(0, self._devices_after_id - DEVICES_OVERLAP), DEVICES_INCREMENT_ROWS
            )
            self.known_devices.update(hash(row) for row in rows)  # each add atomic under the event loop's reads
            self._devices_after_id = max(self._devices_after_id, last_id)
        else:
            return
        self._devices_due = now + DEVICES_INCREMENT_SECONDS

    def device_known(self, login_id: int, nas_id: int, calling_station_id: str) -> bool:
        return hash((login_id, nas_id, calling_station_id)) in self.known_devices
