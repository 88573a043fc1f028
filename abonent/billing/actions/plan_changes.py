"""Plan changes: an upgrade now with proration, a downgrade at the next period (DOMAIN.md, Plan change)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.catalog.models import ChargeMode, Plan
from abonent.core import audit, clock, events
from abonent.staff.permissions import Perm

from ..models import (
    Charge,
    ChargeKind,
    Subscription,
    SubscriptionEventKind,
)
from ..pricing.selectors import effective_for
from ..selectors import (
    PlanChangePreview,
    change_moment,
    charged_beyond,
    checked_preview,
    get_balance,
    new_span_end,
)
from .common import (
    ZERO,
    _catch_up,
    _check,
    _event,
    _event_charge,
    _forget_unbilled_days,
    _give_back,
    _local_midnight,
    _lock_subscription,
    _refuse_closed,
    behind,
    rolled_back,
)

# --- plan change ---------------------------------------------------------------------------------------


def preview_change_plan(
    subscription: Subscription, plan: Plan, *, force: bool = False, channel: str = "staff"
) -> PlanChangePreview:
    """What ``do_change_plan`` would do now, its catch-up included, with its refusals (``checked_preview``'s).

    When a missed run (or the hours before today's run, on the 1st) left periods unbilled, ``do_change_plan``
    charges them at the current plan's price first and then changes the plan of the subscription as that leaves
    it: on the 1st a downgrade is then scheduled for the next period, not done from today. The preview shows that
    (``catch_up``, the effective date, the balance after) by running the same catch-up in a savepoint that is
    rolled back, so it is what the action does, not a second account of it. Otherwise it is ``checked_preview``.
    """
    now = clock.now()
    today = timezone.localtime(now).date()
    if not behind(subscription, today):
        return checked_preview(subscription, plan, force=force, channel=channel, now=now)

    def caught_up_preview() -> PlanChangePreview:
        locked = _lock_subscription(subscription)
        _refuse_closed(locked.subscriber)
        balance_before = get_balance(locked.subscriber).balance
        written = Charge.objects.filter(subscription_id=locked.pk)
        marker = written.order_by("-pk").values_list("pk", flat=True).first() or 0
        locked = _catch_up(locked, today)
        caught_up = sum(written.filter(pk__gt=marker).values_list("amount", flat=True), ZERO)
        preview = checked_preview(locked, plan, force=force, channel=channel, now=now)
        return dataclasses.replace(preview, balance_before=balance_before, catch_up=caught_up)

    return rolled_back(caught_up_preview)


@transaction.atomic
def do_change_plan(
    subscription: Subscription,
    *,
    plan: Plan,
    acting_user,
    force: bool = False,
    channel: str = "staff",
    reason: str = "",
    at_period_end: bool = False,
) -> Subscription:
    """Upgrade now with proration; downgrade at the next period unless ``force``d (DOMAIN.md, Plan change).
    ``at_period_end``: whichever way, at the next period (scheduled like a downgrade; the bulk plan change)."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    _refuse_closed(subscription.subscriber)
    now = clock.now()
    # Periods a missed run left unbilled are charged at the old plan's price first: the new price is for the days
    # from the change on, not for days already used.
    subscription = _catch_up(subscription, timezone.localtime(now).date())
    preview = checked_preview(subscription, plan, force=force, channel=channel, now=now, at_period_end=at_period_end)
    old_plan = subscription.plan
    if not preview.immediate:
        subscription.pending_plan = plan
        subscription.pending_plan_from = preview.effective_on
        subscription.save(update_fields=["pending_plan", "pending_plan_from"])
        _event(
            subscription,
            SubscriptionEventKind.DOWNGRADE_SCHEDULED,
            acting_user=acting_user,
            from_plan=old_plan,
            to_plan=plan,
            effective_at=_local_midnight(preview.effective_on),
            reason=reason,
        )
        audit.record(
            actor=acting_user,
            action="billing.plan_change_scheduled",
            obj=subscription,
            subscriber_id=subscription.subscriber_id,
            after={"from": old_plan.name, "to": plan.name, "from_date": preview.effective_on},
            reason=reason,
        )
        events.emit("subscription.plan_change_scheduled", subscription_id=subscription.pk)
        return subscription

    if old_plan.charge_mode == ChargeMode.TIME:
        # Rating prices time online at the plan in force when it runs: the open sessions' time on the old plan,
        # up to now, is rated before the plan changes (docs/billing-time-rating.md).
        from ..rating.time import rate_time

        rate_time(now, subscriber_ids=[subscription.subscriber_id], cut_subscription=subscription.pk)
    today = timezone.localtime(now).date()
    event = _event(
        subscription,
        SubscriptionEventKind.PLAN_CHANGED,
        acting_user=acting_user,
        from_plan=old_plan,
        to_plan=plan,
        effective_at=now,
        reason=reason,
    )
    new_end = new_span_end(subscription, plan, today)
    if preview.credit:
        _give_back(
            subscription,
            event,
            charged_beyond(subscription, change_moment(old_plan, now)),
            today,
            max(subscription.next_charge_on, today + dt.timedelta(days=1)),
            service=old_plan.service,
            memo=_("Unused part of %(plan)s") % {"plan": old_plan.name},
            acting_user=acting_user,
        )
    new_price, effective = effective_for(subscription, plan, today)
    _event_charge(
        subscription,
        event,
        ChargeKind.PRORATION_CHARGE,
        preview.charge,
        today,
        new_end,
        service=plan.service,
        memo=_("%(plan)s for the rest of the period") % {"plan": plan.name},
        acting_user=acting_user,
        price=new_price,
        base_fee=None if effective.monthly_fee == new_price.monthly_fee else effective.monthly_fee,
    )
    subscription.plan = plan
    subscription.pending_plan = None
    subscription.pending_plan_from = None
    if preview.charge > 0 or preview.credit > 0:
        if new_end < subscription.next_charge_on:
            # The cursor goes back over periods charged and now credited: they are owed again, at the new plan,
            # under a new cycle (in the same one the new fees collided with the credited ones and were dropped).
            subscription.charge_cycle += 1
        subscription.next_charge_on = new_end
    _forget_unbilled_days(subscription, today)
    subscription.service = plan.service
    subscription.save(
        update_fields=["plan", "service", "pending_plan", "pending_plan_from", "next_charge_on", "charge_cycle"]
    )
    audit.record(
        actor=acting_user,
        action="billing.plan_changed",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        after={"from": old_plan.name, "to": plan.name, "credit": preview.credit, "charge": preview.charge},
        reason=reason,
    )
    # The RADIUS side turns this into a CoA: new speed without a reconnect.
    events.emit(
        "subscription.plan_changed",
        subscription_id=subscription.pk,
        subscriber_id=subscription.subscriber_id,
        from_plan_id=old_plan.pk,
        to_plan_id=plan.pk,
    )
    return subscription


@transaction.atomic
def do_cancel_pending_plan_change(subscription: Subscription, *, acting_user, reason: str = "") -> Subscription:
    """Keep the current plan after all: drop a downgrade scheduled for the next period."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    if subscription.pending_plan_id is None:
        raise ValidationError(_("No plan change is scheduled."), code="no_pending_change")
    pending = subscription.pending_plan
    subscription.pending_plan = None
    subscription.pending_plan_from = None
    subscription.save(update_fields=["pending_plan", "pending_plan_from"])
    audit.record(
        actor=acting_user,
        action="billing.plan_change_cancelled",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        before={"pending_plan": pending.name},
        reason=reason,
    )
    return subscription
