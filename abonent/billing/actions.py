"""Writes of billing. Each action is atomic, locks what it checks, writes the ledger and its business
record together, audits, and emits its event after commit. ``acting_user=None`` means the system itself
(the scheduler, an event handler); views and the API always pass the person."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from abonent.catalog.models import Plan, Service, Turbo
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core import audit, clock, events
from abonent.core.money import format_money, quantize, to_decimal
from abonent.staff.permissions import Perm, check_branch, check_perm

from . import ledger
from .engine import BillingRun
from .models import (
    Charge,
    ChargeKind,
    Freeze,
    FreezeStatus,
    LedgerAccount,
    OnlineDay,
    PromisedPayment,
    PromisedPaymentStatus,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
    TransactionKind,
    TurboActivation,
    TurboStatus,
)
from .selectors import checked_preview, new_span_end, promised_payment_policy, unused_credit

ZERO = Decimal("0.00")


def _check(acting_user, perm: Perm, subscriber=None) -> None:
    if acting_user is None:
        return  # the system
    check_perm(acting_user, perm)
    if subscriber is not None:
        check_branch(acting_user, subscriber.branch_id)


def _positive_amount(value, field: str = "amount") -> Decimal:
    try:
        amount = quantize(to_decimal(value))
    except ValueError as exc:
        raise ValidationError({field: ValidationError(str(exc), code="amount_invalid")}) from exc
    if amount <= 0:
        raise ValidationError(
            {field: ValidationError(_("The amount must be greater than zero."), code="amount_not_positive")}
        )
    return amount


def _lock_subscription(subscription: Subscription) -> Subscription:
    return (
        Subscription.objects.select_for_update()
        .select_related("plan", "plan__service", "subscriber")
        .get(pk=subscription.pk)
    )


def _event(subscription, kind, *, acting_user, effective_at=None, from_plan=None, to_plan=None, reason=""):
    return SubscriptionEvent.objects.create(
        subscription=subscription,
        kind=kind,
        effective_at=effective_at or clock.now(),
        from_plan=from_plan,
        to_plan=to_plan,
        acting_user=acting_user,
        reason=reason[:500],
        created_at=clock.now(),
    )


def _event_charge(
    subscription,
    event,
    kind: str,
    amount: Decimal,
    start: dt.date,
    end: dt.date,
    *,
    service: Service,
    memo: str,
    acting_user,
    price=None,
) -> Charge | None:
    """A charge (+) or credit (−) caused by an event, with its ledger transaction, keyed by the event."""
    amount = quantize(amount)
    if amount == 0:
        return None
    account = ledger.subscriber_account(subscription.subscriber_id)
    revenue = ledger.revenue_account(service)
    tx, _created = ledger.post(
        key=f"event:{event.pk}:{kind}",
        kind=_TX_KIND[event.kind],
        effective_date=start,
        legs=[(account.pk, -amount), (revenue.pk, amount)],
        subscriber_id=subscription.subscriber_id,
        acting_user=acting_user,
        memo=memo,
    )
    return Charge.objects.create(
        subscription=subscription,
        kind=kind,
        period_start=start,
        period_end=max(end, start + dt.timedelta(days=1)),
        amount=amount,
        price=price,
        event=event,
        transaction=tx,
    )


_TX_KIND = {
    SubscriptionEventKind.ACTIVATED: TransactionKind.ACTIVATION,
    SubscriptionEventKind.PLAN_CHANGED: TransactionKind.PLAN_CHANGE,
    SubscriptionEventKind.FROZEN: TransactionKind.FREEZE,
    SubscriptionEventKind.UNFROZEN: TransactionKind.FREEZE,
    SubscriptionEventKind.TERMINATED: TransactionKind.PLAN_CHANGE,
    SubscriptionEventKind.TURBO: TransactionKind.TURBO,
}


# --- activation and termination -------------------------------------------------------------------------


@transaction.atomic
def do_activate_subscription(
    subscriber, *, plan: Plan, acting_user, starts_on: dt.date | None = None, reason: str = ""
) -> Subscription:
    """Put a subscriber on a plan from ``starts_on`` (default today) and charge what is due now."""
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscriber)
    starts_on = starts_on or clock.today()
    if subscriber.is_closed:
        raise ValidationError(_("The account is closed."), code="subscriber_closed")
    if plan.is_archived:
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
    subscription = Subscription.objects.create(
        subscriber=subscriber,
        plan=plan,
        started_on=starts_on,
        anchor_day=starts_on.day,
        next_charge_on=starts_on,
        created_at=clock.now(),
    )
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
    on = on or clock.today()
    event = _event(
        subscription,
        SubscriptionEventKind.TERMINATED,
        acting_user=acting_user,
        from_plan=subscription.plan,
        reason=reason,
    )
    credit = unused_credit(subscription, on)
    _event_charge(
        subscription,
        event,
        ChargeKind.PRORATION_CREDIT,
        -credit,
        on,
        subscription.next_charge_on,
        service=subscription.plan.service,
        memo=_("Unused period returned on termination"),
        acting_user=acting_user,
    )
    _finish_active_freeze(subscription, on)
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


# --- plan change ---------------------------------------------------------------------------------------


@transaction.atomic
def do_change_plan(
    subscription: Subscription,
    *,
    plan: Plan,
    acting_user,
    force: bool = False,
    channel: str = "staff",
    reason: str = "",
) -> Subscription:
    """Upgrade now with proration; downgrade at the next period unless ``force``d (DOMAIN.md, Plan change)."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    now = clock.now()
    preview = checked_preview(subscription, plan, force=force, channel=channel, now=now)
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
    _event_charge(
        subscription,
        event,
        ChargeKind.PRORATION_CREDIT,
        -preview.credit,
        today,
        max(subscription.next_charge_on, today + dt.timedelta(days=1)),
        service=old_plan.service,
        memo=_("Unused part of %(plan)s") % {"plan": old_plan.name},
        acting_user=acting_user,
    )
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
        price=price_on(plan, today),
    )
    subscription.plan = plan
    subscription.pending_plan = None
    subscription.pending_plan_from = None
    if preview.charge > 0 or preview.credit > 0:
        subscription.next_charge_on = new_end
    subscription.save(update_fields=["plan", "pending_plan", "pending_plan_from", "next_charge_on"])
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


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


