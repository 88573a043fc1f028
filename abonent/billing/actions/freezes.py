"""Voluntary freezes: service and recurring fees paused within the plan's freeze policy."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events
from abonent.staff.permissions import Perm

from .. import ledger
from ..engine import BillingRun
from ..models import (
    ChargeKind,
    Freeze,
    FreezeStatus,
    Subscription,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from ..offers import check_freeze, freeze_days_used, freeze_fee
from .common import (
    _catch_up,
    _check,
    _credit_unused,
    _event,
    _event_charge,
    _forget_unbilled_days,
    _lock_subscription,
    _refuse_closed,
    _resume,
)
from .turbo import _end_turbo_with

__all__ = [
    "do_finish_due_freezes",
    "do_freeze_subscription",
    "do_unfreeze_subscription",
    "freeze_days_used",
    "freeze_fee",
]

# --- freeze ----------------------------------------------------------------------------------------------


@transaction.atomic
def do_freeze_subscription(
    subscription: Subscription, *, days: int, acting_user, starts_on: dt.date | None = None, reason: str = ""
) -> Freeze:
    """Pause service and fees for ``days`` from ``starts_on`` (today), within the plan's freeze policy."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    _refuse_closed(subscription.subscriber)
    today = clock.today()
    starts_on = starts_on or today
    # Periods a missed run left unbilled (and a freeze that has run out) are dealt with up to today first; the
    # freeze credits from today on.
    subscription = _catch_up(subscription, today)
    policy = subscription.plan.freeze_policy
    account = ledger.subscriber_account(subscription.subscriber_id, lock=True)
    # The rules the card and the portal check before offering a freeze (``offers``): one copy, the action's.
    fee = check_freeze(
        subscription, policy, days, starts_on=starts_on, today=today, available=account.balance + account.credit_limit
    )
    ends_on = starts_on + dt.timedelta(days=days)
    event = _event(subscription, SubscriptionEventKind.FROZEN, acting_user=acting_user, reason=reason)
    credit = _credit_unused(
        subscription, event, starts_on, memo=_("Unused period returned for the freeze"), acting_user=acting_user
    )
    _event_charge(
        subscription,
        event,
        ChargeKind.FREEZE_FEE,
        fee,
        starts_on,
        ends_on,
        service=subscription.plan.service,
        memo=_("Freeze for %(days)d days") % {"days": days},
        acting_user=acting_user,
    )
    _forget_unbilled_days(subscription, starts_on)
    freeze = Freeze.objects.create(
        subscription=subscription,
        policy=policy,
        event=event,
        starts_on=starts_on,
        ends_on=ends_on,
        created_at=clock.now(),
    )
    subscription.status = SubscriptionStatus.FROZEN
    subscription.save(update_fields=["status"])
    _end_turbo_with(subscription, clock.now())
    audit.record(
        actor=acting_user,
        action="billing.subscription_frozen",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        after={"from": starts_on, "until": ends_on, "fee": fee, "credit": credit},
        reason=reason,
    )
    events.emit("subscription.frozen", subscription_id=subscription.pk, subscriber_id=subscription.subscriber_id)
    return freeze


@transaction.atomic
def do_unfreeze_subscription(subscription: Subscription, *, acting_user, reason: str = "") -> Subscription:
    """End a freeze (early, or when it runs out): fees resume from today, the current period prorated."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    if subscription.status != SubscriptionStatus.FROZEN:
        raise ValidationError(_("The subscription is not frozen."), code="not_frozen")
    today = clock.today()
    resume_on = _resume(subscription, today, acting_user=acting_user, reason=reason)
    audit.record(
        actor=acting_user,
        action="billing.subscription_unfrozen",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        after={"resumes_on": resume_on},
        reason=reason,
    )
    BillingRun(today).charge_subscriptions([subscription.pk])
    subscription.refresh_from_db()
    events.emit("subscription.unfrozen", subscription_id=subscription.pk, subscriber_id=subscription.subscriber_id)
    return subscription


def do_finish_due_freezes() -> int:
    """Unfreeze every subscription whose freeze has run out (the daily job runs this before charging)."""
    due = Freeze.objects.filter(status=FreezeStatus.ACTIVE, ends_on__lte=clock.today()).values_list(
        "subscription_id", flat=True
    )
    count = 0
    for subscription in Subscription.objects.filter(pk__in=list(due), status=SubscriptionStatus.FROZEN):
        do_unfreeze_subscription(subscription, acting_user=None, reason=_("The freeze period ended."))
        count += 1
    return count
