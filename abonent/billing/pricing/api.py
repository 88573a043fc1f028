"""Pricing through the API: a subscription's effective price, individual and group prices, promotions and
bundles. Overrides are never edited: ``end`` sets ``valid_until``. Writes take an ``Idempotency-Key``."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from abonent.api.errors import ErrorOut
from abonent.api.idempotency import idempotent
from abonent.catalog.api import Money
from abonent.catalog.models import ChargeMode, Plan
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.models import SubscriberGroup

from ..api.common import _fields_as_sent, _plan, _subscription
from ..api.schemas import MONEY_IN, EffectivePriceOut
from . import actions, selectors
from .models import Bundle, PriceOverride, Promotion

router = Router(tags=["pricing"])
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
WRITE_ERRORS = {400: ErrorOut, 409: ErrorOut, **ERRORS}


class OverrideOut(Schema):
    id: int
    subscription_id: int | None
    group_id: int | None
    plan_id: int
    monthly_fee: Money
    daily_fee: Money | None
    valid_from: dt.date
    valid_until: dt.date | None
    reason: str


class OverrideIn(Schema):
    plan_id: int
    monthly_fee: str = Field(pattern=MONEY_IN)
    daily_fee: str | None = Field(None, pattern=MONEY_IN)
    valid_from: dt.date
    valid_until: dt.date | None = None
    reason: str = Field(max_length=500)


class EndIn(Schema):
    valid_until: dt.date = Field(description="The last day the price is in force")
    reason: str = Field("", max_length=500)


class PromotionOut(Schema):
    id: int
    name: str
    kind: str
    value: Money
    stacking: str
    plan_ids: list[int]
    group_ids: list[int]
    bundle_id: int | None
    first_months: int | None
    starts_on: dt.date | None
    ends_on: dt.date | None
    is_active: bool


class PromotionIn(Schema):
    name: str = Field(max_length=200)
    kind: str = Field(description="percent | amount")
    value: str = Field(pattern=MONEY_IN)
    stacking: str = Field("best", description="best | cumulative")
    plan_ids: list[int] = []
    group_ids: list[int] = []
    bundle_id: int | None = None
    first_months: int | None = None
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None


class BundleItemOut(Schema):
    plan_id: int
    share: Money


class BundleOut(Schema):
    id: int
    name: str
    total: Money
    valid_from: dt.date
    valid_until: dt.date | None
    items: list[BundleItemOut]


class BundleIn(Schema):
    name: str = Field(max_length=200)
    plan_ids: list[int]
    total: str = Field(pattern=MONEY_IN)
    shares: list[str] | None = Field(None, description="Per plan, summing to the total; by list prices if omitted")
    valid_from: dt.date
    valid_until: dt.date | None = None
    reason: str = Field("", max_length=500)


def _override(o: PriceOverride) -> dict:
    return {name: getattr(o, name) for name in OverrideOut.model_fields}


def _promotion(p: Promotion) -> dict:
    return {
        **{name: getattr(p, name) for name in PromotionOut.model_fields if name not in ("plan_ids", "group_ids")},
        "plan_ids": sorted(x.pk for x in p.plans.all()),
        "group_ids": sorted(x.pk for x in p.groups.all()),
    }


def _bundle(b: Bundle) -> dict:
    items = list(b.items.all())
    return {
        "id": b.pk,
        "name": b.name,
        "total": sum((i.share for i in items), 0),
        "valid_from": b.valid_from,
        "valid_until": b.valid_until,
        "items": [{"plan_id": i.plan_id, "share": i.share} for i in items],
    }


def _managed_subscription(request, subscription_id: int, **_kwargs):
    return _subscription(request, subscription_id, Perm.PRICING_MANAGE)


def _pricing_manager(request, **_kwargs):
    check_perm(request.user, Perm.PRICING_MANAGE)


def _group(group_id: int) -> SubscriberGroup:
    return get_object_or_404(SubscriberGroup, pk=group_id)


def _many(model, ids: list[int], field: str):
    found = list(model.objects.filter(pk__in=ids))
    if len(found) != len(set(ids)):
        raise ValidationError({field: ValidationError(_("No such record."), code="does_not_exist")})
    return found


@router.get(
    "/subscriptions/{subscription_id}/price",
    response={200: EffectivePriceOut, **ERRORS},
    summary="The price a subscription pays now and where it comes from",
)
def get_price(request, subscription_id: int, day: dt.date | None = None):
    subscription = _subscription(request, subscription_id, Perm.BILLING_VIEW)
    if subscription.plan.charge_mode == ChargeMode.TIME:
        raise ValidationError(
            {"plan": ValidationError(_("A plan charged by time online has no recurring fee."), code="plan_time_rated")}
        )
    out = selectors.price_data(subscription, day)
    if out is None:
        raise ValidationError(
            {"day": ValidationError(_("The plan has no price on this date."), code="plan_without_price")}
        )
    return out


@router.get(
    "/subscriptions/{subscription_id}/price-overrides",
    response={200: list[OverrideOut], **ERRORS},
    summary="A subscription's individual prices, ended ones included",
)
def list_subscription_overrides(request, subscription_id: int):
    subscription = _subscription(request, subscription_id, Perm.BILLING_VIEW)
    return [_override(o) for o in selectors.overrides_of(subscription)]


@router.post(
    "/subscriptions/{subscription_id}/price-overrides",
    response={201: OverrideOut, **WRITE_ERRORS},
    summary="Give a subscription an individual price of a plan",
)
@idempotent(201, access=_managed_subscription)
def add_subscription_override(request, subscription_id: int, payload: OverrideIn):
    subscription = _managed_subscription(request, subscription_id)
    with _fields_as_sent(plan="plan_id"):
        override = actions.do_set_price_override(
            subscription=subscription,
            plan=_plan(payload.plan_id),
            monthly_fee=payload.monthly_fee,
            daily_fee=payload.daily_fee,
            valid_from=payload.valid_from,
            valid_until=payload.valid_until,
            reason=payload.reason,
            acting_user=request.user,
        )
    return _override(override)


@router.get(
    "/subscriber-groups/{group_id}/price-overrides",
    response={200: list[OverrideOut], **ERRORS},
    summary="A subscriber group's prices",
)
def list_group_overrides(request, group_id: int):
    check_perm(request.user, Perm.BILLING_VIEW)
    return [_override(o) for o in selectors.group_overrides().filter(group=_group(group_id))]


@router.post(
    "/subscriber-groups/{group_id}/price-overrides",
    response={201: OverrideOut, **WRITE_ERRORS},
    summary="Give a subscriber group's members a price of a plan",
)
@idempotent(201, access=_pricing_manager)
def add_group_override(request, group_id: int, payload: OverrideIn):
    check_perm(request.user, Perm.PRICING_MANAGE)
    with _fields_as_sent(plan="plan_id"):
        override = actions.do_set_price_override(
            group=_group(group_id),
            plan=_plan(payload.plan_id),
            monthly_fee=payload.monthly_fee,
            daily_fee=payload.daily_fee,
            valid_from=payload.valid_from,
            valid_until=payload.valid_until,
            reason=payload.reason,
            acting_user=request.user,
        )
    return _override(override)


def _visible_override(request, override_id: int, **_kwargs) -> PriceOverride:
    check_perm(request.user, Perm.PRICING_MANAGE)
    override = get_object_or_404(PriceOverride, pk=override_id)
    if override.subscription_id:
        _subscription(request, override.subscription_id, Perm.PRICING_MANAGE)  # 404 for another branch
    return override


@router.post(
    "/price-overrides/{override_id}/end",
    response={200: OverrideOut, **WRITE_ERRORS},
    summary="End an individual or group price on a day (its last)",
)
@idempotent(200, access=_visible_override)
def end_override(request, override_id: int, payload: EndIn):
    override = _visible_override(request, override_id)
    override = actions.do_end_price_override(
        override, valid_until=payload.valid_until, acting_user=request.user, reason=payload.reason
    )
    return _override(override)


@router.get("/promotions", response={200: list[PromotionOut], **ERRORS}, summary="Promotions")
def list_promotions(request):
    check_perm(request.user, Perm.BILLING_VIEW)
    return [_promotion(p) for p in selectors.promotions()]


@router.post("/promotions", response={201: PromotionOut, **WRITE_ERRORS}, summary="Start a promotion")
@idempotent(201, access=_pricing_manager)
def create_promotion(request, payload: PromotionIn):
    check_perm(request.user, Perm.PRICING_MANAGE)
    bundle = None
    if payload.bundle_id is not None:
        bundle = Bundle.objects.filter(pk=payload.bundle_id).first()
        if bundle is None:
            raise ValidationError({"bundle_id": ValidationError(_("No such bundle."), code="does_not_exist")})
    promotion = actions.do_create_promotion(
        name=payload.name,
        kind=payload.kind,
        value=payload.value,
        stacking=payload.stacking,
        plans=_many(Plan, payload.plan_ids, "plan_ids"),
        groups=_many(SubscriberGroup, payload.group_ids, "group_ids"),
        bundle=bundle,
        first_months=payload.first_months,
        starts_on=payload.starts_on,
        ends_on=payload.ends_on,
        acting_user=request.user,
    )
    return _promotion(promotion)


@router.post(
    "/promotions/{promotion_id}/end",
    response={200: PromotionOut, **WRITE_ERRORS},
    summary="Stop a promotion for the periods charged from now on",
)
@idempotent(200, access=_pricing_manager)
def end_promotion(request, promotion_id: int):
    check_perm(request.user, Perm.PRICING_MANAGE)
    promotion = actions.do_end_promotion(get_object_or_404(Promotion, pk=promotion_id), acting_user=request.user)
    return _promotion(promotion)


@router.get("/bundles", response={200: list[BundleOut], **ERRORS}, summary="Bundles")
def list_bundles(request):
    check_perm(request.user, Perm.BILLING_VIEW)
    return [_bundle(b) for b in selectors.bundles()]


@router.post("/bundles", response={201: BundleOut, **WRITE_ERRORS}, summary="Create a bundle of plans")
@idempotent(201, access=_pricing_manager)
def create_bundle(request, payload: BundleIn):
    check_perm(request.user, Perm.PRICING_MANAGE)
    plans = {p.pk: p for p in _many(Plan, payload.plan_ids, "plan_ids")}
    bundle = actions.do_create_bundle(
        name=payload.name,
        plans=[plans[pk] for pk in payload.plan_ids],
        total=payload.total,
        shares=payload.shares,
        valid_from=payload.valid_from,
        valid_until=payload.valid_until,
        reason=payload.reason,
        acting_user=request.user,
    )
    return _bundle(bundle)
