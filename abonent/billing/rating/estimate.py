"""What the card, the portal and the API show of traffic: the current period so far (an estimate of what its
end will charge, by the rules the rating run applies) and the periods already rated."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from abonent.catalog.models import Plan, ServiceKind
from abonent.core import clock
from abonent.network.usage import span_usage

from ..models import Subscription, UsageRating
from .common import BYTES_PER_GB, PlanTerms, rate_parts, usage_period
from .history import Sub, as_date, period_parts, plan_changes, uncovered


@dataclass(frozen=True)
class UsageEstimate:
    """The current usage period of a subscription: traffic so far, counted in its plan's direction, and what
    the period's end would charge if no more were used."""

    subscription_id: int
    period_start: dt.date
    period_end: dt.date
    used_bytes: int
    included_bytes: int | None  # None: unlimited
    over_bytes: int
    charged_bytes: int
    amount: Decimal
    charged: bool  # whether the plan charges traffic over the included volume
    price_per_gb: Decimal | None
    rounding: str
    direction: str
    policy: str

    @property
    def period_last_day(self) -> dt.date:
        return self.period_end - dt.timedelta(days=1)

    @property
    def percent_used(self) -> int:
        """Of the included volume, for a progress bar (0–100)."""
        if not self.included_bytes:
            return 100 if self.used_bytes else 0
        return min(100, self.used_bytes * 100 // self.included_bytes)

    @property
    def used_gb(self) -> Decimal:
        return _gb(self.used_bytes)

    @property
    def included_gb(self) -> Decimal | None:
        return None if self.included_bytes is None else _gb(self.included_bytes)

    @property
    def over_gb(self) -> Decimal:
        return _gb(self.over_bytes)

    @property
    def charged_gb(self) -> Decimal:
        return _gb(self.charged_bytes)


def _gb(size: int) -> Decimal:
    return (Decimal(size) / BYTES_PER_GB).quantize(Decimal("0.1"))


def usage_estimate(subscription: Subscription, today: dt.date | None = None) -> UsageEstimate | None:
    """The current period's estimate, or None when the subscription's plan counts no traffic (no included volume
    and nothing charged) or it is not served today."""
    today = today or clock.today()
    plan = subscription.plan
    current = PlanTerms.of(plan)
    anchor = subscription.anchor_day if current.anniversary else None
    start, end = usage_period(today, anniversary_day=anchor)
    sub = Sub(
        subscription.pk,
        subscription.subscriber_id,
        subscription.plan_id,
        subscription.service_id,
        subscription.anchor_day,
        subscription.started_on,
        subscription.ended_on,
    )
    # The run's pieces: the days no earlier rating (on another anchor) covers, of the days this subscription
    # counts (not a rival internet subscription's).
    rated = list(
        UsageRating.objects.filter(subscription=subscription, period_start__lt=end, period_end__gt=start).values_list(
            "period_start", "period_end"
        )
    )
    history = plan_changes([subscription.pk]).get(subscription.pk, [])
    rivals = _rivals(sub, start, end) if current.internet else []
    parts = [part for a, b in uncovered(start, end, rated) for part in period_parts(sub, a, b, history, rivals)]
    if not parts:
        return None
    plans = Plan.objects.select_related("service").in_bulk({plan_id for plan_id, _a, _b in parts})
    terms = {pk: PlanTerms.of(p) for pk, p in plans.items()}
    # Decided from the period's segments, not the plan now: a move to an unlimited plan mid-period still leaves
    # the metered days to be charged at the period's end.
    if not any(terms[p].charged or plans[p].included_bytes is not None for p, _a, _b in parts):
        return None
    usage = span_usage(((n, subscription.subscriber_id, a, b) for n, (_p, a, b) in enumerate(parts)))
    rated = rate_parts(
        [(terms[plan_id], (b - a).days, *usage.get(n, (0, 0))) for n, (plan_id, a, b) in enumerate(parts)],
        (end - start).days,
    )
    charged = any(terms[plan_id].charged for plan_id, _a, _b in parts)
    # A FUP plan's volume as it stands, for the "used of included" line.
    included = rated.included if charged else plan.included_bytes
    return UsageEstimate(
        subscription_id=subscription.pk,
        period_start=start,
        period_end=end,
        used_bytes=rated.used,
        included_bytes=included,
        over_bytes=rated.over if charged else max(0, rated.used - (included or 0)),
        charged_bytes=rated.charged_bytes,
        amount=rated.amount,
        charged=charged,
        price_per_gb=plan.overage_price_per_gb,
        rounding=plan.overage_rounding,
        direction=plan.traffic_direction,
        policy=plan.traffic_policy,
    )


def _rivals(sub: Sub, start: dt.date, end: dt.date) -> list[Sub]:
    """The subscriber's other internet subscriptions served in the period (``history.owned_ranges``)."""
    others = (
        Subscription.objects.filter(
            subscriber_id=sub.subscriber_id, service__kind=ServiceKind.INTERNET, started_on__lt=end
        )
        .exclude(pk=sub.id)
        .exclude(ended_on__lt=start)
        .values_list("id", "subscriber_id", "plan_id", "service_id", "anchor_day", "started_on", "ended_on")
    )
    return [Sub(pk, s, p, v, a, as_date(b), as_date(e) if e else None) for pk, s, p, v, a, b, e in others]


def rated_periods(subscription: Subscription, *, limit: int = 12) -> list[UsageRating]:
    """The subscription's rated periods, newest first."""
    return list(UsageRating.objects.filter(subscription=subscription).order_by("-period_start")[:limit])
