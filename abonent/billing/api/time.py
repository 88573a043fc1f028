"""Time plans through the API: a subscription's time (used, left, packages, rated sessions) and buying a time
package (``Idempotency-Key`` required: it moves money)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Field, Schema

from abonent.api.idempotency import idempotent
from abonent.catalog.api import Money
from abonent.catalog.models import ChargeMode, TimePackage
from abonent.staff.permissions import Perm

from .. import actions
from ..models import TimePackagePurchase
from ..rating.time_summary import time_packages_offered, time_summary
from .common import ERRORS, WRITE_ERRORS, _fields_as_sent, _managed_subscription, _subscription, router


class TimePackageOut(Schema):
    id: int
    code: str
    name: str
    seconds: int = Field(description="Time online the package gives")
    validity_days: int = Field(description="Days from the purchase the time can be used in; unused time is lost")
    price: Money


class TimePackagePurchaseOut(Schema):
    id: int
    subscription_id: int
    package: TimePackageOut
    seconds: int = Field(description="As bought: a later change of the package does not change it")
    used_seconds: int
    left_seconds: int
    price: Money = Field(description="Charged from the balance when bought")
    starts_at: dt.datetime
    expires_at: dt.datetime


class TimeRatingOut(Schema):
    session_id: int
    part_start: dt.datetime
    part_end: dt.datetime
    day: dt.date
    seconds: int = Field(description="Time online in this part of the session")
    package_seconds: int = Field(description="Of it, taken from packages")
    units: int = Field(description="Started units charged in this part")
    amount: Money
    charge_id: int | None
    skipped: str = Field(description="Not empty: why the session was not rated")


class SubscriptionTimeOut(Schema):
    subscription_id: int
    unit: str = Field(description="minute or hour: every started unit is charged")
    unit_price: Money | None = Field(description="Today's price per unit; null: none")
    free_minutes: int = Field(description="Free at the start of every session")
    minimum_charge: Money = Field(description="The least a session costs once it costs anything")
    period_start: dt.date
    period_end: dt.date = Field(description="The day after the current billing period")
    used_seconds: int = Field(description="Time online rated in the current period")
    charged: Money = Field(description="What that time cost in money")
    package_seconds_left: int
    seconds_left: int | None = Field(description="What a session starting now may last; null: time costs nothing")
    packages: list[TimePackagePurchaseOut] = Field(description="Packages not expired, the soonest to expire first")
    offered: list[TimePackageOut] = Field(description="Packages the plan sells, cheapest first")
    history: list[TimeRatingOut] = Field(description="The latest rated parts of sessions, newest first")


class TimePackageIn(Schema):
    package_id: int
    reason: str = Field("", max_length=500)


def _package(package_id: int) -> TimePackage:
    package = TimePackage.objects.filter(pk=package_id).first()
    if package is None:
        raise ValidationError({"package_id": ValidationError(_("No such time package."), code="does_not_exist")})
    return package


def package_data(package: TimePackage) -> dict:
    return {name: getattr(package, name) for name in TimePackageOut.model_fields}


def purchase_data(purchase: TimePackagePurchase) -> dict:
    return {
        **{name: getattr(purchase, name) for name in TimePackagePurchaseOut.model_fields if name != "package"},
        "package": package_data(purchase.package),
    }


@router.get(
    "/subscriptions/{subscription_id}/time",
    response={200: SubscriptionTimeOut, **ERRORS},
    summary="A time plan's subscription: time used this period, time left, packages and rated sessions",
)
def get_time(request, subscription_id: int):
    subscription = _subscription(request, subscription_id, Perm.BILLING_VIEW)
    if subscription.plan.charge_mode != ChargeMode.TIME:
        raise ValidationError(_("The plan is not charged by time online."), code="plan_not_time")
    summary = time_summary(subscription)
    return {
        "subscription_id": subscription.pk,
        **{
            name: getattr(summary, name)
            for name in (
                "unit",
                "unit_price",
                "free_minutes",
                "minimum_charge",
                "period_start",
                "period_end",
                "used_seconds",
                "charged",
                "package_seconds_left",
                "seconds_left",
            )
        },
        "packages": [purchase_data(p) for p in summary.packages],
        "offered": [package_data(p) for p in time_packages_offered(subscription)],
        "history": [{name: getattr(r, name) for name in TimeRatingOut.model_fields} for r in summary.history],
    }


@router.post(
    "/subscriptions/{subscription_id}/time-packages",
    response={201: TimePackagePurchaseOut, **WRITE_ERRORS},
    summary="Buy a time package: its price is charged from the balance now, its time is used before money",
)
@idempotent(201, required=True, access=_managed_subscription)
def buy_time_package(request, subscription_id: int, payload: TimePackageIn):
    subscription = _managed_subscription(request, subscription_id)
    with _fields_as_sent(package="package_id"):
        purchase = actions.do_buy_time_package(
            subscription, package=_package(payload.package_id), acting_user=request.user, reason=payload.reason
        )
    return TimePackagePurchaseOut.model_validate(purchase_data(purchase))
