"""Simultaneous use as the RADIUS server counts it in memory (mixed into ``policy.PolicyStore``).

What the database said at the last re-read of the sets (every 15 s), plus the Starts and minus the Stops this
process has seen since, plus the Accounting-On/Off that end a NAS's sessions at once. An open session counts
while it is alive: updated within ``ABONENT_RADIUS_SESSION_ALIVE_INTERVALS`` interim intervals of its NAS, at
most two hours (``selectors.session_alive_seconds``), so a NAS that reboots without Accounting-On frees its
subscribers that soon.
docs/radius.md, "What the server answers".
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings

from abonent.core import clock

from . import selectors

# Seconds an Accounting-On is left out of the re-reads of the sets: its write commits well within it.
RESTART_KEPT_SECONDS = 300.0


def alive_intervals() -> int:
    return settings.ABONENT_RADIUS_SESSION_ALIVE_INTERVALS


@dataclass
class SimultaneousUse:
    """The logins at their simultaneous-use limit (``at_limit``), kept current between re-reads, and the logins
    known to have been online (``had_session``). Reads the store's ``by_login_id`` for each login's limit.

    Times of sessions and Accounting-Ons are kept as ``selectors.unix_microseconds``: an Accounting-On frees the
    sessions that started at or before it, exactly as its write closes them in the database."""

    at_limit: set[int] = field(default_factory=set)
    # Logins allowed more than one session, with fewer open than that: how many (from the last re-read).
    open_below_limit: dict[int, int] = field(default_factory=dict)
    # Where the sessions counted at the last re-read are (``selectors.SessionCounts``) and when each started:
    # an Accounting-On frees that NAS's sessions that started before it at once.
    _on_nas: dict[int, array] = field(default_factory=dict)
    _started_on_nas: dict[int, array] = field(default_factory=dict)
    _spread: dict[int, dict[int, int]] = field(default_factory=dict)
    # Accounting-On/Off received (NAS id → latest event time, when seen), left out of the next re-reads: the write
    # that closes those sessions may not have committed when a re-read runs.
    _restarts: dict[int, tuple[dt.datetime, float]] = field(default_factory=dict)
    # Sessions this process saw start (login → unique id → (NAS id, start)), not stopped since, and those it saw
    # stop, since the last re-read of the sets: with the database's count then, they say at once whether a login
    # is at its limit.
    _opened: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)
    _stopped: dict[str, None] = field(default_factory=dict)  # kept across re-reads, oldest trimmed
    # Who was online, for a policy too old for new logins (``had_session``): the logins of the sessions the last
    # re-read counted (as read: an Accounting-On or a Stop since does not take them out, they are reconnecting)
    # and those seen starting a session since, or a restored snapshot's list. ``_online`` is the two joined,
    # built when first asked.
    _online_read: dict[int, array] = field(default_factory=dict)
    _online_since: set[int] = field(default_factory=set)
    _online: set[int] | None = None

    def reread_session_limits(self) -> None:
        # Starts from now on are counted over what the query reads: fresh sets before it runs, so the Starts
        # the event loop handles meanwhile are kept (the query may not see them yet).
        opened_before, online_before = self._opened, self._online_since
        self._opened, self._online_since = {}, set()
        keep = time.monotonic() - RESTART_KEPT_SECONDS
        self._restarts = {nas_id: seen for nas_id, seen in self._restarts.items() if seen[1] >= keep}
        restarts = dict(self._restarts)  # as the query sees them; the event loop may add one meanwhile
        try:
            counts = selectors.session_limits(
                alive_intervals(), restarted={nas_id: at for nas_id, (at, _seen) in restarts.items()}
            )
        except BaseException:
            # The database went away mid-read: what this process saw start still counts, and still was online.
            for login_id, opened in self._opened.items():
                opened_before.setdefault(login_id, {}).update(opened)
            self._opened, self._online_since = opened_before, online_before | self._online_since
            raise
        at_limit, self.open_below_limit = counts.at_limit, counts.below
        # Copies of the dicts, sharing the arrays: ``_free_nas`` replaces a NAS's arrays, never changes them, so
        # ``_online_read`` stays what was read.
        self._on_nas, self._started_on_nas = dict(counts.on_nas), dict(counts.started)
        self._spread, self._online_read, self._online = counts.spread, counts.on_nas, None
        for login_id, opened in list(self._opened.items()):
            entry = self.by_login_id.get(login_id)
            if entry is not None and len(opened) + self.open_below_limit.get(login_id, 0) >= entry.simultaneous_use:
                at_limit.add(login_id)
        self.at_limit = at_limit
        # An Accounting-On that arrived while the query ran freed the sets it replaces: free the new ones too.
        for nas_id, seen in list(self._restarts.items()):
            if restarts.get(nas_id) != seen:
                self._free_nas(nas_id, selectors.unix_microseconds(seen[0]))

    def session_started(
        self, login_id: int, unique_id: str, nas_id: int = 0, started_at: dt.datetime | None = None
    ) -> None:
        """A Start (of a session that began at ``started_at``; now when not given): the login may be at its
        simultaneous-use limit from now, not from the next re-read of the sets (up to 15 s later). A Start after
        its own Stop (reordered) opens nothing."""
        entry = self.by_login_id.get(login_id)
        if entry is None or unique_id in self._stopped:
            return
        started = selectors.unix_microseconds(started_at or clock.now())
        opened = self._opened.setdefault(login_id, {})
        opened[unique_id] = (nas_id, started)
        self._online_since.add(login_id)
        if self._online is not None:
            self._online.add(login_id)
        if len(opened) + self.open_below_limit.get(login_id, 0) >= entry.simultaneous_use:
            self.at_limit.add(login_id)

    def session_stopped(self, login_id: int, unique_id: str) -> None:
        """A Stop: its login may connect again now, unless the sessions this process saw start and still open
        fill its limit (a Stop for another, older session must not let a second one in)."""
        stopped = self._stopped
        if unique_id in stopped:
            return  # the same Stop again (a retransmission with a new Acct-Delay-Time passes the dedup cache)
        stopped[unique_id] = None
        if len(stopped) > 200_000:  # a reordered Start comes within seconds; old ids are let go
            for key in list(itertools.islice(stopped, 10_000)):
                del stopped[key]
        opened = self._opened.get(login_id)
        entry = self.by_login_id.get(login_id)
        if opened and unique_id in opened:
            del opened[unique_id]
        elif login_id in self.open_below_limit:
            self.open_below_limit[login_id] -= 1
        elif login_id in self.at_limit and entry is not None and entry.simultaneous_use > 1:
            # At its limit at the last re-read (so not counted below it): one of those sessions ended.
            self.open_below_limit[login_id] = entry.simultaneous_use - 1
        if opened and entry is not None and len(opened) >= entry.simultaneous_use:
            return
        self.at_limit.discard(login_id)

    def nas_restarted(self, nas_id: int, at: dt.datetime) -> None:
        """Accounting-On/Off (RFC 2866 §5.1, Acct-Status-Type 7/8) at ``at`` (its event time: the receive time
        less Acct-Delay-Time): the NAS restarted, so every session it had then is over. Their logins may connect
        again now, not at the next re-read of the sets (15 s) nor after their sessions go silent; the database
        closes those sessions when the record is written. Sessions that started after it are the reconnect
        storm and keep counting: a NAS may send its Accounting-On twice, and a retransmission with a new
        Acct-Delay-Time is a new packet to the dedup cache."""
        seen = self._restarts.get(nas_id)
        latest = at if seen is None or at > seen[0] else seen[0]
        self._restarts[nas_id] = (latest, time.monotonic())
        self._free_nas(nas_id, selectors.unix_microseconds(at))

    def _free_nas(self, nas_id: int, at: int) -> None:
        """Take out of the count the sessions on ``nas_id`` that started at or before ``at`` (microseconds)."""
        freed: Counter[int] = Counter()
        kept: Counter[int] = Counter()
        ids = self._on_nas.get(nas_id)
        if ids is not None:
            starts = self._started_on_nas.get(nas_id, array("q"))
            if not starts or max(starts) <= at:  # the usual case: all of them (Counter counts in C)
                freed = Counter(ids)
                del self._on_nas[nas_id]
                self._started_on_nas.pop(nas_id, None)
            else:  # new arrays, not changed in place: ``_online_read`` shares the old ones
                left_ids, left_starts = array("q"), array("q")
                for login_id, started in zip(ids, starts, strict=True):
                    if started <= at:
                        freed[login_id] += 1
                    else:
                        left_ids.append(login_id)
                        left_starts.append(started)
                        kept[login_id] += 1
                self._on_nas[nas_id], self._started_on_nas[nas_id] = left_ids, left_starts
        affected = set(freed)
        for login_id, opened in self._opened.items():
            gone = [uid for uid, (on, started) in opened.items() if on == nas_id and started <= at]
            for unique_id in gone:
                del opened[unique_id]
            if gone:
                affected.add(login_id)
        for login_id in affected:
            entry = self.by_login_id.get(login_id)
            here = freed.get(login_id, 0)
            spread = self._spread.get(login_id)
            if login_id in self.open_below_limit:
                before = self.open_below_limit[login_id]
            elif spread is not None:
                before = sum(spread.values())
            else:
                before = here + kept.get(login_id, 0)  # every session counted for it was on this NAS
            if spread is not None and here:
                if spread.get(nas_id, 0) > here:
                    spread[nas_id] -= here
                else:
                    spread.pop(nas_id, None)
            left = max(0, before - here)
            if entry is not None and entry.simultaneous_use > 1 and left:
                self.open_below_limit[login_id] = left
            else:
                self.open_below_limit.pop(login_id, None)
            if entry is None or left + len(self._opened.get(login_id, ())) < entry.simultaneous_use:
                self.at_limit.discard(login_id)

    def had_session(self, login_id: int) -> bool:
        """Whether the login had a session open when the policy was read (or started one since): a subscriber
        reconnecting, not a new one. Neither a Stop nor an Accounting-On takes a login out: one whose NAS
        rebooted is exactly the subscriber reconnecting."""
        online = self._online
        if online is None:
            online = set(self._online_since)
            for ids in self._online_read.values():
                online.update(ids)
            self._online = online
        return login_id in online

    def online_logins(self) -> set[int]:
        self.had_session(0)
        return set(self._online)
