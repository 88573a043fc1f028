"""Staff actions on access: an operator's block and its lifting, terminating access and reinstating it,
exemptions and dunning rules. Each is audited, re-evaluates the subscribers it touches, and is announced to the
NAS through ``dunning.states_changed`` like any other change of state."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.models import Subscriber, SubscriberGroup

from .evaluation import evaluate
from .models import (
    STAFF_STATES,
    AccessState,
    AccessStateKind,
    AccessTransition,
    DunningRule,
    Exemption,
    TransitionCause,
)

State = AccessStateKind
MAX_EXEMPTION_DAYS = 5 * 366
MAX_REASON = 500


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give a reason.")}, code="required")
    if len(reason) > MAX_REASON:
        raise ValidationError({"reason": _("At most 500 characters.")}, code="max_length")
    return reason


def _set_staff_state(subscriber: Subscriber, state: str, *, acting_user, reason: str, action: str) -> AccessState:
    now = clock.now()
    current = AccessState.objects.select_for_update().filter(subscriber=subscriber).first()
    before = current.state if current else State.ACTIVE
    if current is None:
        current = AccessState(subscriber=subscriber, since=now, evaluated_at=now)
    current.state, current.since, current.reason, current.evaluated_at = state, now, reason, now
    current.save()
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


@transaction.atomic
def do_block_access(subscriber: Subscriber, *, acting_user, reason: str) -> AccessState:
    """An operator's block: access rejected whatever the balance, until lifted."""
    check_perm(acting_user, Perm.DUNNING_MANAGE)
    reason = _reason(reason)
    current = AccessState.objects.filter(subscriber=subscriber).values_list("state", flat=True).first()
    if current == State.TERMINATED:
        raise ValidationError(_("Access is terminated; reinstate it first."), code="terminated")
    if current == State.BLOCKED:
        raise ValidationError(_("Access is already blocked."), code="already_blocked")
    return _set_staff_state(subscriber, State.BLOCKED, acting_user=acting_user, reason=reason, action="dunning.block")


@transaction.atomic
def do_terminate_access(subscriber: Subscriber, *, acting_user, reason: str) -> AccessState:
    """Access ended by staff (a debtor the ISP has given up on): rejected until reinstated by an administrator."""
    check_perm(acting_user, Perm.DUNNING_TERMINATE)
    reason = _reason(reason)
    current = AccessState.objects.filter(subscriber=subscriber).values_list("state", flat=True).first()
    if current == State.TERMINATED:
        raise ValidationError(_("Access is already terminated."), code="already_terminated")
    return _set_staff_state(
        subscriber, State.TERMINATED, acting_user=acting_user, reason=reason, action="dunning.terminate"
    )


def _lift(subscriber: Subscriber, *, acting_user, reason: str, expected: str, action: str) -> AccessState:
    reason = _reason(reason)
    now = clock.now()
    with transaction.atomic():
        state = AccessState.objects.select_for_update().filter(subscriber=subscriber).first()
        if state is None or state.state != expected:
            raise ValidationError(_("Access is not in that state any more."), code="state_changed")
        # Back to "active" as a starting point; the evaluation below puts it where the money says.
        state.state, state.since, state.reason, state.restricted_since, state.evaluated_at = (
            State.ACTIVE, now, "", None, now,
        )  # fmt: skip
        state.save()
        AccessTransition.objects.create(
            subscriber=subscriber, from_state=expected, to_state=State.ACTIVE, at=now, cause=TransitionCause.STAFF,
            actor=acting_user, reason=reason,
        )  # fmt: skip
        audit.record(
            actor=acting_user, action=action, obj=state, subscriber_id=subscriber.pk,
            before={"state": expected}, reason=reason,
        )  # fmt: skip
        events.emit("dunning.states_changed", subscriber_ids=[subscriber.pk])
        evaluate([subscriber.pk], cause=TransitionCause.STAFF, actor=acting_user)
    state.refresh_from_db()
    return state


def do_unblock_access(subscriber: Subscriber, *, acting_user, reason: str) -> AccessState:
    check_perm(acting_user, Perm.DUNNING_MANAGE)
    return _lift(subscriber, acting_user=acting_user, reason=reason, expected=State.BLOCKED, action="dunning.unblock")


def do_reinstate_access(subscriber: Subscriber, *, acting_user, reason: str) -> AccessState:
    check_perm(acting_user, Perm.DUNNING_TERMINATE)
    return _lift(
        subscriber, acting_user=acting_user, reason=reason, expected=State.TERMINATED, action="dunning.reinstate"
    )


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
        raise ValidationError({"expires_on": _("The end is before the start.")}, code="dates")
    if expires_on < today:
        raise ValidationError({"expires_on": _("The end is in the past.")}, code="dates")
    if (expires_on - starts_on).days > MAX_EXEMPTION_DAYS:
        raise ValidationError({"expires_on": _("At most five years; renew it then.")}, code="dates")
    with transaction.atomic():
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
    with transaction.atomic():
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
    if exemption.subscriber_id is not None:
        evaluate([exemption.subscriber_id], cause=TransitionCause.EXEMPTION, actor=actor)
        return
    ids = list(exemption.group.subscribers.values_list("pk", flat=True)) if exemption.group_id else []
    evaluate(ids, cause=TransitionCause.EXEMPTION, actor=actor)


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


__all__ = [
    "STAFF_STATES",
    "do_block_access",
    "do_create_exemption",
    "do_reinstate_access",
    "do_revoke_exemption",
    "do_save_rule",
    "do_terminate_access",
    "do_unblock_access",
]
