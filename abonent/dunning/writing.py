"""Writing what a sweep or an evaluation decided: the changed access states, their transitions, the notices.

Concurrency: an evaluation after a payment and a sweep can read the same subscriber at once. The writer locks
the rows it is about to change and drops those whose state moved since it read them (the other writer won; the
sweep's next run re-reads them, an evaluation re-reads them at once under the lock: ``evaluation``), so a
transition is written once and its notice queued once. A subscriber without a row gets one by ``INSERT … ON
CONFLICT DO NOTHING``: a row another writer (or an operator's block) inserted meanwhile wins. As a last guard the
upsert itself never replaces a staff state (blocked, terminated) with a computed one, whatever the interleaving.

A notice is keyed by the transition it tells of (its id): each change of state is told once, a second
"restricted" a minute after the first is told again, and a write retried after a rollback queues nothing twice
(the notice rolled back with its transition).
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from django.db import connection, transaction

from abonent.core import bulk, events
from abonent.core.deadlines import db_deadline
from abonent.notifications.models import Event
from abonent.notifications.queueing import Notice, notify_many
from abonent.subscribers.models import SubscriberStatus

from .decide import MONTH_DAYS, Verdict
from .facts import ZERO, Facts, _money
from .models import STAFF_STATES, AccessState, AccessStateKind, AccessTransition

State = AccessStateKind
CENT = Decimal("0.01")


def changed(f: Facts, v: Verdict) -> bool:
    current = f.state or State.ACTIVE
    if v.state != current or v.remind is not None or f.exempt != f.was_exempt:
        return True
    # A debt episode ended (paid while frozen or blocked) or carried: its start decides the days to suspension.
    if v.restricted_since != f.restricted_since:
        return True
    # The debt of a restricted or suspended subscriber grows with each day's fees: the queue shows it.
    return v.state in (State.RESTRICTED, State.SUSPENDED, State.FROZEN) and v.owed != _money(f.owed)


_NOTICE_FOR = {
    State.RESTRICTED: Event.RESTRICTED,
    State.SUSPENDED: Event.SUSPENDED,
}
_DEBT_STATES = frozenset({State.RESTRICTED, State.SUSPENDED})


def notices_for(f: Facts, v: Verdict, transition_id: int | None) -> list[Notice]:
    """What to tell the subscriber of this verdict; ``transition_id``: the transition just written, if the state
    changed (the key of its notice)."""
    current = f.state or State.ACTIVE
    notices = []
    if transition_id is not None and v.state in _NOTICE_FOR:
        context = {"balance": _fmt(f.available), "amount_due": _fmt(v.owed)}
        key = f"dunning:{v.state}:{f.subscriber_id}:t{transition_id}"
        notices.append(Notice(f.subscriber_id, _NOTICE_FOR[v.state], key, context))
    if transition_id is not None and current in _DEBT_STATES and v.state in (State.ACTIVE, State.WARNED):
        context = {"balance": _fmt(f.available)}
        key = f"dunning:restored:{f.subscriber_id}:t{transition_id}"
        notices.append(Notice(f.subscriber_id, Event.RESTORED, key, context))
    if v.remind is not None:
        amount_due = max(f.monthly_due + f.daily_rate * MONTH_DAYS - max(f.available, ZERO), ZERO)
        context = {
            "balance": _fmt(f.available),
            "days_left": v.days_left,
            "runout_on": v.runout_on.strftime("%d.%m.%Y") if v.runout_on else "",
            "amount_due": _fmt(amount_due.quantize(Decimal("0.01"))),
        }
        key = f"runout:{f.subscriber_id}:{v.runout_on.isoformat()}:{v.remind}"
        notices.append(Notice(f.subscriber_id, Event.RUNOUT_SOON, key, context))
    return notices


def _fmt(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01')):.2f}".replace(".", ",")


def write_changes(
    pairs: list[tuple[Facts, Verdict]],
    *,
    cause: str,
    now: dt.datetime,
    actor=None,
    stale: list[int] | None = None,
    timings: dict[str, float] | None = None,
) -> list[int]:
    """Write the changes of one chunk in one transaction; returns the subscribers whose state changed. Those
    dropped because another writer changed them first are added to ``stale`` (module docstring)."""
    if not pairs:
        return []
    with transaction.atomic():
        # A staff action calling this keeps its own, shorter deadline.
        db_deadline(lock=5, statement=60, unless_set=True)
        kept = _claim(pairs, now)
        if stale is not None and len(kept) < len(pairs):
            claimed = {f.subscriber_id for f, _v in kept}
            stale.extend(f.subscriber_id for f, _v in pairs if f.subscriber_id not in claimed)
        return _write(kept, cause=cause, now=now, actor=actor, timings=timings)


def _write(kept: list[tuple[Facts, Verdict]], *, cause: str, now: dt.datetime, actor, timings) -> list[int]:
    """The claimed pairs' rows, transitions and notices, in the caller's transaction."""
    updates = []
    for f, v in kept:
        if f.state is not None:
            updates.append(_state_row(f, v, now, since=now if v.state != f.state else None))
    written = _update(updates)
    # A change the upsert's guard refused (never, while the locks hold) gets no transition and no notice.
    kept = [(f, v) for f, v in kept if f.state is None or v.state == f.state or f.subscriber_id in written]
    actor_id = actor.pk if actor is not None else None
    transitions, moved = [], []
    for f, v in kept:
        current = f.state or State.ACTIVE
        if v.state != current:
            moved.append(f.subscriber_id)
            transitions.append(
                (f.subscriber_id, current, v.state, now, cause, f.available.quantize(CENT), actor_id, "")
            )
    # One transition per subscriber in a write: its id by subscriber (RETURNING gives no order to rely on).
    created = bulk.insert(transitions, model=AccessTransition, fields=TRANSITION_FIELDS, returning="subscriber_id, id")
    transition_of = dict(created)
    notices = []
    for f, v in kept:
        notices.extend(notices_for(f, v, transition_of.get(f.subscriber_id)))
    started = time.perf_counter()
    notify_many(notices)
    if timings is not None:
        timings["notify"] = timings.get("notify", 0.0) + time.perf_counter() - started
    if moved:
        events.emit("dunning.states_changed", subscriber_ids=moved)
    return moved


# The columns written, in the order of the tuples below (``bulk.insert``).
STATE_FIELDS = [
    "subscriber",
    "state",
    "since",
    "restricted_since",
    "runout_on",
    "owed",
    "exempt",
    "reminded_for",
    "reminded_days",
    "reason",
    "evaluated_at",
]
SINCE = STATE_FIELDS.index("since")
TRANSITION_FIELDS = ["subscriber", "from_state", "to_state", "at", "cause", "available", "actor", "reason"]


def _state_row(f: Facts, v: Verdict, now: dt.datetime, *, since: dt.datetime | None) -> tuple:
    """An ``AccessState`` row as a tuple of ``STATE_FIELDS``; ``since`` None: the state did not change."""
    reminded = v.remind is not None
    return (
        f.subscriber_id,
        v.state,
        since,
        v.restricted_since,
        v.runout_on,
        v.owed,
        f.exempt,
        v.runout_on if reminded else f.reminded_for,
        v.remind if reminded else f.reminded_days,
        "",
        now,
    )


def _claim(pairs: list[tuple[Facts, Verdict]], now: dt.datetime) -> list[tuple[Facts, Verdict]]:
    """The pairs this writer may write: the rows it read are locked (in id order, so two writers never wait on
    each other in a circle) and still in the state it read; a subscriber without a row gets its new row here,
    unless another writer inserted one first."""
    locked = lock_states([f.subscriber_id for f, _v in pairs if f.state is not None])
    fresh = [_state_row(f, v, now, since=now) for f, v in pairs if f.state is None]
    # INSERT … ON CONFLICT DO NOTHING RETURNING: the ids whose row this writer created. A row another writer
    # created meanwhile is theirs: this one decided from older facts.
    created = bulk.insert(
        fresh,
        model=AccessState,
        fields=STATE_FIELDS,
        on_conflict="ON CONFLICT (subscriber_id) DO NOTHING",
        returning="subscriber_id",
    )
    inserted = {sid for (sid,) in created}
    kept = []
    for f, v in pairs:
        if f.state is None:
            if f.subscriber_id in inserted:
                kept.append((f, v))
        elif locked.get(f.subscriber_id) == f.state:
            kept.append((f, v))
    return kept


def lock_states(ids: list[int]) -> dict[int, str]:
    """Lock the state rows of ``ids`` for this transaction; their states now. A closed subscriber's row is left out
    (neither locked nor returned: a writer then drops it): closing released it from dunning
    (``actions.release_closed``), and a sweep that read it before the closing must not write it back."""
    if not ids:
        return {}
    if connection.vendor != "postgresql":  # SQLite: one writer at a time already
        rows = AccessState.objects.filter(subscriber_id__in=ids).exclude(subscriber__status=SubscriberStatus.CLOSED)
        return dict(rows.values_list("subscriber_id", "state"))
    with bulk.server_cursor() as cursor:
        cursor.execute(
            "SELECT st.subscriber_id, st.state FROM dunning_accessstate st "
            "JOIN subscribers_subscriber sub ON sub.id = st.subscriber_id "
            "WHERE st.subscriber_id = ANY(%s) AND sub.status <> 'closed' "
            "ORDER BY st.subscriber_id FOR UPDATE OF st",
            [ids],
        )
        return dict(cursor.fetchall())


_UPDATED = ["state", "restricted_since", "runout_on", "owed", "exempt", "reminded_for", "reminded_days", "evaluated_at"]


def _update(rows: list[tuple]) -> set[int]:
    """The locked rows' new values, as an upsert that always finds its row (one statement per batch instead of
    ``bulk_update``'s CASE per column and row); ``since`` only where the state changed. Returns the subscribers
    whose state change was written (all of them, unless the guard below refused one)."""
    moved = [row for row in rows if row[SINCE] is not None]
    # ``since`` is not written for these (not in the update); the INSERT half needs a value.
    kept = [(*row[:SINCE], row[-1], *row[SINCE + 1 :]) for row in rows if row[SINCE] is None]
    # The guard (module docstring): a computed state never lands on a staff state; a staff state kept as it is
    # (its debt, its exemption flag) still is written.
    staff = ", ".join(f"'{s.value}'" for s in sorted(STAFF_STATES))
    guard = f"WHERE dunning_accessstate.state NOT IN ({staff}) OR dunning_accessstate.state = EXCLUDED.state"
    written: set[int] = set()
    for batch, fields in ((moved, [*_UPDATED, "since"]), (kept, _UPDATED)):
        assignments = ", ".join(f"{name} = EXCLUDED.{name}" for name in fields)
        rows = bulk.insert(
            batch,
            model=AccessState,
            fields=STATE_FIELDS,
            on_conflict=f"ON CONFLICT (subscriber_id) DO UPDATE SET {assignments} {guard}",
            returning="subscriber_id" if fields is not _UPDATED else None,
        )
        written.update(sid for (sid,) in rows)
    return written
