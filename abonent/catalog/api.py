"""REST API for the catalog: ``/api/v1/plans`` and ``/api/v1/turbos``. Handlers parse, check, call selectors.

Money is a JSON string with two decimals (``"650.00"``), never a number: clients parse it as a decimal and
nothing on the way rounds it through a float. ``Money`` is that type for every router.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema
from pydantic import PlainSerializer, WithJsonSchema

from abonent.api.errors import ErrorOut
from abonent.core import clock
from abonent.core.money import quantize
from abonent.staff.permissions import Perm, check_perm

from . import selectors
from .models import Plan, TimePackage, Turbo

MONEY_SCHEMA = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "examples": ["650.00"]}

Money = Annotated[
    Decimal, PlainSerializer(lambda value: str(quantize(value)), return_type=str), WithJsonSchema(MONEY_SCHEMA)
]
# A rate (price per GB) keeps four places.
Rate = Annotated[
    Decimal,
    PlainSerializer(lambda value: f"{value:.4f}", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{4}$", "examples": ["2.0000"]}),
]

router = Router(tags=["catalog"])


class PriceOut(Schema):
    valid_from: dt.date
    monthly_fee: Money
    daily_fee: Money | None
    activation_fee: Money
    unit_price: Money | None = Field(description="Time plans: the price of every started minute or hour")


class ServiceOut(Schema):
    id: int
    code: str
    name: str
    kind: str


class PlanOut(Schema):
    id: int
    code: str
    name: str
    service: ServiceOut
    description: str
    charge_mode: str
    period_anchor: str
    daily_pricing: str
    charge_only_if_online: bool
    proration_unit: str
    download_kbps: int
    upload_kbps: int
    burst_download_kbps: int | None
    burst_upload_kbps: int | None
    burst_seconds: int | None
    night_download_kbps: int | None
    night_upload_kbps: int | None
    night_starts_at: dt.time | None
    night_ends_at: dt.time | None
    included_bytes: int | None = Field(description="Traffic included per billing period; null: unlimited")
    overage_price_per_gb: Rate | None
    overage_rounding: str = Field(description="per_gb (per started GB), per_mb (per started MB) or per_byte")
    traffic_policy: str = Field(
        description="Past the included traffic: fup (speed cut), overage (charged per GB) or both"
    )
    traffic_direction: str = Field(
        description="Traffic counted: both, download (to the subscriber), upload or greater (of the two totals)"
    )
    fup_download_kbps: int | None
    fup_upload_kbps: int | None
    time_unit: str = Field(description="Time plans: minute or hour, what the unit price is per")
    free_minutes: int = Field(description="Time plans: free at the start of every session")
    minimum_session_charge: Money = Field(description="Time plans: the least a session costs once it costs anything")
    freeze_policy_id: int | None
    promised_payment_policy_id: int | None
    is_public: bool
    is_archived: bool
    current_price: PriceOut | None = Field(description="The price version in force today; null: none yet")


class PlanDetailOut(PlanOut):
    switchable_to: list[int] = Field(description="Plans subscribers on this plan may switch to themselves")
    prices: list[PriceOut] = Field(description="Every price version, newest first")


class PlanFilters(Schema):
    include_archived: bool = False


class TurboOut(Schema):
    id: int
    code: str
    name: str
    download_kbps: int
    upload_kbps: int
    hours: int = Field(description="How long the speed lasts once bought")
    price: Money
    is_active: bool = Field(description="false: no longer sold; turbos already bought run out")


class TurboWithPlansOut(TurboOut):
    plans: list[int] = Field(description="Plans whose subscribers may buy this option")


class TurboFilters(Schema):
    include_inactive: bool = False


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


def _price(price) -> dict | None:
    if price is None:
        return None
    return {
        "valid_from": price.valid_from,
        "monthly_fee": price.monthly_fee,
        "daily_fee": price.daily_fee,
        "activation_fee": price.activation_fee,
        "unit_price": price.unit_price,
    }


def _plan(plan: Plan, current_price) -> dict:
    data = {name: getattr(plan, name) for name in PlanOut.model_fields if name not in ("service", "current_price")}
    data["service"] = plan.service
    data["current_price"] = _price(current_price)
    return data


@router.get("/plans", response={200: list[PlanOut], **ERRORS}, summary="List plans with today's prices")
def list_plans(request, filters: Query[PlanFilters]):
    check_perm(request.user, Perm.BILLING_VIEW)
    plans = Plan.objects.select_related("service") if filters.include_archived else selectors.active_plans()
    # One query for every plan's price history; today's price is the newest version already in force.
    today = clock.today()
    plans = list(plans.prefetch_related("prices").order_by("service__name", "name"))
    return [_plan(p, next((v for v in p.prices.all() if v.valid_from <= today), None)) for p in plans]


@router.get("/plans/{plan_id}", response={200: PlanDetailOut, **ERRORS}, summary="Get a plan with its price versions")
def get_plan(request, plan_id: int):
    check_perm(request.user, Perm.BILLING_VIEW)
    plan = get_object_or_404(Plan.objects.select_related("service"), pk=plan_id)
    prices = selectors.price_history(plan)
    today = clock.today()
    data = _plan(plan, next((v for v in prices if v.valid_from <= today), None))
    data["switchable_to"] = list(plan.switchable_to.order_by("pk").values_list("pk", flat=True))
    data["prices"] = [_price(p) for p in prices]
    return data


def turbo_data(turbo: Turbo) -> dict:
    return {name: getattr(turbo, name) for name in TurboOut.model_fields}


@router.get("/turbos", response={200: list[TurboWithPlansOut], **ERRORS}, summary="List turbo options")
def list_turbos(request, filters: Query[TurboFilters]):
    check_perm(request.user, Perm.BILLING_VIEW)
    return [
        {**turbo_data(t), "plans": sorted(p.pk for p in t.plans.all())}
        for t in selectors.turbos_with_plans(include_inactive=filters.include_inactive)
    ]


class TimePackageWithPlansOut(Schema):
    id: int
    code: str
    name: str
    seconds: int = Field(description="Time online the package gives")
    validity_days: int = Field(description="Days from the purchase the time can be used in; unused time is lost")
    price: Money
    is_active: bool = Field(description="false: no longer sold; packages already bought stay usable")
    plans: list[int] = Field(description="Time plans whose subscribers may buy it")


@router.get("/time-packages", response={200: list[TimePackageWithPlansOut], **ERRORS}, summary="List time packages")
def list_time_packages(request):
    check_perm(request.user, Perm.BILLING_VIEW)
    return [
        {
            **{name: getattr(p, name) for name in TimePackageWithPlansOut.model_fields if name != "plans"},
            "plans": sorted(plan.pk for plan in p.plans.all()),
        }
        for p in TimePackage.objects.prefetch_related("plans").order_by("price", "name")
    ]
