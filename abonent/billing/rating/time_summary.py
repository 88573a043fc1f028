"""Reads of time plans for the card, the portal and the API: the packages offered and bought, the time used in
the current period, an estimate of the time left and the rated sessions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import QuerySet, Sum

from abonent.catalog.models import TIME_UNIT_SECONDS, ChargeMode, TimePackage
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core import clock

from ..models import Subscription, SubscriptionStatus, TimePackagePurchase, TimeRating
from .time_budget import seconds_left, time_budgets


def time_packages_offered(subscription: Subscription) -> QuerySet[TimePackage]:
    """The time packages the subscription's plan sells, cheapest first."""
    return subscription.plan.time_packages.filter(is_active=True).order_by("price", "name")


def time_subscription(subscriber) -> Subscription | None:
    """The subscriber's live subscription on a time plan, if any."""
    return (
        Subscription.objects.filter(subscriber=subscriber, plan__charge_mode=ChargeMode.TIME)
        .exclude(status=SubscriptionStatus.TERMINATED)
        .select_related("plan")
        .order_by("-started_on", "-id")
        .first()
    )


@dataclass
class TimeSummary:
    subscription: Subscription
    unit: str
    unit_seconds: int
    unit_price: Decimal | None
    free_minutes: int
    minimum_charge: Decimal
    period_start: dt.date
    period_end: dt.date
    used_seconds: int = 0
    package_seconds_used: int = 0
    charged: Decimal = Decimal("0.00")
    packages: list[TimePackagePurchase] = field(default_factory=list)
    package_seconds_left: int = 0
    # What a session starting now may last (free minutes included); None: time costs nothing.
    seconds_left: int | None = None
    history: list[TimeRating] = field(default_factory=list)


def time_summary(subscription: Subscription, *, history: int = 50) -> TimeSummary:
    from ..periods import period_for

    plan = subscription.plan
    today, now = clock.today(), clock.now()
    _start, end, full_start = period_for(plan, today, subscription.anchor_day)
    try:
        unit_price = price_on(plan, today).unit_price
    except NoPriceError:
        unit_price = None
    summary = TimeSummary(
        subscription=subscription,
        unit=plan.time_unit,
        unit_seconds=TIME_UNIT_SECONDS[plan.time_unit],
        unit_price=unit_price,
        free_minutes=plan.free_minutes,
        minimum_charge=plan.minimum_session_charge,
        period_start=full_start,
        period_end=end,
    )
    totals = TimeRating.objects.filter(
        subscription=subscription, day__gte=full_start, day__lt=end, skipped=""
    ).aggregate(seconds=Sum("seconds"), packages=Sum("package_seconds"), amount=Sum("amount"))
    summary.used_seconds = totals["seconds"] or 0
    summary.package_seconds_used = totals["packages"] or 0
    summary.charged = totals["amount"] or Decimal("0.00")
    summary.packages = list(
        TimePackagePurchase.objects.filter(subscription=subscription, expires_at__gt=now)
        .select_related("package")
        .order_by("expires_at", "id")
    )
    summary.package_seconds_left = sum(p.left_seconds for p in summary.packages if p.starts_at <= now)
    budget = time_budgets([subscription.subscriber_id]).get(subscription.pk)
    if budget is not None:
        summary.seconds_left = seconds_left(budget, now.timestamp())
    summary.history = list(
        TimeRating.objects.filter(subscription=subscription).select_related("charge").order_by("-part_start")[:history]
    )
    return summary


def purchases(subscription: Subscription, *, limit: int = 50) -> list[TimePackagePurchase]:
    """The packages bought for the subscription, newest first, expired ones included."""
    return list(
        TimePackagePurchase.objects.filter(subscription=subscription)
        .select_related("package")
        .order_by("-starts_at", "-id")[:limit]
    )
