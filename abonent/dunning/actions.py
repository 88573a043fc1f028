"""Staff actions on access: an operator's block and its lifting, terminating access and reinstating it,
exemptions and dunning rules. Each is audited, re-evaluates the subscribers it touches, and is announced to the
NAS through ``dunning.states_changed`` like any other change of state.

Each takes the subscriber's state row first (inserting an ``active`` one if there is none, ``ON CONFLICT DO
NOTHING``: the sweep inserts with the same discipline, so whichever comes second finds the other's row) and only
then checks what it may do: a termination committed while a block waited is seen, never overwritten. The waits
have a deadline (``STAFF_LOCK_S``): a row held by a stuck transaction gives ``AccessBusy`` (the console says so,
the API answers 503 ``access_busy``), not a request hanging for as long as the other transaction does."""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events
from abonent.core.deadlines import db_deadline, is_deadline
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.models import Subscriber, SubscriberGroup

from .decide import decide
from .evaluation import evaluate
from .facts import Scope, decode, fetch_rows
from .models import (
    STAFF_STATES,
    AccessState,
    AccessStateKind,
    AccessTransition,
    DunningRule,
    Exemption,
    TransitionCause,
)
from .writing import CENT, notices_for, notify_many

logger = logging.getLogger(__name__)

State = AccessStateKind
MAX_EXEMPTION_DAYS = 5 * 366
MAX_REASON = 500
# Seconds a staff action waits for a row another transaction holds, and the most one of its statements may take.
STAFF_LOCK_S = 3
STAFF_STATEMENT_S = 10
# Invisible or reordering characters a reason must not carry: it is shown in the console, the API, the audit log
# and exports (C0 and C1 controls and DEL are Unicode's "Cc"; the bidi embeddings, overrides and isolates can make
# a reason read differently from what it says).
_BIDI = frozenset(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


class AccessBusy(Exception):
    """The subscriber's access state is held by another transaction past the staff deadline; nothing was
    written. Try again in a moment."""

    code = "access_busy"


@contextmanager
def _staff_transaction() -> Iterator[None]:
    """A transaction whose lock waits and statements have the staff deadlines; a deadline passed is ``AccessBusy``."""
    try:
        with transaction.atomic():
            db_deadline(lock=STAFF_LOCK_S, statement=STAFF_STATEMENT_S)
            yield
    except OperationalError as exc:
        if not is_deadline(exc):
            raise
        raise AccessBusy(
            _("Someone else is changing this subscriber's access right now; nothing was changed. Try again.")
        ) from exc


def _field_error(field: str, message: str, code: str) -> ValidationError:
    # The code on the field's own error: a dict's outer code is dropped, and API clients branch on field codes.
    return ValidationError({field: ValidationError(message, code=code)})


def _reason(reason: str, *, required: bool = True) -> str:
    reason = reason or ""
    # Before stripping: ``strip`` would quietly drop a trailing NEL (U+0085) or newline; none is accepted.
    if any(unicodedata.category(ch) == "Cc" or ch in _BIDI for ch in reason):
        raise _field_error("reason", _("Remove the control characters from the reason."), "control_characters")
    reason = reason.strip()
    if not reason and required:
        raise _field_error("reason", _("Give a reason."), "required")
    if len(reason) > MAX_REASON:
        raise _field_error("reason", _("At most 500 characters."), "max_length")
    return reason


def _locked_state(subscriber_id: int, now: dt.datetime) -> AccessState:
    """The subscriber's state row, locked for this transaction; an ``active`` one made if there was none (module
    docstring)."""
    AccessState.objects.bulk_create(
        [AccessState(subscriber_id=subscriber_id, state=State.ACTIVE, since=now, evaluated_at=now)],
        ignore_conflicts=True,
    )
    return AccessState.objects.select_for_update().get(subscriber_id=subscriber_id)


def _set_staff_state(
    subscriber: Subscriber, state: str, *, acting_user, reason: str, action: str, refuse
) -> AccessState:
    """``refuse(current_state)``: the error if the locked row's state forbids this change, else None. The debt
    episode (``restricted_since``) is kept: lifting the state later does not start it afresh."""
    now = clock.now()
    with _staff_transaction():
        current = _locked_state(subscriber.pk, now)
        error = refuse(current.state)
        if error is not None:
            raise error
        before = current.state
        current.state, current.since, current.reason, current.evaluated_at = state, now, reason, now
        current.save(update_fields=["state", "since", "reason", "evaluated_at"])
        AccessTransition.objects.create(
            subscriber=subscriber, from_state=before, to_state=state, at=now, cause=TransitionCause.STAFF,
            actor=acting_user, reason=reason,
        )  # fmt: skip
        audit.record(
            actor=acting_user, action=action, obj=current, subscriber_id=subscriber.pk,
            before={"state": before}, after={"state": state}, reason=reason,
        )  # fmt: skip
        events.emit("dunning.states_changed", subscriber_ids=[subscriber.pk])
    return current


def do_block_access(subscriber: Subscriber, *, acting_user, reason: str) -> AccessState:
    """An operator's block: access rejected whatever the balance, until lifted."""
    check_perm(acting_user, Perm.DUNNING_MANAGE)
    reason = _reason(reason)

    def refuse(current: str) -> ValidationError | None:
        if current == State.TERMINATED:
            return ValidationError(_("Access is terminated; reinstate it first."), code="terminated")
        if current == State.BLOCKED:
            return ValidationError(_("Access is already blocked."), code="already_blocked")
        return None

    return _set_staff_state(
        subscriber, State.BLOCKED, acting_user=acting_user, reason=reason, action="dunning.block", refuse=refuse
    )


def do_terminate_access(subscriber: Subscriber, *, acting_user, reason: str) -> AccessState:
    """Access ended by staff (a debtor the ISP has given up on): rejected until reinstated by an administrator."""
    check_perm(acting_user, Perm.DUNNING_TERMINATE)
    reason = _reason(reason)

    def refuse(current: str) -> ValidationError | None:
        if current == State.TERMINATED:
            return ValidationError(_("Access is already terminated."), code="already_terminated")
        return None

    return _set_staff_state(
        subscriber, State.TERMINATED, acting_user=acting_user, reason=reason, action="dunning.terminate",
        refuse=refuse,
    )  # fmt: skip


def _lift(subscriber: Subscriber, *, acting_user, reason: str, expected: str, action: str) -> AccessState:
    """Out of a staff state straight to the state the money says, in one transition: a suspended debtor blocked
    and unblocked is suspended again (its debt episode was kept), not restricted for another D days."""
    reason = _reason(reason)
    now, today = clock.now(), clock.today()
    with _staff_transaction():
        row = _locked_state(subscriber.pk, now)
        if row.state != expected:
            raise ValidationError(_("Access is not in that state any more."), code="state_changed")
        scope = Scope.now(today)
        facts = decode(fetch_rows(scope, today=today, ids=[subscriber.pk]), scope)
        row.state, row.since, row.reason, row.evaluated_at = State.ACTIVE, now, "", now
        available = notices = None
        if facts:  # a closed subscriber has none: active, as closing left it
            f = facts[0]
            f.state = State.ACTIVE  # decided as if the staff state were gone; ``restricted_since`` carries the debt
            v = decide(f, today=today, now=now, remind_days=scope.remind_days)
            row.state, row.restricted_since, row.runout_on, row.owed, row.exempt = (
                v.state, v.restricted_since, v.runout_on, v.owed, f.exempt,
            )  # fmt: skip
            if v.remind is not None:
                row.reminded_for, row.reminded_days = v.runout_on, v.remind
            available = f.available.quantize(CENT)
            notices = (f, v)
        else:
            row.restricted_since, row.owed = None, 0
        row.save()
        transition = AccessTransition.objects.create(
            subscriber=subscriber, from_state=expected, to_state=row.state, at=now, cause=TransitionCause.STAFF,
            available=available, actor=acting_user, reason=reason,
        )  # fmt: skip
        audit.record(
            actor=acting_user, action=action, obj=row, subscriber_id=subscriber.pk,
            before={"state": expected}, after={"state": row.state}, reason=reason,
        )  # fmt: skip
        if notices is not None:
            notify_many(notices_for(*notices, transition.pk))
        events.emit("dunning.states_changed", subscriber_ids=[subscriber.pk])
    row.refresh_from_db()
    return row


def do_unblock_access(subscriber: Subscriber, *, acting_user, reason: str) -> AccessState:
    check_perm(acting_user, Perm.DUNNING_MANAGE)
    return _lift(subscriber, acting_user=acting_user, reason=reason, expected=State.BLOCKED, action="dunning.unblock")


def do_reinstate_access(subscriber: Subscriber, *, acting_user, reason: str) -> AccessState:
    check_perm(acting_user, Perm.DUNNING_TERMINATE)
    return _lift(
        subscriber, acting_user=acting_user, reason=reason, expected=State.TERMINATED, action="dunning.reinstate"
    )


def release_closed(subscriber_id: int) -> None:
    """A closed subscriber leaves the money states (warned … suspended, frozen): it owes what the ledger says, but
    dunning has nothing more to do with it, and its row must not stay in the queue and RADIUS's sets for good (the
    sweep reads only open accounts). An operator's block or termination stays (reopening the account does not lift
    it); the queue leaves closed accounts out. The row is inserted if missing and locked, so a sweep that read the
    subscriber before the closing drops its write (``writing.lock_states`` skips closed subscribers)."""
    now = clock.now()
    with transaction.atomic():
        db_deadline(lock=5, statement=60)
        row = _locked_state(subscriber_id, now)
        if row.state in STAFF_STATES:
            return
        before = row.state
        row.state, row.restricted_since, row.runout_on, row.owed = State.ACTIVE, None, None, 0
        row.reminded_for = row.reminded_days = None
        row.evaluated_at = now
        if before != State.ACTIVE:
            row.since = now
            AccessTransition.objects.create(
                subscriber_id=subscriber_id, from_state=before, to_state=State.ACTIVE, at=now,
                cause=TransitionCause.CLOSED,
            )  # fmt: skip
        row.save()


def do_create_exemption(
    *,
    acting_user,
    reason: str,
    expires_on: dt.date,
    starts_on: dt.date | None = None,
    subscriber: Subscriber | None = None,
    group: SubscriberGroup | None = None,
) -> Exemption:
    """ "Never block" for a subscriber or a group until ``expires_on``; its subscribers are re-evaluated at once
    (a restricted hospital gets its access back now)."""
    check_perm(acting_user, Perm.DUNNING_MANAGE)
    if (subscriber is None) == (group is None):
        raise ValidationError(_("Choose a subscriber or a group."), code="scope")
    reason = _reason(reason)
    today = clock.today()
    starts_on = starts_on or today
    if expires_on < starts_on:
        raise _field_error("expires_on", _("The end is before the start."), "dates")
    if expires_on < today:
        raise _field_error("expires_on", _("The end is in the past."), "dates")
    if (expires_on - starts_on).days > MAX_EXEMPTION_DAYS:
        raise _field_error("expires_on", _("At most five years; renew it then."), "dates")
    with _staff_transaction():
        exemption = Exemption.objects.create(
            subscriber=subscriber, group=group, reason=reason, starts_on=starts_on, expires_on=expires_on,
            created_at=clock.now(), created_by=acting_user,
        )  # fmt: skip
        audit.record(
            actor=acting_user, action="dunning.exemption_create", obj=exemption,
            subscriber_id=subscriber.pk if subscriber else None,
            after={"group": group.pk if group else None, "starts_on": str(starts_on), "expires_on": str(expires_on)},
            reason=reason,
        )  # fmt: skip
    _reevaluate_scope(exemption, actor=acting_user)
    return exemption


def do_revoke_exemption(exemption: Exemption, *, acting_user, reason: str = "") -> Exemption:
    check_perm(acting_user, Perm.DUNNING_MANAGE)
    reason = _reason(reason, required=False)
    with _staff_transaction():
        exemption = Exemption.objects.select_for_update().get(pk=exemption.pk)
        if exemption.revoked_at is not None:
            raise ValidationError(_("The exemption is already revoked."), code="already_revoked")
        exemption.revoked_at, exemption.revoked_by = clock.now(), acting_user
        exemption.save(update_fields=["revoked_at", "revoked_by"])
        audit.record(
            actor=acting_user, action="dunning.exemption_revoke", obj=exemption,
            subscriber_id=exemption.subscriber_id, reason=reason,
        )  # fmt: skip
    _reevaluate_scope(exemption, actor=acting_user)
    return exemption


def _reevaluate_scope(exemption: Exemption, *, actor) -> None:
    """At once, after the exemption committed; a deadline passed here (a sweep writing the same rows) is left to the
    sweep, which reads the same exemption: the exemption itself is done."""
    if exemption.subscriber_id is not None:
        ids = [exemption.subscriber_id]
    else:
        ids = list(exemption.group.subscribers.values_list("pk", flat=True)) if exemption.group_id else []
    try:
        evaluate(ids, cause=TransitionCause.EXEMPTION, actor=actor)
    except OperationalError as exc:
        if not is_deadline(exc):
            raise
        logger.warning(
            "exemption %s: its subscribers not re-evaluated now (database busy); the sweep will", exemption.pk
        )


def do_save_rule(rule: DunningRule | None, *, acting_user, **fields) -> DunningRule:
    """Create or change a rule; the next sweep applies it to everyone it covers."""
    check_perm(acting_user, Perm.DUNNING_MANAGE)
    rule = rule or DunningRule()
    before = {"warn_days": rule.warn_days, "suspend_after_days": rule.suspend_after_days} if rule.pk else None
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.is_default = rule.group_id is None and rule.plan_id is None
    rule.full_clean()
    with transaction.atomic():
        rule.save()
        audit.record(
            actor=acting_user, action="dunning.rule_save", obj=rule, before=before,
            after={"warn_days": rule.warn_days, "suspend_after_days": rule.suspend_after_days},
        )  # fmt: skip
    return rule


@transaction.atomic
def do_delete_rule(rule: DunningRule, *, acting_user) -> None:
    """Remove a rule; its subscribers fall back to the next rule (plan, default, settings) at the next sweep."""
    check_perm(acting_user, Perm.DUNNING_MANAGE)
    rule = DunningRule.objects.select_for_update().get(pk=rule.pk)
    audit.record(
        actor=acting_user, action="dunning.rule_delete", obj=rule,
        before={"name": rule.name, "group": rule.group_id, "plan": rule.plan_id, "warn_days": rule.warn_days,
                "suspend_after_days": rule.suspend_after_days},
    )  # fmt: skip
    rule.delete()


__all__ = [
    "STAFF_STATES",
    "AccessBusy",
    "do_block_access",
    "do_create_exemption",
    "do_delete_rule",
    "do_reinstate_access",
    "do_revoke_exemption",
    "do_save_rule",
    "do_terminate_access",
    "do_unblock_access",
    "release_closed",
]