# --- freeze ----------------------------------------------------------------------------------------------


def freeze_days_used(subscription: Subscription, year: int) -> int:
    """Frozen days of a calendar year, counting a freeze ended early only up to its end."""
    used = 0
    for freeze in Freeze.objects.filter(
        subscription__subscriber_id=subscription.subscriber_id,
        starts_on__lt=dt.date(year + 1, 1, 1),
        ends_on__gt=dt.date(year, 1, 1),
    ):
        end = freeze.ended_early_on or freeze.ends_on
        start = max(freeze.starts_on, dt.date(year, 1, 1))
        used += max((min(end, dt.date(year + 1, 1, 1)) - start).days, 0)
    return used


def freeze_fee(policy, days: int) -> Decimal:
    return quantize(policy.activation_fee + policy.fee_per_day * days + policy.fee_per_month * math.ceil(days / 30))


@transaction.atomic
def do_freeze_subscription(
    subscription: Subscription, *, days: int, acting_user, starts_on: dt.date | None = None, reason: str = ""
) -> Freeze:
    """Pause service and fees for ``days`` from ``starts_on`` (today), within the plan's freeze policy."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    today = clock.today()
    starts_on = starts_on or today
    policy = subscription.plan.freeze_policy
    if policy is None:
        raise ValidationError(_("This plan cannot be frozen."), code="freeze_not_allowed")
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ValidationError(_("Only an active subscription can be frozen."), code="subscription_not_active")
    if starts_on != today:
        raise ValidationError({"starts_on": ValidationError(_("A freeze starts today."), code="freeze_start")})
    if not policy.min_days <= days <= policy.max_days:
        raise ValidationError(
            {
                "days": ValidationError(
                    _("A freeze lasts from %(min)d to %(max)d days.")
                    % {"min": policy.min_days, "max": policy.max_days},
                    code="freeze_days_out_of_range",
                )
            }
        )
    year = starts_on.year
    used = freeze_days_used(subscription, year)
    days_this_year = min(days, (dt.date(year + 1, 1, 1) - starts_on).days)
    if used + days_this_year > policy.yearly_quota_days:
        raise ValidationError(
            {
                "days": ValidationError(
                    _("Only %(left)d freeze days are left this year.")
                    % {"left": max(policy.yearly_quota_days - used, 0)},
                    code="freeze_quota_exceeded",
                )
            }
        )
    fee = freeze_fee(policy, days)
    account = ledger.subscriber_account(subscription.subscriber_id, lock=True)
    if fee > 0 and account.balance + account.credit_limit < fee:
        raise ValidationError(
            _("The balance does not cover the freeze fee of %(fee)s.") % {"fee": format_money(fee)},
            code="insufficient_funds",
        )
    ends_on = starts_on + dt.timedelta(days=days)
    event = _event(subscription, SubscriptionEventKind.FROZEN, acting_user=acting_user, reason=reason)
    credit = unused_credit(subscription, starts_on)
    _event_charge(
        subscription,
        event,
        ChargeKind.PRORATION_CREDIT,
        -credit,
        starts_on,
        subscription.next_charge_on,
        service=subscription.plan.service,
        memo=_("Unused period returned for the freeze"),
        acting_user=acting_user,
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
    freeze = Freeze.objects.create(
        subscription=subscription, policy=policy, starts_on=starts_on, ends_on=ends_on, created_at=clock.now()
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


def _finish_active_freeze(subscription, on: dt.date) -> Freeze | None:
    freeze = Freeze.objects.filter(subscription=subscription, status=FreezeStatus.ACTIVE).first()
    if freeze is None:
        return None
    freeze.status = FreezeStatus.FINISHED
    if on < freeze.ends_on:
        freeze.ended_early_on = on
    freeze.save(update_fields=["status", "ended_early_on"])
    return freeze


@transaction.atomic
def do_unfreeze_subscription(subscription: Subscription, *, acting_user, reason: str = "") -> Subscription:
    """End a freeze (early, or when it runs out): fees resume from today, the current period prorated."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    if subscription.status != SubscriptionStatus.FROZEN:
        raise ValidationError(_("The subscription is not frozen."), code="not_frozen")
    today = clock.today()
    freeze = _finish_active_freeze(subscription, today)
    resume_on = min(today, freeze.ends_on) if freeze else today
    _event(subscription, SubscriptionEventKind.UNFROZEN, acting_user=acting_user, reason=reason)
    subscription.status = SubscriptionStatus.ACTIVE
    # The engine charges from the cursor, prorating a period that starts mid-way.
    subscription.next_charge_on = resume_on
    subscription.save(update_fields=["status", "next_charge_on"])
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


