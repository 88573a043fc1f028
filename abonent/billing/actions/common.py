"""What the billing actions share: access checks, amount parsing, locking, history events and the charge an
event causes (with its ledger transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.catalog.models import PlanPrice, Service
from abonent.core import clock
from abonent.core.money import AMOUNT_LIMIT, BALANCE_LIMIT, format_money, quantize, to_decimal
from abonent.staff.permissions import Perm, check_branch, check_perm
from abonent.subscribers.models import Subscriber, SubscriberStatus

from .. import ledger
from ..engine import BillingRun
from ..models import (
    Charge,
    ChargeKind,
    Freeze,
    FreezeStatus,
    Posting,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
    TransactionKind,
    UnbilledDay,
)
from ..selectors import charged_beyond

ZERO = Decimal("0.00")


def _check(acting_user, perm: Perm, subscriber=None) -> None:
    if acting_user is None:
        return  # the system
    check_perm(acting_user, perm)
    if subscriber is not None:
        check_branch(acting_user, subscriber.branch_id)


def _amount(value, field: str = "amount", *, limit: Decimal = AMOUNT_LIMIT) -> Decimal:
    """An amount of money parsed and bounded: never above ``limit`` either way (422 ``amount_too_large``)."""
    try:
        amount = quantize(to_decimal(value))
    except ValueError as exc:
        raise ValidationError({field: ValidationError(str(exc), code="amount_invalid")}) from exc
    except ArithmeticError as exc:  # more digits than Decimal's context holds (quantize raises InvalidOperation)
        raise ValidationError(
            {field: ValidationError(_("The amount has too many digits."), code="amount_too_large")}
        ) from exc
    if abs(amount) > limit:
        raise ValidationError(
            {
                field: ValidationError(
                    _("The amount must not exceed %(limit)s.") % {"limit": format_money(limit)},
                    code="amount_too_large",
                )
            }
        )
    return amount


def _positive_amount(value, field: str = "amount", *, limit: Decimal = AMOUNT_LIMIT) -> Decimal:
    amount = _amount(value, field, limit=limit)
    if amount <= 0:
        raise ValidationError(
            {field: ValidationError(_("The amount must be greater than zero."), code="amount_not_positive")}
        )
    return amount


def _check_balance_after(account, change: Decimal, field: str = "amount") -> None:
    """Refuse a change that would take the balance past what an account may hold (the row is locked)."""
    if abs(account.balance + change) > BALANCE_LIMIT:
        raise ValidationError(
            {
                field: ValidationError(
                    _("The balance would go past %(limit)s.") % {"limit": format_money(BALANCE_LIMIT)},
                    code="balance_out_of_range",
                )
            }
        )


def _finish_active_freeze(subscription, on: dt.date) -> Freeze | None:
    freeze = Freeze.objects.filter(subscription=subscription, status=FreezeStatus.ACTIVE).first()
    if freeze is None:
        return None
    freeze.status = FreezeStatus.FINISHED
    if on < freeze.ends_on:
        freeze.ended_early_on = on
    freeze.save(update_fields=["status", "ended_early_on"])
    return freeze


def _resume(subscription: Subscription, today: dt.date, *, acting_user, reason: str) -> dt.date:
    """End the subscription's freeze: service and fees resume from today, or from the day the freeze ran out if
    that was earlier (the worker had not got to it). Returns the day fees resume from."""
    freeze = _finish_active_freeze(subscription, today)
    resume_on = min(today, freeze.ends_on) if freeze else today
    unfrozen = _event(subscription, SubscriptionEventKind.UNFROZEN, acting_user=acting_user, reason=reason)
    if freeze is not None and resume_on < freeze.ends_on:
        _refund_unused_freeze_days(subscription, freeze, resume_on, unfrozen, acting_user=acting_user)
    subscription.status = SubscriptionStatus.ACTIVE
    # The engine charges from the cursor, prorating a period that starts mid-way. The cursor may go back over
    # days charged and then credited by the freeze: a new charge cycle lets them be owed again (the fee key is
    # ``(subscription, period_start, cycle)``; in the same cycle the new fee collided and was dropped).
    subscription.next_charge_on = resume_on
    subscription.charge_cycle += 1
    _forget_unbilled_days(subscription, resume_on)
    subscription.save(update_fields=["status", "next_charge_on", "charge_cycle"])
    return resume_on


def _refund_unused_freeze_days(subscription, freeze, resume_on: dt.date, event, *, acting_user) -> None:
    """A freeze ended early costs what the days it lasted cost (the policy's minimum at least): the fee of the
    days booked and not used is given back, as a reversal of the freeze's fee charge (DOMAIN.md: a fee per
    frozen day). Keyed by the unfreeze's event."""
    from .freezes import freeze_fee  # the policy's arithmetic lives with the freezes

    charge = Charge.objects.filter(event_id=freeze.event_id, kind=ChargeKind.FREEZE_FEE).first()
    if freeze.event_id is None or charge is None:
        return  # no fee was charged (or the freeze predates migration 0006)
    used = max((resume_on - freeze.starts_on).days, freeze.policy.min_days)
    refund = charge.amount - min(freeze_fee(freeze.policy, used), charge.amount)
    # Never more than is left of the fee: an admin may have given some or all of it back already.
    refund = min(refund, charge.amount + sum(charge.reversals.values_list("amount", flat=True), ZERO))
    if refund <= 0:
        return
    account = ledger.subscriber_account(subscription.subscriber_id)
    revenue = Posting.objects.filter(transaction_id=charge.transaction_id).exclude(account_id=account.pk).get()
    tx, _created = ledger.post(
        key=f"event:{event.pk}:freeze_refund",
        kind=TransactionKind.FREEZE,
        effective_date=resume_on,
        legs=[(account.pk, refund), (revenue.account_id, -refund)],
        subscriber_id=subscription.subscriber_id,
        acting_user=acting_user,
        memo=_("Freeze ended early: the fee of the days not used"),
    )
    Charge.objects.create(
        subscription=subscription,
        kind=ChargeKind.FREEZE_FEE,  # a reversal of a charge for a thing keeps its kind (not a day of service)
        period_start=resume_on,
        period_end=freeze.ends_on,
        amount=-refund,
        reverses=charge,
        event=event,
        transaction=tx,
    )


