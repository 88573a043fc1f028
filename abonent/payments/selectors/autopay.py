"""Reads for autopay: the fees a subscriber's balance must cover, the card panel's lists."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from abonent.billing import calculations as billing_calc
from abonent.billing.models import Subscription, SubscriptionStatus
from abonent.catalog.models import ChargeMode, DailyPricing
from abonent.catalog.selectors import NoPriceError, price_on

from ..models import AutopayAttempt, AutopayPlan, PaymentNotice, SavedMethod

HISTORY = 24


def fees_between(subscriber_id: int, start: dt.date, end: dt.date) -> list[tuple[dt.date, Decimal]]:
    """The fees the billing run will charge the subscriber's active subscriptions on days in ``[start, end)``, and
    those due before ``start`` it has not charged yet: a monthly plan's fee on its next charge day, a daily plan's
    fee for each day. Frozen subscriptions are not charged; a plan without a price then charges nothing."""
    fees: list[tuple[dt.date, Decimal]] = []
    subscriptions = Subscription.objects.filter(
        subscriber_id=subscriber_id, status=SubscriptionStatus.ACTIVE
    ).select_related("plan")
    for subscription in subscriptions:
        plan = subscription.plan
        day = subscription.next_charge_on
        if plan.charge_mode == ChargeMode.DAILY:
            while day < end:
                try:
                    price = price_on(plan, day)
                except NoPriceError:
                    break
                if plan.daily_pricing == DailyPricing.FIXED:
                    amount = price.daily_fee or Decimal("0.00")
                else:
                    amount = billing_calc.daily_split(price.monthly_fee, day)
                fees.append((max(day, start), amount))
                day += dt.timedelta(days=1)
        elif day < end:
            try:
                fees.append((max(day, start), price_on(plan, day).monthly_fee))
            except NoPriceError:
                continue
    return sorted(fees)


def autopay_of(subscriber) -> AutopayPlan | None:
    return AutopayPlan.objects.filter(subscriber_id=subscriber.pk).select_related("method").first()


def methods_of(subscriber, *, active_only: bool = False):
    methods = SavedMethod.objects.filter(subscriber_id=subscriber.pk).order_by("-active", "-created_at")
    return methods.filter(active=True) if active_only else methods


def attempts_of(subscriber, *, limit: int = HISTORY) -> list[AutopayAttempt]:
    return list(
        AutopayAttempt.objects.filter(subscriber_id=subscriber.pk)
        .select_related("method", "payment")
        .order_by("-due_on", "-number")[:limit]
    )


def notices_of(subscriber, *, limit: int) -> list[PaymentNotice]:
    """The newest notices queued for the subscriber (delivered or not)."""
    return list(PaymentNotice.objects.filter(subscriber_id=subscriber.pk).order_by("-created_at", "-id")[:limit])


def undelivered_notices(*, limit: int = 500) -> list[PaymentNotice]:
    """The outbox as the notifications app drains it: the oldest notices not yet delivered, first in first out."""
    undelivered = PaymentNotice.objects.filter(delivered_at__isnull=True).select_related("subscriber")
    return list(undelivered.order_by("created_at", "id")[:limit])