# --- turbo ------------------------------------------------------------------------------------------------


def _moment(value: dt.datetime) -> str:
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


@transaction.atomic
def do_activate_turbo(subscription: Subscription, *, turbo: Turbo, acting_user, reason: str = "") -> TurboActivation:
    """Buy one of the plan's turbo options: charged now from the balance, the speed on from now for its hours.

    The subscription's row lock serialises purchases for it, so two at once cannot both pass the checks; the
    charge is keyed by the purchase's event and the schema allows one active turbo per subscription.
    """
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ValidationError(_("Turbo is only for an active subscription."), code="subscription_not_active")
    if not turbo.is_active or not subscription.plan.turbos.filter(pk=turbo.pk).exists():
        raise ValidationError(
            {"turbo": ValidationError(_("The plan does not offer this turbo."), code="turbo_not_offered")}
        )
    now = clock.now()
    current = TurboActivation.objects.filter(subscription=subscription, status=TurboStatus.ACTIVE).first()
    if current is not None and current.ends_at > now:
        raise ValidationError(
            _("A turbo is already on (until %(time)s).") % {"time": _moment(current.ends_at)},
            code="turbo_already_on",
        )
    _end_turbo_with(subscription, now)  # one that has run out, before the worker got to it
    price = quantize(turbo.price)
    account = ledger.subscriber_account(subscription.subscriber_id, lock=True)
    if price > 0 and account.balance + account.credit_limit < price:
        raise ValidationError(
            _("The balance does not cover the turbo's price of %(price)s.") % {"price": format_money(price)},
            code="insufficient_funds",
        )
    ends_at = now + dt.timedelta(hours=turbo.hours)
    event = _event(subscription, SubscriptionEventKind.TURBO, acting_user=acting_user, effective_at=now, reason=reason)
    _event_charge(
        subscription,
        event,
        ChargeKind.TURBO,
        price,
        clock.today(),
        timezone.localdate(ends_at),
        service=subscription.plan.service,
        memo=_("Turbo “%(name)s” until %(time)s") % {"name": turbo.name, "time": _moment(ends_at)},
        acting_user=acting_user,
    )
    activation = TurboActivation.objects.create(
        subscription=subscription,
        turbo=turbo,
        event=event,
        download_kbps=turbo.download_kbps,
        upload_kbps=turbo.upload_kbps,
        price=price,
        starts_at=now,
        ends_at=ends_at,
    )
    audit.record(
        actor=acting_user,
        action="billing.turbo_activated",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        after={"turbo": turbo.name, "until": ends_at, "amount": price},
        reason=reason,
    )
    events.emit("subscription.turbo_started", subscription_id=subscription.pk, subscriber_id=subscription.subscriber_id)
    if price > 0:
        events.emit("billing.balance_changed", subscriber_id=subscription.subscriber_id)
    return activation