def _forget_unbilled_days(subscription: Subscription, from_day: dt.date) -> None:
    """Days of an online-only plan left unbilled from ``from_day`` on are not owed as they were: a termination or a
    freeze ends service, a plan change prices them anew, an unfreeze has the run look at them again."""
    UnbilledDay.objects.filter(subscription=subscription, day__gte=from_day).delete()


def behind(subscription: Subscription, today: dt.date) -> bool:
    """Whether a state change today first charges what a missed run left (``_catch_up`` does something): an active
    subscription whose next charge day has come, or a frozen one whose freeze ran out."""
    if subscription.status == SubscriptionStatus.FROZEN:
        return Freeze.objects.filter(subscription=subscription, status=FreezeStatus.ACTIVE, ends_on__lte=today).exists()
    return subscription.status == SubscriptionStatus.ACTIVE and subscription.next_charge_on <= today


T = TypeVar("T")


class _RolledBack(Exception):
    def __init__(self, result) -> None:
        super().__init__("rolled back")
        self.result = result


def rolled_back(work: Callable[[], T]) -> T:
    """``work()``'s result with everything it wrote undone: a preview that runs an action's catch-up in a savepoint,
    so it shows what the action does rather than a second account of it. A refusal ``work`` raises propagates."""
    try:
        with transaction.atomic():
            raise _RolledBack(work())
    except _RolledBack as done:
        return done.result


def _catch_up(subscription: Subscription, until: dt.date) -> Subscription:
    """Charge what is due up to ``until`` before a state change, in the same transaction: a freeze, termination
    or plan change after a missed run must not lose the unbilled periods or price days already used at the new
    plan's price. A freeze that ran out by then (the worker did not get to it) ends first, on its last day, so
    the days after it are charged too. The subscription is locked by the caller."""
    if subscription.status == SubscriptionStatus.FROZEN:
        expired = Freeze.objects.filter(
            subscription=subscription, status=FreezeStatus.ACTIVE, ends_on__lte=until
        ).exists()
        if expired:
            _resume(subscription, until, acting_user=None, reason=_("The freeze period ended."))
    if subscription.status == SubscriptionStatus.ACTIVE and subscription.next_charge_on <= until:
        result = BillingRun(until).charge_subscriptions([subscription.pk])
        if result.parked:
            # Charging stopped part-way (no price for a period, years of arrears): going ahead would write the
            # rest off without a word. The operator sees why and decides.
            raise ValidationError(
                _("The subscription cannot be charged up to today (%(why)s): resolve that first.")
                % {"why": result.parked[0][1]},
                code="subscription_parked",
            )
        fresh = Subscription.objects.values("next_charge_on", "plan_id", "pending_plan_id", "pending_plan_from").get(
            pk=subscription.pk
        )
        plan_switched = fresh["plan_id"] != subscription.plan_id
        for name, value in fresh.items():
            setattr(subscription, name, value)
        if plan_switched:  # a scheduled downgrade the catch-up put in force
            subscription = _lock_subscription(subscription)
    return subscription


