"""The reports' reads: sums over the summary tables (``facts.py``) and the few reads of subscriptions the ARPU and
the forecast need. Every function takes ``using`` (``replica.reading_db()``) and writes nothing."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db.models import Count, Q, Sum

from abonent.billing.models import (
    Freeze,
    FreezeStatus,
    Subscription,
    SubscriptionStatus,
)
from abonent.catalog.models import Plan, PlanPrice, Service
from abonent.core.money import quantize

from .models import PaymentFact, RevenueFact
from .pages import ReportQuery, month_start, next_month

ZERO = Decimal("0.00")


def _scoped(qs, query: ReportQuery, *, by_service: bool = True):
    qs = qs.filter(day__gte=query.start, day__lt=query.end)
    if query.branch_ids is not None:
        qs = qs.filter(branch_id__in=query.branch_ids)
    if by_service and query.service_id:
        qs = qs.filter(service_id=query.service_id)
    if by_service and query.plan_id:
        qs = qs.filter(plan_id=query.plan_id)
    return qs


def names(using: str) -> tuple[dict[int, str], dict[int, str]]:
    return (
        dict(Service.objects.using(using).values_list("id", "name")),
        dict(Plan.objects.using(using).values_list("id", "name")),
    )


def accrual_by_day(query: ReportQuery, *, using: str) -> list[dict]:
    """Revenue facts summed per day, service, plan and whether they are charges (+) or credits (−)."""
    rows = (
        _scoped(RevenueFact.objects.using(using), query)
        .values("day", "service_id", "plan_id")
        .annotate(
            charged=Sum("amount", filter=Q(amount__gt=0)),
            credited=Sum("amount", filter=Q(amount__lt=0)),
            net=Sum("amount"),
            n=Sum("count"),
        )
        .order_by()
    )
    return list(rows)


def cash_by_day(query: ReportQuery, *, using: str) -> list[dict]:
    """Payment facts summed per day, channel and kind."""
    return list(
        _scoped(PaymentFact.objects.using(using), query, by_service=False)
        .values("day", "channel", "kind")
        .annotate(total=Sum("amount"), n=Sum("count"))
        .order_by()
    )


def money(value) -> Decimal:
    return ZERO if value is None else quantize(Decimal(str(value)))


def accrued_by_month(query: ReportQuery, *, using: str) -> dict[dt.date, Decimal]:
    result: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
    for row in accrual_by_day(query, using=using):
        result[month_start(row["day"])] += money(row["net"])
    return result


def _price_on(prices: dict[int, list[PlanPrice]], plan_id: int, day: dt.date) -> PlanPrice | None:
    found = None
    for price in prices.get(plan_id, []):
        if price.valid_from <= day:
            found = price
    return found


def _plan_then(plan_id: int, pending_plan_id: int | None, pending_from: dt.date | None, month: dt.date) -> int:
    """The plan a subscription will be on on ``month``'s first day: the pending one when it takes effect by then."""
    if pending_plan_id and pending_from and pending_from <= month:
        return pending_plan_id
    return plan_id


def forecast_month(month: dt.date, query: ReportQuery, *, using: str) -> tuple[Decimal, int]:
    """Next month's recurring fees as the subscriptions stand now: each live subscription at the list price in force
    on the month's first day of the plan it will be on then (a downgrade scheduled for that day or earlier counts),
    less the days of the month it is frozen for. Daily plans count their monthly fee (their days add up to it), or
    their fixed daily fee times the days. Individual prices, discounts, usage, one-offs and new connections are not
    foreseen (docs/reports.md)."""
    end = next_month(month)
    days_in_month = (end - month).days
    subs = (
        Subscription.objects.using(using)
        .filter(status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.FROZEN], started_on__lt=end)
        .filter(Q(ended_on__isnull=True) | Q(ended_on__gte=month))
    )
    if query.branch_ids is not None:
        subs = subs.filter(subscriber__branch_id__in=query.branch_ids)
    if query.service_id:
        subs = subs.filter(service_id=query.service_id)
    # The plan each will be on: the pending one when it takes effect by the month's start.
    counts = subs.values("plan_id", "pending_plan_id", "pending_plan_from").annotate(n=Count("id")).order_by()
    prices: dict[int, list[PlanPrice]] = defaultdict(list)
    for price in PlanPrice.objects.using(using).order_by("plan_id", "valid_from"):
        prices[price.plan_id].append(price)
    modes = dict(Plan.objects.using(using).values_list("id", "charge_mode"))
    # Frozen days per subscription, counted against the plan it will be on next month (a downgrade pending for the
    # month's start included): the fee of that plan is the one the freeze takes away.
    frozen: dict[int, list] = {}
    for freeze in (
        Freeze.objects.using(using)
        .filter(status=FreezeStatus.ACTIVE, starts_on__lt=end, ends_on__gt=month, subscription__in=subs)
        .values(
            "subscription_id",
            "subscription__plan_id",
            "subscription__pending_plan_id",
            "subscription__pending_plan_from",
            "starts_on",
            "ends_on",
        )
    ):
        entry = frozen.setdefault(
            freeze["subscription_id"],
            [
                _plan_then(
                    freeze["subscription__plan_id"],
                    freeze["subscription__pending_plan_id"],
                    freeze["subscription__pending_plan_from"],
                    month,
                ),
                0,
            ],
        )
        entry[1] += (min(freeze["ends_on"], end) - max(freeze["starts_on"], month)).days
    frozen_days: dict[int, int] = defaultdict(int)
    for plan_id, days in frozen.values():
        # Overlapping freezes of one subscription never take away more than its month.
        frozen_days[plan_id] += min(days, days_in_month)
    total, subscriptions = ZERO, 0
    for row in counts:
        plan_id = _plan_then(row["plan_id"], row["pending_plan_id"], row["pending_plan_from"], month)
        if query.plan_id and plan_id != query.plan_id:
            continue
        price = _price_on(prices, plan_id, month)
        if price is None or modes.get(plan_id) == "time":
            continue
        monthly = price.daily_fee * days_in_month if price.daily_fee is not None else price.monthly_fee
        total += monthly * row["n"]
        subscriptions += row["n"]
    for plan_id, days in frozen_days.items():
        if query.plan_id and plan_id != query.plan_id:
            continue
        price = _price_on(prices, plan_id, month)
        if price is not None and modes.get(plan_id) != "time":
            monthly = price.daily_fee * days_in_month if price.daily_fee is not None else price.monthly_fee
            total -= monthly * days / days_in_month
    return quantize(total), subscriptions
