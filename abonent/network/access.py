"""Telling the NAS about the access states dunning keeps (DESIGN.md invariant 5).

Dunning decides who is ``restricted`` (web traffic to the payment page) and who is denied access (``suspended``,
``blocked``, ``terminated``); ``AccessMark`` holds what the NAS were last told. ``sync_access_states`` compares
the two and pushes the difference to the sessions online, through the CoA queue:

- newly restricted: the redirect on (CoA, or a Disconnect where the NAS can only redirect at login);
- newly denied: a Disconnect (the next Access-Request is rejected with the state's reason);
- back to plain access from either: the redirect off, with the speed now in force.

It runs every minute in the worker over everyone, and at once for the subscribers of each
``dunning.states_changed`` event (``network.events``), so a payment restores access without waiting for the
minute. An offline subscriber is marked and sent nothing: its next Access-Request gets the state in force.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from django.db import connection, transaction

from abonent.core import clock
from abonent.core.deadlines import db_deadline
from abonent.dunning.selectors import denied_subscribers, redirected_subscribers

from .actions import queue_access_change, queue_disconnect, queue_for_online
from .models import AccessMark, AccessMarkKind, CoaReason

logger = logging.getLogger(__name__)

# Marks written or removed per statement: well inside SQLite's limit on parameters.
BATCH = 2000
# Seconds a sync waits for another to finish (PostgreSQL), and the most one statement of it may take.
LOCK_WAIT_S = 30.0
STATEMENT_S = 120.0
# One sync at a time: marks are rows, and a row lock cannot cover a mark not written yet. Serialised, each
# sync reads the states after the one before it committed, so a sync that read a state before a payment never
# writes its stale view after the sync that saw the payment (a restrict queued after the restore).
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"abonent.network.sync_access_states").digest()[:8], "big", signed=True)


def _serialise(lock_wait: float) -> None:
    """Wait (up to ``lock_wait`` s) for any other sync to commit. SQLite needs nothing: its transactions are
    IMMEDIATE here (settings), so the database itself lets one writer in at a time."""
    if connection.vendor != "postgresql":
        return
    db_deadline(lock=lock_wait, statement=STATEMENT_S)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _wanted(subscriber_ids: list[int] | None) -> dict[int, str]:
    """What the NAS should have been told, by subscriber: redirect or denied (no entry: plain access)."""
    wanted = dict.fromkeys(redirected_subscribers(subscriber_ids), AccessMarkKind.REDIRECT.value)
    wanted.update(dict.fromkeys(denied_subscribers(subscriber_ids), AccessMarkKind.DENIED.value))
    return wanted


def _write_marks(wanted: dict[int, str], told: dict[int, str], now) -> tuple[dict[int, str], list[int]]:
    """Bring the marks to ``wanted``; returns the marks changed (subscriber → what is told now) and removed."""
    changed = {sid: kind for sid, kind in wanted.items() if told.get(sid) != kind}
    removed = sorted(sid for sid in told if sid not in wanted)
    new = [AccessMark(subscriber_id=s, told=kind, since=now) for s, kind in sorted(changed.items()) if s not in told]
    AccessMark.objects.bulk_create(new, batch_size=BATCH)
    for kind in AccessMarkKind.values:
        switched = sorted(sid for sid, new in changed.items() if new == kind and sid in told)
        for start in range(0, len(switched), BATCH):
            AccessMark.objects.filter(subscriber_id__in=switched[start : start + BATCH]).update(told=kind, since=now)
    for start in range(0, len(removed), BATCH):
        AccessMark.objects.filter(subscriber_id__in=removed[start : start + BATCH]).delete()
    return changed, removed


def _push(subscriber_id: int, *, changed: dict[int, str]) -> list:
    kind = changed.get(subscriber_id)
    if kind == AccessMarkKind.DENIED:
        return queue_disconnect(subscriber_id, reason=CoaReason.SUSPEND)
    return queue_access_change(subscriber_id, restricted=kind == AccessMarkKind.REDIRECT)


@transaction.atomic
def sync_access_states(subscriber_ids: Iterable[int] | None = None, *, lock_wait: float = LOCK_WAIT_S) -> dict:
    """Compare dunning's access states with what the NAS were told, for everyone or for ``subscriber_ids``,
    and push the difference to the sessions online. Idempotent: a second run with no state change queues
    nothing. Safe beside another run (the periodic one and an event's): they take turns (``_serialise``);
    waiting longer than ``lock_wait`` raises the database's deadline error (``core.deadlines.is_deadline``)."""
    ids = None if subscriber_ids is None else sorted(set(subscriber_ids))
    counts = {"restricted": 0, "denied": 0, "restored": 0, "requests": 0}
    if ids == []:
        return counts
    _serialise(lock_wait)
    now = clock.now()
    wanted = _wanted(ids)
    marks = AccessMark.objects.select_for_update()
    if ids is not None:
        marks = marks.filter(subscriber_id__in=ids)
    told = dict(marks.values_list("subscriber_id", "told"))
    changed, removed = _write_marks(wanted, told, now)
    counts["restricted"] = sum(kind == AccessMarkKind.REDIRECT for kind in changed.values())
    counts["denied"] = sum(kind == AccessMarkKind.DENIED for kind in changed.values())
    counts["restored"] = len(removed)
    counts["requests"] = queue_for_online(
        set(changed) | set(removed), lambda sid: _push(sid, changed=changed), "access state"
    )
    return counts