def _lock_subscription(subscription: Subscription) -> Subscription:
    """The subscription's row locked for the rest of the transaction, then read with its plan, service and
    subscriber as they are now.

    Only its own row is locked, and by key alone: a ``FOR UPDATE`` joined to the plan locked the plan and service
    rows too (two subscribers on one plan queued behind each other, and deadlocked with a plan change whose history
    row takes ``FOR KEY SHARE`` on the new plan), and after a concurrent commit that changed ``plan_id`` PostgreSQL's
    re-check of the join against the old plan row returned no row at all (``DoesNotExist``: a double-clicked plan
    change was a 500). The read after the lock sees the committed row."""
    Subscription.objects.select_for_update().filter(pk=subscription.pk).values_list("pk", flat=True).get()
    return Subscription.objects.select_related("plan", "plan__service", "subscriber").get(pk=subscription.pk)


def _refuse_closed(subscriber) -> None:
    """A closed account buys nothing and changes nothing: its contracts have ended (RADIUS rejects it) while its
    subscriptions may not be terminated yet (closing terminates them after commit). Read afresh: the caller's
    object may predate the closing."""
    status = Subscriber.objects.filter(pk=subscriber.pk).values_list("status", flat=True).first()
    if status == SubscriberStatus.CLOSED:
        raise ValidationError(_("The account is closed."), code="subscriber_closed")


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
    base_fee: Decimal | None = None,
) -> Charge | None:
    """A charge (+) or credit (−) caused by an event, with its ledger transaction, keyed by the event.
    ``base_fee``: the whole period's amount it is measured on when not ``price``'s list fee (billing/pricing)."""
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
        base_fee=base_fee,
        event=event,
        transaction=tx,
    )


def _give_back(subscription, event, unused, day: dt.date, end: dt.date, *, service, memo: str, acting_user) -> None:
    """Credit ``unused`` (``selectors.UnusedCredit``): the fees' days as a credit named after the price (and the
    effective fee) that covered them, and, when those fees were discounted, the discount of the same days taken
    back as a discount line of its own. The net is what was really paid for the days (billing/pricing)."""
    _event_charge(
        subscription,
        event,
        ChargeKind.PRORATION_CREDIT,
        -unused.fees,
        day,
        end,
        service=service,
        memo=memo,
        acting_user=acting_user,
        price=PlanPrice.objects.filter(pk=unused.price_id).first() if unused.price_id else None,
        base_fee=unused.base_fee,
    )
    if unused.discount > 0:
        _event_charge(
            subscription,
            event,
            ChargeKind.DISCOUNT,
            unused.discount,
            day,
            end,
            service=service,
            memo=_("Discount of the days given back"),
            acting_user=acting_user,
            price=PlanPrice.objects.filter(pk=unused.discount_price_id).first() if unused.discount_price_id else None,
            base_fee=unused.discount_base,
        )


def _credit_unused(subscription, event, at, *, memo: str, acting_user) -> Decimal:
    """Give back what the charges made cover from ``at`` on (a date, or an instant for by-second plans), as a
    credit charge named after the price that covered those days, so later prorations measure it on the same
    period and price (``selectors.charged_beyond``). Returns the amount credited."""
    unused = charged_beyond(subscription, at)
    day = at.date() if isinstance(at, dt.datetime) else at
    _give_back(
        subscription,
        event,
        unused,
        day,
        max(subscription.next_charge_on, day + dt.timedelta(days=1)),
        service=subscription.plan.service,
        memo=memo,
        acting_user=acting_user,
    )
    return unused.amount


_TX_KIND = {
    SubscriptionEventKind.ACTIVATED: TransactionKind.ACTIVATION,
    SubscriptionEventKind.PLAN_CHANGED: TransactionKind.PLAN_CHANGE,
    SubscriptionEventKind.FROZEN: TransactionKind.FREEZE,
    SubscriptionEventKind.UNFROZEN: TransactionKind.FREEZE,
    SubscriptionEventKind.TERMINATED: TransactionKind.PLAN_CHANGE,
    SubscriptionEventKind.TURBO: TransactionKind.TURBO,
    SubscriptionEventKind.TIME_PACKAGE: TransactionKind.TIME_PACKAGE,
}


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
