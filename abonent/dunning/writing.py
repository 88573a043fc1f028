"""Writing what a sweep or an evaluation decided: the changed access states, their transitions, the notices.

Concurrency: an evaluation after a payment and a sweep can read the same subscriber at once. The writer locks
the rows it is about to change and drops those whose state moved since it read them (the other writer won; the
next sweep re-reads them), so a transition is written once and its notice queued once (the notices are also
unique by key).
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

from .decide import MONTH_DAYS, Verdict
from .facts import ZERO, Facts, _money
from .models import AccessState, AccessStateKind, AccessTransition

State = AccessStateKind
CENT = Decimal("0.01")


def changed(f: Facts, v: Verdict) -> bool:
    current = f.state or State.ACTIVE
    if v.state != current or v.remind is not None or f.exempt != f.was_exempt:
        return True
    # The debt of a restricted or suspended subscriber grows with each day's fees: the queue shows it.
    return v.state in (State.RESTRICTED, State.SUSPENDED, State.FROZEN) and v.owed != _money(f.owed)


_NOTICE_FOR = {
    State.RESTRICTED: Event.RESTRICTED,
    State.SUSPENDED: Event.SUSPENDED,
}
_DEBT_STATES = frozenset({State.RESTRICTED, State.SUSPENDED})


def notices_for(f: Facts, v: Verdict, now: dt.datetime) -> list[Notice]:
    current = f.state or State.ACTIVE
    notices = []
    stamp = now.strftime("%Y%m%d%H%M")
    if v.state != current and v.state in _NOTICE_FOR:
        context = {"balance": _fmt(f.available), "amount_due": _fmt(v.owed)}
        notices.append(
            Notice(f.subscriber_id, _NOTICE_FOR[v.state], f"dunning:{v.state}:{f.subscriber_id}:{stamp}", context)
        )
    if current in _DEBT_STATES and v.state in (State.ACTIVE, State.WARNED):
        context = {"balance": _fmt(f.available)}
        notices.append(Notice(f.subscriber_id, Event.RESTORED, f"dunning:restored:{f.subscriber_id}:{stamp}", context))
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
        db_deadline(lock=5, statement=60)
        kept = _claim(pairs, now)
        if stale is not None and len(kept) < len(pairs):
            claimed = {f.subscriber_id for f, _v in kept}
            stale.extend(f.subscriber_id for f, _v in pairs if f.subscriber_id not in claimed)
        updates, transitions, notices, moved = [], [], [], []
        actor_id = actor.pk if actor is not None else None
        for f, v in kept:
            current = f.state or State.ACTIVE
            if f.state is not None:
                updates.append(_state_row(f, v, now, since=now if v.state != current else None))
            if v.state != current:
                moved.append(f.subscriber_id)
                transitions.append(
                    (f.subscriber_id, current, v.state, now, cause, f.available.quantize(CENT), actor_id, "")
                )
            notices.extend(notices_for(f, v, now))
        _update(updates)
        bulk.insert(transitions, model=AccessTransition, fields=TRANSITION_FIELDS)
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
    locked = _lock([f.subscriber_id for f, _v in pairs if f.state is not None])
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


def _lock(ids: list[int]) -> dict[int, str]:
    """Lock the state rows of ``ids`` for this transaction; their states now."""
    if not ids:
        return {}
    if connection.vendor != "postgresql":  # SQLite: one writer at a time already
        return dict(AccessState.objects.filter(subscriber_id__in=ids).values_list("subscriber_id", "state"))
    with bulk.server_cursor() as cursor:
        cursor.execute(
            "SELECT subscriber_id, state FROM dunning_accessstate WHERE subscriber_id = ANY(%s) "
            "ORDER BY subscriber_id FOR UPDATE",
            [ids],
        )
        return dict(cursor.fetchall())


_UPDATED = ["state", "restricted_since", "runout_on", "owed", "exempt", "reminded_for", "reminded_days", "evaluated_at"]


def _update(rows: list[tuple]) -> None:
    """The locked rows' new values, as an upsert that always finds its row (one statement per batch instead of
    ``bulk_update``'s CASE per column and row); ``since`` only where the state changed."""
    moved = [row for row in rows if row[SINCE] is not None]
    # ``since`` is not written for these (not in the update); the INSERT half needs a value.
    kept = [(*row[:SINCE], row[-1], *row[SINCE + 1 :]) for row in rows if row[SINCE] is None]
    for batch, fields in ((moved, [*_UPDATED, "since"]), (kept, _UPDATED)):
        assignments = ", ".join(f"{name} = EXCLUDED.{name}" for name in fields)
        bulk.insert(
            batch,
            model=AccessState,
            fields=STATE_FIELDS,
            on_conflict=f"ON CONFLICT (subscriber_id) DO UPDATE SET {assignments}",
        )