def _end_turbo(activation: TurboActivation, *, status: str, at: dt.datetime) -> bool:
    """Mark the turbo ended (once: a second call, or the worker racing a staff click, changes nothing) and
    have the NAS told after commit."""
    ended = TurboActivation.objects.filter(pk=activation.pk, status=TurboStatus.ACTIVE).update(
        status=status, ended_at=at
    )
    if ended:
        events.emit(
            "subscription.turbo_ended",
            subscription_id=activation.subscription_id,
            subscriber_id=activation.subscription.subscriber_id,
        )
    return bool(ended)


@transaction.atomic
def do_end_turbo(subscription: Subscription, *, acting_user, reason: str = "") -> TurboActivation:
    """Staff end the subscription's turbo before its time (a complaint, a mistake); nothing is refunded here:
    a refund is a balance adjustment with its own reason."""
    subscription = _lock_subscription(subscription)
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscription.subscriber)
    now = clock.now()
    activation = TurboActivation.objects.filter(
        subscription=subscription, status=TurboStatus.ACTIVE, ends_at__gt=now
    ).first()
    if activation is None:
        raise ValidationError(_("No turbo is on."), code="turbo_not_active")
    activation.subscription = subscription
    _end_turbo(activation, status=TurboStatus.ENDED_EARLY, at=now)
    audit.record(
        actor=acting_user,
        action="billing.turbo_ended",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        after={"turbo": activation.turbo.name, "ended_on": now},
        reason=reason,
    )
    activation.refresh_from_db()
    return activation


def _end_turbo_with(subscription: Subscription, now: dt.datetime) -> None:
    """End the subscription's turbo as of ``now``: finished if its time was up, else ended early (a freeze or a
    termination: no service, no boost, and no refund of it)."""
    for activation in TurboActivation.objects.filter(subscription=subscription, status=TurboStatus.ACTIVE):
        activation.subscription = subscription
        if activation.ends_at <= now:
            _end_turbo(activation, status=TurboStatus.FINISHED, at=activation.ends_at)
        else:
            _end_turbo(activation, status=TurboStatus.ENDED_EARLY, at=now)


def do_finish_due_turbos() -> int:
    """Finish every turbo whose time is up; each finish queues the CoA that gives the plan's speed back."""
    count = 0
    now = clock.now()
    due = TurboActivation.objects.filter(status=TurboStatus.ACTIVE, ends_at__lte=now).select_related("subscription")
    for activation in due.order_by("ends_at")[:5000]:
        with transaction.atomic():
            count += _end_turbo(activation, status=TurboStatus.FINISHED, at=activation.ends_at)
    return count


