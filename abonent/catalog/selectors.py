"""Reads of the catalog."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch, QuerySet

from .models import Plan, PlanPrice, Turbo


class NoPriceError(LookupError):
    """A plan has no price version valid on the date asked: charging it would guess."""


def price_on(plan: Plan | int, day: dt.date) -> PlanPrice:
    plan_id = plan.pk if isinstance(plan, Plan) else plan
    price = PlanPrice.objects.filter(plan_id=plan_id, valid_from__lte=day).order_by("-valid_from").first()
    if price is None:
        raise NoPriceError(f"plan {plan_id} has no price on {day.isoformat()}")
    return price


def price_history(plan: Plan) -> list[PlanPrice]:
    return list(plan.prices.order_by("-valid_from"))


def active_plans() -> QuerySet[Plan]:
    return Plan.objects.filter(is_archived=False).select_related("service")


def plans_offered_for_switch(current: Plan) -> QuerySet[Plan]:
    """Plans a subscriber on ``current`` may switch to by themselves (the portal shows these)."""
    return current.switchable_to.filter(is_archived=False)


def turbos_with_plans(*, include_inactive: bool = True) -> QuerySet[Turbo]:
    """Turbo options, those offered first, each with the plans that list it (two queries however many)."""
    turbos = Turbo.objects.prefetch_related(Prefetch("plans", queryset=Plan.objects.order_by("name")))
    if not include_inactive:
        turbos = turbos.filter(is_active=True)
    return turbos.order_by("-is_active", "price", "name")
