"""A plan's billing period from a day, and its fee for that period: what the billing run charges, and what
previews, the portal, pricing and rating measure with it (one definition for all of them)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from abonent.catalog.models import ChargeMode, DailyPricing, PeriodAnchor, Plan

from . import calculations as calc


def period_for(plan: Plan, start: dt.date, anchor_day: int) -> tuple[dt.date, dt.date, dt.date]:
    """``(period_start, period_end, full_period_start)`` of the period beginning at ``start``.

    A period can begin mid-way (activation on the 15th of a calendar-month plan): it then ends with the full
    period and is prorated against the full period's length.
    """
    if plan.charge_mode == ChargeMode.DAILY:
        return start, start + dt.timedelta(days=1), start
    anniversary = anchor_day if plan.period_anchor == PeriodAnchor.ANNIVERSARY else None
    full_start, end = calc.monthly_period(start, anniversary_day=anniversary)
    return start, end, full_start


def amount_for(
    plan: Plan, price, start: dt.date, end: dt.date, full_start: dt.date
) -> tuple[Decimal, int | None, int | None]:
    """Fee for the period and its proration fraction (``None`` when the whole period is charged). ``price`` is a
    ``PlanPrice`` or anything with its ``monthly_fee`` and ``daily_fee`` (an effective price, billing/pricing). A time
    plan has no recurring fee: its time online is rated (``rating.time``)."""
    if plan.charge_mode == ChargeMode.TIME:
        return Decimal("0.00"), None, None
    if plan.charge_mode == ChargeMode.DAILY:
        if plan.daily_pricing == DailyPricing.FIXED:
            return price.daily_fee or Decimal("0.00"), None, None
        return calc.daily_split(price.monthly_fee, start), None, None
    if start == full_start:
        return price.monthly_fee, None, None
    numerator, denominator = calc.proration_fraction(period=(full_start, end), used_from=start)
    return calc.prorate(price.monthly_fee, period=(full_start, end), used_from=start), numerator, denominator
