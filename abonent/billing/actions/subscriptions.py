"""Activation and termination of subscriptions."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from abonent.catalog.models import Plan
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core import audit, clock, events
from abonent.staff.permissions import Perm

from .. import ledger
from ..engine import BillingRun
from ..models import (
    ChargeKind,
    Subscription,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from .common import (
    _catch_up,
    _check,
    _credit_unused,
    _event,
    _event_charge,
    _finish_active_freeze,
    _forget_unbilled_days,
    _lock_subscription,
    _refund_unused_freeze_days,
)
from .turbo import _end_turbo_with

# --- activation and termination -------------------------------------------------------------------------


@transaction.atomic
def do_activate_subscription(
    subscriber,
    *,
    plan: Plan,
    acting_user,
    starts_on: dt.date | None = None,
    reason: str = "",
    allow_archived: bool = False,
) -> Subscription:
    """Put a subscriber on a plan from ``starts_on`` (default today) and charge what is due now.

    ``allow_archived``: the system keeping a promise made before the plan was archived (a sold Wi-Fi card of a
    series on it, vouchers.wifi); archiving closes a plan to new sign-ups, not to what was already paid for."""
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscriber)
    starts_on = starts_on or clock.today()
    if subscriber.is_closed:
        raise ValidationError(_("The account is closed."), code="subscriber_closed")
    if plan.is_archived and not (allow_archived and acting_user is None):
        raise ValidationError({"plan": ValidationError(_("This plan is archived."), code="plan_archived")})
    try:
        price = price_on(plan, starts_on)
    except NoPriceError as exc:
        raise ValidationError(
            {"plan": ValidationError(_("The plan has no price on this date."), code="plan_without_price")}
        ) from exc
    if (
        Subscription.objects.filter(subscriber=subscriber, plan__service=plan.service_id)
        .exclude(status=SubscriptionStatus.TERMINATED)
        .exists()
    ):
        raise ValidationError(
            _("The subscriber already has a subscription to this service: change its plan."), code="subscription_exists"
        )
    ledger.subscriber_account(subscriber.pk)
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(
                subscriber=subscriber,
                plan=plan,
                service=plan.service,
                started_on=starts_on,
                anchor_day=starts_on.day,
                next_charge_on=starts_on,
                created_at=clock.now(),
            )
    except IntegrityError as exc:
        # Another activation of the same service committed first (``billing_sub_one_live_per_service``): the
        # check above could not see it, the schema does.
        raise ValidationError(
            _("The subscriber already has a subscription to this service: change its plan."), code="subscription_exists"
        ) from exc
    event = _event(subscription, SubscriptionEventKind.ACTIVATED, acting_user=acting_user, to_plan=plan, reason=reason)
    if price.activation_fee > 0:
        _event_charge(
            subscription,
            event,
            ChargeKind.ACTIVATION,
            price.activation_fee,
            starts_on,
            starts_on,
            service=plan.service,
            memo=_("Activation: %(plan)s") % {"plan": plan.name},
            acting_user=acting_user,
            price=price,
        )
    audit.record(
        actor=acting_user,
        action="billing.subscription_activated",
        obj=subscription,
        subscriber_id=subscriber.pk,
        after={"plan": plan.name, "starts_on": starts_on},
        reason=reason,
    )
    BillingRun(clock.today()).charge_subscriptions([subscription.pk])
    subscription.refresh_from_db()  # the run advanced the cursor in SQL
    events.emit("subscription.activated", subscription_id=subscription.pk, subscriber_id=subscriber.pk)
    return subscription


@transaction.atomic
def do_terminate_subscription(
    subscription: Subscription, *, acting_user, reason: str, on: dt.date | None = None
) -> Subscription:
    """End a subscription from ``on`` (default today), crediting what was charged beyond it."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    if subscription.status == SubscriptionStatus.TERMINATED:
        raise ValidationError(_("The subscription has already ended."), code="already_terminated")
    today = clock.today()
    on = on or today
    subscription = _catch_up(subscription, min(on, today))
    event = _event(
        subscription,
        SubscriptionEventKind.TERMINATED,
        acting_user=acting_user,
        from_plan=subscription.plan,
        reason=reason,
    )
    credit = _credit_unused(
        subscription, event, on, memo=_("Unused period returned on termination"), acting_user=acting_user
    )
    freeze = _finish_active_freeze(subscription, on)
    _forget_unbilled_days(subscription, on)
    if freeze is not None and on < freeze.ends_on:  # the days of the freeze after the end are not used
        _refund_unused_freeze_days(subscription, freeze, max(on, freeze.starts_on), event, acting_user=acting_user)
    subscription.status = SubscriptionStatus.TERMINATED
    subscription.ended_on = on
    subscription.pending_plan = None
    subscription.pending_plan_from = None
    subscription.save(update_fields=["status", "ended_on", "pending_plan", "pending_plan_from"])
    _end_turbo_with(subscription, clock.now())
    audit.record(
        actor=acting_user,
        action="billing.subscription_terminated",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        after={"ended_on": on, "credit": credit},
        reason=reason,
    )
    events.emit("subscription.terminated", subscription_id=subscription.pk, subscriber_id=subscription.subscriber_id)
    return subscription


@events.on("subscriber.closed")
def _terminate_on_close(event, subscriber_id, **payload):
    for subscription in Subscription.objects.filter(subscriber_id=subscriber_id).exclude(
        status=SubscriptionStatus.TERMINATED
    ):
        do_terminate_subscription(subscription, acting_user=None, reason=_("The account was closed."))