# --- money moved by hand, payments, promised payments ----------------------------------------------------


def _post_and_record(
    subscriber,
    *,
    key: str,
    kind: str,
    legs,
    memo: str,
    acting_user,
    audit_action: str,
    after: dict,
    reason: str = "",
    effective_date: dt.date | None = None,
):
    """Post a transaction for a subscriber; on its first write (not a retry) audit it and announce the change."""
    tx, created = ledger.post(
        key=key,
        kind=kind,
        effective_date=effective_date or clock.today(),
        legs=legs,
        subscriber_id=subscriber.pk,
        acting_user=acting_user,
        memo=memo,
    )
    if created:
        audit.record(
            actor=acting_user, action=audit_action, obj=tx, subscriber_id=subscriber.pk, after=after, reason=reason
        )
        events.emit("billing.balance_changed", subscriber_id=subscriber.pk)
    return tx, created


@transaction.atomic
def do_adjust_balance(subscriber, *, amount, reason: str, acting_user, key: str | None = None):
    """A manual correction (+ adds to the balance, − takes away), always with a reason."""
    _check(acting_user, Perm.BILLING_ADJUST, subscriber)
    try:
        amount = quantize(to_decimal(amount))
    except ValueError as exc:
        raise ValidationError({"amount": ValidationError(str(exc), code="amount_invalid")}) from exc
    if amount == 0:
        raise ValidationError({"amount": ValidationError(_("The amount must not be zero."), code="amount_zero")})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Give a reason for the adjustment."), code="required")})
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    tx, _created = _post_and_record(
        subscriber,
        key=key or f"adjustment:{uuid.uuid4()}",
        kind=TransactionKind.ADJUSTMENT,
        legs=[(account.pk, amount), (ledger.system_account("adjustments").pk, -amount)],
        memo=reason,
        acting_user=acting_user,
        audit_action="billing.balance_adjusted",
        after={"amount": amount},
        reason=reason,
    )
    return tx


@transaction.atomic
def do_charge_one_off(
    subscriber, *, service: Service, acting_user, amount=None, reason: str = "", key: str | None = None
):
    """Charge a one-off service (installation, cable): its list price unless an amount is given."""
    _check(acting_user, Perm.BILLING_ADJUST, subscriber)
    amount = _positive_amount(amount if amount is not None else (service.one_off_price or 0))
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    revenue = ledger.revenue_account(service)
    tx, _created = _post_and_record(
        subscriber,
        key=key or f"one_off:{uuid.uuid4()}",
        kind=TransactionKind.ONE_OFF,
        legs=[(account.pk, -amount), (revenue.pk, amount)],
        memo=f"{service.name}. {reason}".strip(". "),
        acting_user=acting_user,
        audit_action="billing.one_off_charged",
        after={"service": service.name, "amount": amount},
        reason=reason,
    )
    return tx


@transaction.atomic
def do_set_credit_limit(subscriber, *, amount, reason: str, acting_user) -> LedgerAccount:
    _check(acting_user, Perm.BILLING_ADJUST, subscriber)
    try:
        amount = quantize(to_decimal(amount))
    except ValueError as exc:
        raise ValidationError({"amount": ValidationError(str(exc), code="amount_invalid")}) from exc
    if amount < 0:
        raise ValidationError(
            {"amount": ValidationError(_("A credit limit cannot be negative."), code="amount_negative")}
        )
    ledger.subscriber_account(subscriber.pk)
    account = LedgerAccount.objects.select_for_update().get(subscriber_id=subscriber.pk)
    before = account.credit_limit
    account.credit_limit = amount
    account.save(update_fields=["credit_limit"])
    audit.record(
        actor=acting_user,
        action="billing.credit_limit_set",
        obj=account,
        subscriber_id=subscriber.pk,
        before={"credit_limit": before},
        after={"credit_limit": amount},
        reason=reason,
    )
    events.emit("billing.balance_changed", subscriber_id=subscriber.pk)
    return account


