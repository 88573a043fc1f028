"""What the billing actions share: access checks, amount parsing, locking, history events and the charge an
event causes (with its ledger transaction)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.catalog.models import Service
from abonent.core import clock
from abonent.core.money import quantize, to_decimal
from abonent.staff.permissions import Perm, check_branch, check_perm

from .. import ledger
from ..models import (
    Charge,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    TransactionKind,
)

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

def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))

