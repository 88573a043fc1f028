"""The devices each password login connected from, as accounting recorded them (mixed into ``policy.PolicyStore``).

The limits on bad authentications (``radius/ratelimit.py``) give a subscriber's own router a bucket of its own
and let it through a flood from its NAS. A router is known by what the database says, not only by what one
process saw: a restarted ``abonent radius``, or another of its ``--processes``, knows it too. A device is the
Calling-Station-Id *behind a NAS*: the same MAC through another NAS is another device (anyone can set a MAC).

Read from the sessions: every open one, and each login's newest ``DEVICES_PER_LOGIN`` started within
``DEVICE_DAYS`` (``read_devices``), when the policy is loaded and once a day; in between, the sessions written
since (``read_devices_since``) every ``DEVICES_INCREMENT_SECONDS``. Held as a set of hashes of (login id, NAS
id, Calling-Station-Id), about 80 bytes a device (200,000 in 16 MB): a device whose hash collides with a known
one's (a chance of one in 2**64 a lookup) would only pass for known, with a bucket of its own and no NAS limit,
never past a password check.
docs/radius.md, "Rate limits and the attempt log".
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from django.db import connection, transaction

from abonent.core import clock

from .models import Login, LoginKind, Session, SessionStatus
from .selectors import raw_rows

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


def read_devices(since: dt.datetime, per_login: int) -> tuple[list[tuple[int, int, str]], int]:
    """The devices password logins connected from, for the RADIUS server's limits on bad authentications: (login
    id, NAS id, Calling-Station-Id) of each login's newest ``per_login`` sessions started since ``since`` and of
    every open session; and the highest session id when read (``read_devices_since`` goes on from it).

    On PostgreSQL one probe of the (subscriber, started_at) index per login, newest first: the sessions table
    keeps years of history, and only its last month, a few rows per login, is wanted: 1.4–1.8 s for 100,000
    logins with 3,100,000 sessions (docs/radius.md), when the server starts and once a day."""
    head = Session.objects.order_by("-id").values_list("id", flat=True).first() or 0
    password_kinds = (LoginKind.PPPOE, LoginKind.HOTSPOT)
    open_rows = Session.objects.filter(
        status=SessionStatus.OPEN, login__kind__in=password_kinds, started_at__lt=since
    ).exclude(calling_station_id="")
    rows = list(open_rows.values_list("login_id", "nas_id", "calling_station_id"))
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            # 100,000 index probes are costed like a big scan: compiling the plan took 260 of 1,900 ms (JIT).
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(
                f"""
                SELECT l.id, s.nas_id, s.calling_station_id
                FROM {Login._meta.db_table} l
                CROSS JOIN LATERAL (
                    SELECT nas_id, calling_station_id, started_at FROM {Session._meta.db_table}
                    WHERE subscriber_id = l.subscriber_id AND started_at >= %s
                      AND login_id = l.id AND calling_station_id <> ''
                    ORDER BY started_at DESC LIMIT %s
                ) s
                WHERE l.kind = ANY(%s)
                """,
                [since, per_login, list(password_kinds)],
            )
            rows += cursor.fetchall()
    else:  # SQLite: small databases, a plain scan
        recent = (
            Session.objects.filter(started_at__gte=since, login__kind__in=password_kinds)
            .exclude(calling_station_id="")
            .order_by("login_id", "-started_at")
            .values_list("login_id", "nas_id", "calling_station_id")
        )
        taken: dict[int, int] = {}
        for row in recent:
            if taken.get(row[0], 0) < per_login:
                taken[row[0]] = taken.get(row[0], 0) + 1
                rows.append(row)
    return rows, head


def read_devices_since(after_id: int, limit: int) -> tuple[list[tuple[int, int, str]], int]:
    """(login id, NAS id, Calling-Station-Id) of the password logins' sessions with an id above ``after_id`` (on
    the primary key), at most ``limit`` of them, and the id to go on from: the highest read when the limit cut
    the read short, else the highest in the table (IPoE sessions are not read again and again)."""
    head = Session.objects.order_by("-id").values_list("id", flat=True).first() or 0
    # Straight from the driver (selectors.raw_rows): after a NAS reboot tens of thousands of sessions start
    # within seconds, and Django's per-row work on this read held the interpreter from the event loop long
    # enough to cut accounting answered in bench/radius_acct.py's radclient phase by a fifth.
    rows = list(
        raw_rows(
            Session.objects.filter(id__gt=after_id, id__lte=head, login__kind__in=(LoginKind.PPPOE, LoginKind.HOTSPOT))
            .exclude(calling_station_id="")
            .order_by("id")
            .values_list("id", "login_id", "nas_id", "calling_station_id")[:limit]
        )
    )
    return [row[1:] for row in rows], (rows[-1][0] if len(rows) == limit else max(head, after_id))


@dataclass
class KnownDevices:
    """The known devices of the store's logins; ``refresh_devices`` runs on the maintenance thread (with the
    store's other sets), ``device_known`` on the event loop."""

    known_devices: set[int] = field(default_factory=set)
    _devices_after_id: int = 0
    _devices_due: float = 0.0
    _devices_full_due: float = 0.0

    def refresh_devices(self, *, force: bool = False) -> None:
        """Read the devices afresh when ``force``d or a day old, else add those of the sessions written since."""
        now = time.monotonic()
        if force or now >= self._devices_full_due or len(self.known_devices) > MAX_KNOWN_DEVICES:
            rows, head = read_devices(clock.now() - dt.timedelta(days=DEVICE_DAYS), DEVICES_PER_LOGIN)
            # A new set swapped in: the event loop reads the old one meanwhile, never a half-built one.
            self.known_devices = {hash(row) for row in rows}
            self._devices_after_id = head
            self._devices_full_due = now + DEVICES_FULL_SECONDS
        elif now >= self._devices_due:
            rows, last_id = read_devices_since(max(0, self._devices_after_id - DEVICES_OVERLAP), DEVICES_INCREMENT_ROWS)
            self.known_devices.update(hash(row) for row in rows)  # each add atomic under the event loop's reads
            self._devices_after_id = max(self._devices_after_id, last_id)
        else:
            return
        self._devices_due = now + DEVICES_INCREMENT_SECONDS

    def device_known(self, login_id: int, nas_id: int, calling_station_id: str) -> bool:
        return hash((login_id, nas_id, calling_station_id)) in self.known_devices