@transaction.atomic
def do_post_payment(
    subscriber,
    *,
    amount,
    channel: str,
    external_id: str,
    acting_user=None,
    paid_on: dt.date | None = None,
    memo: str = "",
):
    """Credit a payment to the subscriber, once per ``(channel, external_id)`` however often it arrives.

    The payments issue builds intake (cash desk, bank statements, terminals, gateways) on top of this; an
    open promised payment is repaid from the payment, as DOMAIN.md describes.
    """
    amount = _positive_amount(amount)
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    cash = ledger.cash_account(channel)
    tx, created = _post_and_record(
        subscriber,
        key=f"payment:{channel}:{external_id}",
        kind=TransactionKind.PAYMENT,
        legs=[(account.pk, amount), (cash.pk, -amount)],
        memo=memo,
        acting_user=acting_user,
        audit_action="billing.payment_posted",
        effective_date=paid_on,
        after={"amount": amount, "channel": channel, "external_id": external_id},
    )
    if created:
        _close_promised_payment(subscriber, status=PromisedPaymentStatus.REPAID, acting_user=acting_user)
    return tx


@transaction.atomic
def do_take_promised_payment(subscriber, *, acting_user, amount=None) -> PromisedPayment:
    """Temporary credit within the plan's policy; closed by the next payment or when it runs out."""
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscriber)
    policy = promised_payment_policy(subscriber)
    if policy is None:
        raise ValidationError(_("The subscriber's plan offers no promised payment."), code="promised_not_offered")
    amount = _positive_amount(amount if amount is not None else policy.max_amount)
    if amount > policy.max_amount:
        raise ValidationError(
            {
                "amount": ValidationError(
                    _("A promised payment is at most %(max)s.") % {"max": format_money(policy.max_amount)},
                    code="promised_amount_too_large",
                )
            }
        )
    account = ledger.subscriber_account(subscriber.pk, lock=True)  # serialises takes of one subscriber
    if PromisedPayment.objects.filter(subscriber=subscriber, status=PromisedPaymentStatus.OPEN).exists():
        raise ValidationError(_("A promised payment is already open."), code="promised_already_open")
    now = clock.now()
    today = clock.today()
    if (
        policy.once_per_month
        and PromisedPayment.objects.filter(
            subscriber=subscriber, taken_at__gte=_local_midnight(today.replace(day=1))
        ).exists()
    ):
        raise ValidationError(_("A promised payment can be taken once a month."), code="promised_once_per_month")
    if account.balance < -policy.max_debt:
        raise ValidationError(
            _("The debt of %(debt)s is too large for a promised payment (at most %(max)s).")
            % {"debt": format_money(-account.balance), "max": format_money(policy.max_debt)},
            code="promised_debt_too_large",
        )
    key = f"promised:{subscriber.pk}:{now.isoformat()}"
    take, _created = ledger.post(
        key=key,
        kind=TransactionKind.PROMISED_TAKE,
        effective_date=today,
        legs=[(account.pk, amount), (ledger.system_account("promised").pk, -amount)],
        subscriber_id=subscriber.pk,
        acting_user=acting_user,
        memo=_("Promised payment until %(date)s")
        % {"date": date_format(today + dt.timedelta(days=policy.days), "SHORT_DATE_FORMAT")},
    )
    if policy.fee > 0:
        ledger.post(
            key=f"{key}:fee",
            kind=TransactionKind.PROMISED_TAKE,
            effective_date=today,
            legs=[(account.pk, -policy.fee), (ledger.system_account("promised_fees").pk, policy.fee)],
            subscriber_id=subscriber.pk,
            acting_user=acting_user,
            memo=_("Promised payment fee"),
        )
    promised = PromisedPayment.objects.create(
        subscriber=subscriber,
        policy=policy,
        amount=amount,
        fee=policy.fee,
        taken_at=now,
        due_on=today + dt.timedelta(days=policy.days),
        take_transaction=take,
    )
    audit.record(
        actor=acting_user,
        action="billing.promised_payment_taken",
        obj=promised,
        subscriber_id=subscriber.pk,
        after={"amount": amount, "due_on": promised.due_on, "fee": policy.fee},
    )
    events.emit("billing.balance_changed", subscriber_id=subscriber.pk)
    return promised


