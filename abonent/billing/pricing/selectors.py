"""Reads of pricing: the price a subscription pays and why, and the lists the console shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from abonent.catalog.models import ChargeMode, Plan
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core import clock

from .models import Bundle, PriceOverride, Promotion
from .rules import ZERO, Context, Effective, RunPricing, discount, effective_price


@dataclass(frozen=True)
class PriceView:
    """What a subscription pays for a whole period of ``plan`` from ``day``: the list price, the effective fee
    and its source, the discount the promotions give on it, and the net."""

    plan_id: int
    day: dt.date
    list_price: object  # PlanPrice
    effective: Effective
    fee: Decimal  # a whole period's: a month's, or a day's of a plan priced by the day
    discount: Decimal
    promotions: tuple[str, ...]

    @property
    def net(self) -> Decimal:
        return self.fee - self.discount

    @property
    def source(self) -> str:
        return self.effective.source


def context_of(
    subscription, plan_id: int | None = None, pricing: RunPricing | None = None
) -> tuple[RunPricing, Context]:
    """The rules and the subscription's context for pricing it on ``plan_id`` (default: its plan)."""
    pricing = pricing or RunPricing()
    plan_id = plan_id or subscription.plan_id
    found = pricing.contexts([(subscription.pk, subscription.subscriber_id, plan_id, None)])
    return pricing, found.get(subscription.pk) or Context(started_on=subscription.started_on)


def pricing_day(plan: Plan, day: dt.date, anchor_day: int) -> dt.date:
    """The day that decides the overrides and promotions of ``plan``'s period containing ``day``: its whole
    period's first day. A period charged in parts (an activation, an unfreeze, a plan change mid-way) is priced and
    discounted as one, so a freeze gives back and an unfreeze takes the same price for the same days."""
    from ..periods import period_for

    return period_for(plan, day, anchor_day)[2]


def list_effective(price) -> Effective:
    """The list price as an ``Effective`` one: what a time plan is at whatever overrides say (it has no fee)."""
    return Effective(price.monthly_fee, price.daily_fee, "plan", price.pk, "", price.valid_from, None)


def effective_for(subscription, plan: Plan | None = None, day: dt.date | None = None, *, pricing=None):
    """The ``PlanPrice`` on ``day`` (default today) and the ``Effective`` price of ``plan`` (default: the
    subscription's) for the subscription in its period containing that day, decided on the period's first day
    (``pricing_day``). Raises ``NoPriceError`` when the plan has no list price then."""
    plan = plan or subscription.plan
    day = day or clock.today()
    price = price_on(plan, day)
    if plan.charge_mode == ChargeMode.TIME:
        return price, list_effective(price)
    _pricing, ctx = context_of(subscription, plan.pk, pricing)
    first = pricing_day(plan, day, subscription.anchor_day)
    return price, effective_price(price, plan.pk, first, own=ctx.own, groups=ctx.groups, bundles=ctx.bundles)


def price_view(subscription, plan: Plan | None = None, day: dt.date | None = None, *, pricing=None) -> PriceView | None:
    """What the subscription pays a period of ``plan`` from ``day``, as the billing run charges it: a month's fee,
    or the day's of a plan charged by the day. ``None`` when the plan has no price, and for a time plan (its
    time online is rated; it has no fee to show)."""
    plan = plan or subscription.plan
    day = day or clock.today()
    if plan.charge_mode == ChargeMode.TIME:
        return None
    try:
        price = price_on(plan, day)
    except NoPriceError:
        return None
    from ..periods import amount_for

    pricing, ctx = context_of(subscription, plan.pk, pricing)
    if ctx.started_on is None:
        ctx.started_on = subscription.started_on
    first = pricing_day(plan, day, subscription.anchor_day)
    effective = effective_price(price, plan.pk, first, own=ctx.own, groups=ctx.groups, bundles=ctx.bundles)
    promotions = pricing.promotions_for(plan.pk, first, ctx, effective.bundle_id)
    fee = effective.monthly_fee
    if plan.charge_mode == ChargeMode.DAILY:
        # The day's fee as the run computes it: a fixed daily fee, or the monthly fee split by the month's days.
        fee = amount_for(plan, effective, day, day + dt.timedelta(days=1), day)[0]
    return PriceView(plan.pk, day, price, effective, fee, discount(fee, promotions), tuple(p.name for p in promotions))


def next_fee(
    plan: Plan, price, start: dt.date, anchor_day: int, *, subscription_id: int, subscriber_id: int, pricing=None
):
    """What the billing run will charge a subscription for its period of ``plan`` from ``start`` net of its
    discount, and the ``Effective`` price it is at: ``(amount, effective)`` (the portal's next charge). As the run,
    the overrides and promotions are those of the whole period's first day."""
    from ..calculations import prorate
    from ..periods import amount_for, period_for

    if plan.charge_mode == ChargeMode.TIME:
        return ZERO, list_effective(price)
    pricing = pricing or RunPricing()
    period_start, period_end, full_start = period_for(plan, start, anchor_day)
    ctx = pricing.contexts([(subscription_id, subscriber_id, plan.pk, None)]).get(subscription_id)
    if ctx is None:
        effective = effective_price(price, plan.pk, full_start)
        promotions = [p for p in pricing.universal if p.applies(plan.pk, full_start)]
    else:
        effective = effective_price(price, plan.pk, full_start, own=ctx.own, groups=ctx.groups, bundles=ctx.bundles)
        promotions = pricing.promotions_for(plan.pk, full_start, ctx, effective.bundle_id)
    amount, numerator, _denominator = amount_for(plan, effective, period_start, period_end, full_start)
    whole = amount if plan.charge_mode == ChargeMode.DAILY else effective.monthly_fee
    off = discount(whole, promotions)
    if off and numerator is not None:
        off = prorate(off, period=(full_start, period_end), used_from=period_start)
    return (amount - off if amount > off else ZERO), effective


def overrides_of(subscription) -> QuerySet[PriceOverride]:
    return PriceOverride.objects.filter(subscription_id=subscription.pk).select_related("plan", "set_by")


def group_overrides() -> QuerySet[PriceOverride]:
    return PriceOverride.objects.filter(group__isnull=False).select_related("group", "plan", "set_by")


def promotions() -> QuerySet[Promotion]:
    return Promotion.objects.prefetch_related("plans", "groups").select_related("bundle")


def bundles() -> QuerySet[Bundle]:
    return Bundle.objects.prefetch_related("items__plan__service")


def in_force(rows, day: dt.date | None = None) -> list:
    day = day or clock.today()
    return [r for r in rows if r.valid_from <= day and (r.valid_until is None or day <= r.valid_until)]


def price_data(subscription, day: dt.date | None = None, *, pricing=None) -> dict | None:
    """``price_view`` as the API answers it (``EffectivePriceOut``)."""
    view = price_view(subscription, day=day, pricing=pricing)
    if view is None:
        return None
    e = view.effective
    return {
        "subscription_id": subscription.pk,
        "plan_id": view.plan_id,
        "day": view.day,
        "list_fee": view.list_price.monthly_fee,
        "fee": view.fee,
        "source": e.source,
        "source_id": e.source_id,
        "reason": e.reason,
        "valid_from": e.valid_from,
        "valid_until": e.valid_until,
        "discount": view.discount,
        "net": view.net,
        "promotions": list(view.promotions),
    }
