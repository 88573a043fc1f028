"""Traffic of a subscription through the API: the current period's estimate and the periods rated."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema

from abonent.catalog.api import Money, Rate
from abonent.core.money import currency
from abonent.staff.permissions import Perm

from ..rating.estimate import rated_periods, usage_estimate
from .common import ERRORS, _subscription, router


class UsageCurrentOut(Schema):
    period_start: dt.date
    period_end: dt.date = Field(description="The day after the period's last day; rated on that day")
    used_bytes: int = Field(description="Traffic so far, counted in the plan's direction")
    included_bytes: int | None = Field(description="Included volume of the period (prorated); null: unlimited")
    over_bytes: int
    charged_bytes: int = Field(description="Bytes over, rounded as the plan charges them (whole GB or MB)")
    amount: Money = Field(description="What the period's end will charge if no more traffic is used")
    charged: bool = Field(description="Whether traffic over the included volume is charged on the plan")
    price_per_gb: Rate | None
    rounding: str = Field(description="per_gb, per_mb or per_byte")
    direction: str = Field(description="both, download, upload or greater")
    policy: str = Field(description="fup, overage or both")


class UsageRatedOut(Schema):
    period_start: dt.date
    period_end: dt.date
    used_bytes: int
    included_bytes: int
    charged_bytes: int
    amount: Money = Field(description="Charged for the period, late-usage adjustments included")
    revision: int = Field(description="Adjustments charged after the first rating")
    rated_at: dt.datetime
    updated_at: dt.datetime


class UsageOut(Schema):
    subscription_id: int
    currency: str
    current: UsageCurrentOut | None = Field(description="null: the plan counts no traffic")
    rated: list[UsageRatedOut] = Field(description="Rated periods, newest first (the last 12)")


@router.get(
    "/subscriptions/{subscription_id}/usage",
    response={200: UsageOut, **ERRORS},
    summary="A subscription's traffic: the current period's estimate and the periods rated",
)
def get_usage(request, subscription_id: int):
    subscription = _subscription(request, subscription_id, Perm.BILLING_VIEW)
    estimate = usage_estimate(subscription)
    return {
        "subscription_id": subscription.pk,
        "currency": currency(),
        "current": None
        if estimate is None
        else {name: getattr(estimate, name) for name in UsageCurrentOut.model_fields if name != "period_end"}
        | {"period_end": estimate.period_end},
        "rated": [{name: getattr(r, name) for name in UsageRatedOut.model_fields} for r in rated_periods(subscription)],
    }
