"""``/api/v1/my/services``, ``/freeze``, ``/unfreeze``, ``/promised-payment``, ``/turbo``: the token's
subscriber's services, each with its terms and amounts first (the services answer, the freeze preview) and
confirmed as the app showed them (``portal.as_seen``: the amount sent back, the other terms when sent, and the
whole freeze preview this token was last shown); 409 ``preview_changed`` when one moved, with nothing written."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Field, Query, Schema

from abonent.api.errors import ErrorBody
from abonent.api.idempotency import idempotent
from abonent.billing import actions as billing
from abonent.billing.api.schemas import MONEY_IN
from abonent.catalog.api import Money
from abonent.core.money import currency

from .. import as_seen, services_data
from ..busy import api_busy_is_503
from ..services_data import FREEZE_TERMS, SeenFreeze, SeenPromised, SeenTurbo, SeenUnfreeze
from . import router
from .plans import (
    ERRORS,
    WRITE_ERRORS,
    MySubscriptionIn,
    money_in,
    owned_subscription,
    preview_changed_is_409,
    subscription_access,
)

# --- schemas ----------------------------------------------------------------------------------------------


class MyFreezePolicyOut(Schema):
    min_days: int
    max_days: int
    yearly_quota_days: int
    fee_per_day: Money
    fee_per_month: Money = Field(description="Per started 30 days")
    activation_fee: Money = Field(description="Once per freeze")


class MyUnfreezePreviewOut(Schema):
    subscription: int
    resumes_on: dt.date
    refund: Money = Field(description="The freeze fee of the days not used, given back")
    charge: Money = Field(description="The plan's fee for the rest of the period, charged")
    net: Money = Field(description="charge − refund; send it back as expected_net")
    balance_after: Money


class MyActiveFreezeOut(Schema):
    starts_on: dt.date
    ends_on: dt.date = Field(description="Service and fees resume on this day")
    unfreeze: MyUnfreezePreviewOut = Field(description="What ending the freeze now does")


class MyFreezeBlockOut(Schema):
    subscription: int
    plan_name: str
    status: str
    policy: MyFreezePolicyOut | None = Field(description="null: the plan cannot be frozen")
    days_left: int = Field(description="Of the yearly quota, this calendar year")
    refusal: str | None = Field(description="Why a freeze cannot be taken now")
    active: MyActiveFreezeOut | None


class MyPromisedPolicyOut(Schema):
    max_amount: Money
    days: int
    fee: Money
    once_per_month: bool
    max_debt: Money = Field(description="Refused while the balance is below −max_debt")


class MyOpenPromisedOut(Schema):
    amount: Money
    fee: Money
    due_on: dt.date = Field(description="The last day; the next payment repays it before")


class MyPromisedBlockOut(Schema):
    policy: MyPromisedPolicyOut | None = Field(description="null: the plan offers no promised payment")
    available: bool
    refusal_code: str | None = Field(description="promised_already_open, promised_once_per_month, …")
    refusal: str | None
    due_on: dt.date | None = Field(description="The last day of one taken today")
    open: MyOpenPromisedOut | None


class MyTurboOptionOut(Schema):
    id: int
    name: str
    download_kbps: int
    upload_kbps: int
    hours: int
    price: Money


class MyTurboActivationOut(Schema):
    subscription: int
    turbo: int
    name: str
    download_kbps: int
    upload_kbps: int
    price: Money
    starts_at: dt.datetime
    ends_at: dt.datetime


class MyTurboBlockOut(Schema):
    subscription: int
    plan_name: str
    offered: list[MyTurboOptionOut]
    active: MyTurboActivationOut | None


class MyServicesOut(Schema):
    currency: str
    balance: Money
    available: Money = Field(description="balance + credit limit")
    freezes: list[MyFreezeBlockOut]
    promised_payment: MyPromisedBlockOut
    turbos: list[MyTurboBlockOut]


class MyFreezePreviewParams(Schema):
    subscription: int
    days: int = Field(ge=1, le=366)


class MyFreezePreviewOut(Schema):
    subscription: int
    days: int
    starts_on: dt.date
    ends_on: dt.date = Field(description="Service and fees resume on this day")
    fee: Money = Field(description="Send it back as expected_fee")
    credit: Money = Field(description="The unused part of the period, given back")
    catch_up: Money = Field(description="Charged first for the days a missed billing run left unbilled (usually 0)")
    net: Money = Field(description="fee − credit + catch_up: what the balance loses (negative: gains)")
    balance_before: Money
    balance_after: Money


class MyFreezeChangedOut(Schema):
    """409: ``preview_changed`` (with ``preview``, nothing done) or ``idempotency_key_reused``."""

    error: ErrorBody
    preview: MyFreezePreviewOut | None = None


class MyUnfreezeChangedOut(Schema):
    error: ErrorBody
    preview: MyUnfreezePreviewOut | None = None


class MyFreezeIn(Schema):
    subscription: int
    days: int = Field(ge=1, le=366)
    expected_fee: str = Field(pattern=MONEY_IN, description="The preview's fee the subscriber agreed to")


class MyUnfreezeIn(Schema):
    subscription: int
    expected_net: str | None = Field(None, pattern=MONEY_IN, description="The unfreeze's net shown; null: not checked")


class MyPromisedIn(Schema):
    amount: str | None = Field(None, pattern=MONEY_IN, description="null: the most the policy allows")
    expected_fee: str | None = Field(None, pattern=MONEY_IN, description="The policy's fee shown; null: not checked")
    expected_days: int | None = Field(None, ge=0, le=3660, description="The policy's days shown; null: not checked")


class MyPromisedOut(Schema):
    amount: Money
    fee: Money
    due_on: dt.date
    balance: Money


class MyTurboIn(Schema):
    subscription: int
    turbo: int
    expected_price: str | None = Field(None, pattern=MONEY_IN, description="The price shown; null: not checked")
    expected_hours: int | None = Field(None, ge=0, le=100_000, description="The hours shown; null: not checked")
    expected_download_kbps: int | None = Field(None, ge=0, le=2**31 - 1, description="null: not checked")
    expected_upload_kbps: int | None = Field(None, ge=0, le=2**31 - 1, description="null: not checked")


# --- answers ----------------------------------------------------------------------------------------------


def _unfreeze(preview) -> dict:
    return {
        "subscription": preview.subscription_id,
        "resumes_on": preview.resumes_on,
        "refund": preview.refund,
        "charge": preview.charge,
        "net": preview.net,
        "balance_after": preview.balance_after,
    }


def _freeze_preview(preview) -> dict:
    return {
        "subscription": preview.subscription_id,
        "days": preview.days,
        "starts_on": preview.starts_on,
        "ends_on": preview.ends_on,
        "fee": preview.fee,
        "credit": preview.credit,
        "catch_up": preview.catch_up,
        "net": preview.net,
        "balance_before": preview.balance_before,
        "balance_after": preview.balance_after,
    }


def _freeze_block(offer: services_data.FreezeOffer) -> dict:
    s, p, active = offer.subscription, offer.policy, offer.active
    policy_fields = ("min_days", "max_days", "yearly_quota_days", "fee_per_day", "fee_per_month", "activation_fee")
    return {
        "subscription": s.pk,
        "plan_name": s.plan.name,
        "status": s.status,
        "policy": {name: getattr(p, name) for name in policy_fields} if p else None,
        "days_left": offer.days_left,
        "refusal": offer.refusal or None,
        "active": {"starts_on": active.starts_on, "ends_on": active.ends_on, "unfreeze": _unfreeze(offer.unfreeze)}
        if active
        else None,
    }


def _promised_block(offer: services_data.PromisedOffer) -> dict:
    p, opened = offer.policy, offer.open
    policy_fields = ("max_amount", "days", "fee", "once_per_month", "max_debt")
    return {
        "policy": {name: getattr(p, name) for name in policy_fields} if p else None,
        "available": offer.available,
        "refusal_code": offer.refusal_code or None,
        "refusal": offer.refusal or None,
        "due_on": offer.due_on,
        "open": {"amount": opened.amount, "fee": opened.fee, "due_on": opened.due_on} if opened else None,
    }


def _activation(activation) -> dict:
    return {
        "subscription": activation.subscription_id,
        "turbo": activation.turbo_id,
        "name": activation.turbo.name,
        "download_kbps": activation.download_kbps,
        "upload_kbps": activation.upload_kbps,
        "price": activation.price,
        "starts_at": activation.starts_at,
        "ends_at": activation.ends_at,
    }


def _turbo_block(offer: services_data.TurboOffer) -> dict:
    option_fields = ("id", "name", "download_kbps", "upload_kbps", "hours", "price")
    return {
        "subscription": offer.subscription.pk,
        "plan_name": offer.subscription.plan.name,
        "offered": [{name: getattr(card.turbo, name) for name in option_fields} for card in offer.offered],
        "active": _activation(offer.active) if offer.active else None,
    }


# --- routes -----------------------------------------------------------------------------------------------


@router.get("/services", response={200: MyServicesOut, **ERRORS}, summary="My freeze, promised payment and turbo")
def my_services(request):
    page = services_data.services_of(request.subscriber)
    return {
        "currency": currency(),
        "balance": page.balance.balance,
        "available": page.balance.available,
        "freezes": [_freeze_block(offer) for offer in page.freezes],
        "promised_payment": _promised_block(page.promised),
        "turbos": [_turbo_block(offer) for offer in page.turbos],
    }


@router.get(
    "/freeze/preview",
    response={200: MyFreezePreviewOut, **ERRORS},
    summary="What freezing a subscription from today for some days costs and gives back",
)
def preview_freeze(request, params: Query[MyFreezePreviewParams]):
    subscription = owned_subscription(request, params.subscription)
    preview = services_data.freeze_preview(subscription, params.days)
    _remember_freeze(request, params, preview)
    return _freeze_preview(preview)


def _remember_freeze(request, params, preview) -> None:
    as_seen.remember(request, "freeze", f"{params.subscription}:{params.days}", as_seen.terms(preview, FREEZE_TERMS))


@router.post(
    "/freeze",
    response={200: MyFreezePreviewOut, **WRITE_ERRORS, 409: MyFreezeChangedOut},
    summary="Freeze from today for some days, at the fee of the preview",
)
@api_busy_is_503
@preview_changed_is_409(_freeze_preview, remember=_remember_freeze)
@idempotent(200, required=True, access=subscription_access)
def freeze(request, payload: MyFreezeIn):
    subscription = owned_subscription(request, payload.subscription)
    subject = f"{payload.subscription}:{payload.days}"
    seen = as_seen.seen_by_app(request, SeenFreeze, "freeze", subject, fee=money_in(payload.expected_fee))
    done = services_data.freeze_as_seen(subscription, payload.days, seen)
    return MyFreezePreviewOut.model_validate(_freeze_preview(done))


@router.post(
    "/unfreeze",
    response={200: MyUnfreezePreviewOut, **WRITE_ERRORS, 409: MyUnfreezeChangedOut},
    summary="End the freeze now: the unused freeze days given back, the plan's fee resumed",
)
@api_busy_is_503
@preview_changed_is_409(_unfreeze)
@idempotent(200, required=True, access=subscription_access)
def unfreeze(request, payload: MyUnfreezeIn):
    subscription = owned_subscription(request, payload.subscription)
    seen = None if payload.expected_net is None else SeenUnfreeze(net=money_in(payload.expected_net))
    done = services_data.unfreeze_as_seen(subscription, seen)
    return MyUnfreezePreviewOut.model_validate(_unfreeze(done))


@router.post(
    "/promised-payment",
    response={201: MyPromisedOut, **WRITE_ERRORS},
    summary="Take a promised payment within the policy of my plan",
)
@api_busy_is_503
@preview_changed_is_409()
@idempotent(201, required=True, access=lambda request, **_kwargs: None)
def take_promised_payment(request, payload: MyPromisedIn):
    seen = SeenPromised(fee=money_in(payload.expected_fee), days=payload.expected_days)
    promised = services_data.take_promised_as_seen(request.subscriber, money_in(payload.amount), seen)
    balance = services_data.balance_now(request.subscriber)
    return MyPromisedOut(amount=promised.amount, fee=promised.fee, due_on=promised.due_on, balance=balance)


@router.post(
    "/turbo",
    response={201: MyTurboActivationOut, **WRITE_ERRORS},
    summary="Buy a turbo: its price is charged now, its speed lasts for its hours",
)
@api_busy_is_503
@preview_changed_is_409()
@idempotent(201, required=True, access=subscription_access)
def buy_turbo(request, payload: MyTurboIn):
    subscription = owned_subscription(request, payload.subscription)
    turbo = services_data.offered_turbo(subscription, payload.turbo)
    if turbo is None:
        message = _("The plan does not offer this turbo.")
        raise ValidationError({"turbo": ValidationError(message, code="turbo_not_offered")})
    seen = SeenTurbo(
        price=money_in(payload.expected_price),
        hours=payload.expected_hours,
        download_kbps=payload.expected_download_kbps,
        upload_kbps=payload.expected_upload_kbps,
    )
    activation = services_data.buy_turbo_as_seen(subscription, turbo, seen)
    return MyTurboActivationOut.model_validate(_activation(activation))


@router.post(
    "/turbo/end",
    response={200: MyTurboActivationOut, **WRITE_ERRORS},
    summary="End the turbo now, before its time; its price is not refunded",
)
@api_busy_is_503
@idempotent(200, access=subscription_access)
def end_turbo(request, payload: MySubscriptionIn):
    subscription = owned_subscription(request, payload.subscription)
    return MyTurboActivationOut.model_validate(_activation(billing.do_end_turbo(subscription, acting_user=None)))