def _close_promised_payment(subscriber, *, status: str, acting_user) -> PromisedPayment | None:
    promised = (
        PromisedPayment.objects.select_for_update()
        .filter(subscriber=subscriber, status=PromisedPaymentStatus.OPEN)
        .first()
    )
    if promised is None:
        return None
    account = ledger.subscriber_account(subscriber.pk)
    close, _created = ledger.post(
        key=f"promised_close:{promised.pk}",
        kind=TransactionKind.PROMISED_CLOSE,
        effective_date=clock.today(),
        legs=[(account.pk, -promised.amount), (ledger.system_account("promised").pk, promised.amount)],
        subscriber_id=subscriber.pk,
        acting_user=acting_user,
        memo=_("Promised payment repaid") if status == PromisedPaymentStatus.REPAID else _("Promised payment expired"),
    )
    promised.status = status
    promised.closed_at = clock.now()
    promised.close_transaction = close
    promised.save(update_fields=["status", "closed_at", "close_transaction"])
    audit.record(
        actor=acting_user,
        action=f"billing.promised_payment_{status}",
        obj=promised,
        subscriber_id=subscriber.pk,
        after={"amount": promised.amount},
    )
    return promised


def do_expire_promised_payments() -> int:
    """Close every promised payment past its last day: the credit is withdrawn and access follows the balance."""
    count = 0
    for promised in PromisedPayment.objects.filter(
        status=PromisedPaymentStatus.OPEN, due_on__lt=clock.today()
    ).select_related("subscriber"):
        with transaction.atomic():
            if _close_promised_payment(promised.subscriber, status=PromisedPaymentStatus.EXPIRED, acting_user=None):
                count += 1
        events.emit("billing.balance_changed", subscriber_id=promised.subscriber_id)
    return count


def charged_total(subscription: Subscription) -> Decimal:
    return Charge.objects.filter(subscription=subscription).aggregate(s=Sum("amount"))["s"] or ZERO


REVERSIBLE_KINDS = {TransactionKind.ADJUSTMENT, TransactionKind.ONE_OFF}


@transaction.atomic
def do_reverse_transaction(tx, *, reason: str, acting_user):
    """Undo a manual adjustment or one-off charge made by mistake: a mirror transaction, the original kept."""
    from .models import LedgerTransaction

    tx = LedgerTransaction.objects.select_for_update().get(pk=tx.pk)
    subscriber = _subscriber_of(tx)
    _check(acting_user, Perm.BILLING_ADJUST, subscriber)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Give a reason for the reversal."), code="required")})
    if tx.kind not in REVERSIBLE_KINDS:
        raise ValidationError(
            _("Only manual adjustments and one-off charges can be reversed here."), code="not_reversible"
        )
    if hasattr(tx, "reversed_by"):
        raise ValidationError(_("This transaction has already been reversed."), code="already_reversed")
    ledger.subscriber_account(tx.subscriber_id, lock=True)
    reversal = ledger.reverse(tx, memo=reason, acting_user=acting_user)
    audit.record(
        actor=acting_user,
        action="billing.transaction_reversed",
        obj=tx,
        subscriber_id=tx.subscriber_id,
        after={"reversal": reversal.pk},
        reason=reason,
    )
    events.emit("billing.balance_changed", subscriber_id=tx.subscriber_id)
    return reversal


def _subscriber_of(tx):
    from abonent.subscribers.models import Subscriber

    return Subscriber.objects.get(pk=tx.subscriber_id)


def do_record_online_days(pairs) -> None:
    """Mark ``(subscriber_id, day)`` pairs as days the subscriber was online (from RADIUS accounting).
    Idempotent by the unique ``(subscriber, day)``; daily plans that charge only after an online day read it."""
    rows = [OnlineDay(subscriber_id=subscriber_id, day=day) for subscriber_id, day in sorted(set(pairs))]
    if rows:
        OnlineDay.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
