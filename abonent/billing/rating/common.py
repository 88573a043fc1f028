"""Pure arithmetic of traffic rating: no ORM, no clock. Values in, values out.

The rules (docs/billing-usage-rating.md):
- a GB is ``BYTES_PER_GB`` (10^9, as plans are typed in the console), a MB a thousandth of it;
- per started GB: every GB begun is charged whole (12.3 GB over → 13 GB); per MB likewise per started MB at a
  thousandth of the GB price; per byte: bytes × price / GB, rounded half-up to the kopeck once;
- a period is cut into segments, one per plan in force (a plan change mid-period); each segment is rated on its
  own plan with that plan's included volume prorated by the segment's share of the period's days (rounded down
  to the byte), and the segments' amounts are added.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from abonent.catalog.forms import BYTES_PER_GB
from abonent.catalog.models import OverageRounding, PeriodAnchor, ServiceKind, TrafficPolicy
from abonent.core.money import AMOUNT_LIMIT, KOPECK
from abonent.network.usage import counted_bytes

from .. import calculations as calc

# The largest byte count a rating stores (its bigint columns): sums of saturated days are held here.
MAX_BYTES = (1 << 63) - 1

BYTES_PER_MB = BYTES_PER_GB // 1000
ZERO = Decimal("0.00")
CHARGED_POLICIES = (TrafficPolicy.OVERAGE, TrafficPolicy.BOTH)


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """What rating needs of a plan, read once per run."""

    plan_id: int
    service_id: int
    included_bytes: int | None
    price_per_gb: Decimal | None
    rounding: str
    policy: str
    direction: str
    anniversary: bool
    # Traffic is the subscriber's (``UsageDay``), not a service's: only the internet service counts it, so an
    # IPTV or VoIP plan with traffic terms never charges the same bytes a second time.
    internet: bool = True

    @property
    def charged(self) -> bool:
        """Whether traffic over the included volume is charged on this plan: an internet plan with an overage
        policy, a price and a volume (no volume means unlimited)."""
        return (
            self.internet
            and self.policy in CHARGED_POLICIES
            and self.price_per_gb is not None
            and self.price_per_gb > 0
            and self.included_bytes is not None
        )

    @classmethod
    def of(cls, plan) -> PlanTerms:
        return cls(
            plan.pk,
            plan.service_id,
            plan.included_bytes,
            plan.overage_price_per_gb,
            plan.overage_rounding,
            plan.traffic_policy,
            plan.traffic_direction,
            plan.period_anchor == PeriodAnchor.ANNIVERSARY,
            plan.service.kind == ServiceKind.INTERNET,
        )


def overage(over_bytes: int, price_per_gb: Decimal, rounding: str) -> tuple[int, Decimal]:
    """``(bytes charged for, amount)`` of ``over_bytes`` past the included volume."""
    if over_bytes <= 0 or not price_per_gb:
        return 0, ZERO
    if rounding == OverageRounding.PER_BYTE:
        return over_bytes, _round(Decimal(over_bytes) * price_per_gb / BYTES_PER_GB)
    unit = BYTES_PER_MB if rounding == OverageRounding.PER_MB else BYTES_PER_GB
    units = -(-over_bytes // unit)
    return units * unit, _round(Decimal(units) * price_per_gb * unit / BYTES_PER_GB)


def _round(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


def usage_period(day: dt.date, *, anniversary_day: int | None) -> tuple[dt.date, dt.date]:
    """The usage period ``[start, end)`` containing ``day``: the calendar month, or the month from the
    activation day for anniversary plans (the same periods the monthly fee is charged for)."""
    return calc.monthly_period(day, anniversary_day=anniversary_day)


def periods_ended(as_of: dt.date, lookback_days: int, *, anniversary_day: int | None) -> list[tuple[dt.date, dt.date]]:
    """The usage periods that ended by ``as_of`` (their last day is before it) and at most ``lookback_days``
    before it (``end ≥ as_of − lookback_days``): the ones a run on ``as_of`` rates or re-checks, oldest first."""
    periods = []
    earliest = as_of - dt.timedelta(days=lookback_days)
    day = as_of - dt.timedelta(days=1)
    while True:
        start, end = usage_period(day, anniversary_day=anniversary_day)
        if end < earliest:
            break
        if end <= as_of:
            periods.append((start, end))
        day = start - dt.timedelta(days=1)
    return periods[::-1]


def segments(
    start: dt.date, end: dt.date, plan_at_start: int, changes: list[tuple[dt.date, int]]
) -> list[tuple[int, dt.date, dt.date]]:
    """``[(plan, from, until)]`` covering ``[start, end)``: ``changes`` are ``(local day, new plan)`` in order;
    the day of a change belongs to the new plan."""
    result = []
    plan, since = plan_at_start, start
    for day, new_plan in changes:
        if day <= start:
            plan = new_plan
            continue
        if day >= end:
            break
        if day > since:
            result.append((plan, since, day))
        plan, since = new_plan, day
    result.append((plan, since, end))
    return result


def prorated_included(included: int, part_days: int, period_days: int) -> int:
    """A segment's share of the included volume, rounded down to the byte (never more than the plan's)."""
    if part_days >= period_days:
        return included
    return included * part_days // period_days


@dataclass(frozen=True, slots=True)
class Rated:
    """One period (or the estimate of one) rated: what the card, the portal and the ledger show."""

    used: int
    included: int
    over: int
    charged_bytes: int
    amount: Decimal

    @property
    def absurd(self) -> bool:
        """Counters at their limit or an amount past what a charge can hold: parked for a person, not charged."""
        return self.used >= MAX_BYTES or self.amount > AMOUNT_LIMIT


def rate_one(terms: PlanTerms, days: int, period_days: int, input_octets: int, output_octets: int) -> Rated:
    """``rate_parts`` of a period on one plan (the rating run's common case, without its lists)."""
    counted = min(counted_bytes(terms.direction, input_octets, output_octets), MAX_BYTES)
    if not terms.charged:
        return Rated(counted, 0, 0, 0, ZERO)
    included = prorated_included(terms.included_bytes, days, period_days)
    over = max(0, counted - included)
    charged, amount = overage(over, terms.price_per_gb, terms.rounding)
    charged = min(charged, MAX_BYTES)
    return Rated(counted, included, over, charged, amount)


def rate_parts(parts: list[tuple[PlanTerms, int, int, int]], period_days: int) -> Rated:
    """Rate a period's segments: ``(terms, days in the segment, input, output)`` each."""
    used = included = over = charged = 0
    amount = ZERO
    for terms, days, input_octets, output_octets in parts:
        counted = counted_bytes(terms.direction, input_octets, output_octets)
        used += counted
        if not terms.charged:
            continue
        part_included = prorated_included(terms.included_bytes, days, period_days)
        included += part_included
        part_over = max(0, counted - part_included)
        over += part_over
        part_charged, part_amount = overage(part_over, terms.price_per_gb, terms.rounding)
        charged += part_charged
        amount += part_amount
    # Saturated days sum past the bigint: held at its limit (and then parked by the run, ``Rated.absurd``).
    return Rated(min(used, MAX_BYTES), min(included, MAX_BYTES), min(over, MAX_BYTES), min(charged, MAX_BYTES), amount)
