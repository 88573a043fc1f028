"""What a subscription pays for a period: the effective monthly (or daily) fee and the discount on it.

Precedence of the fee (docs/billing-pricing.md): the subscription's own price > its subscriber's groups' price
(the lowest when in several groups) > a bundle's share (while the subscriber holds every member plan) > the
plan's list price (``PlanPrice``). The price in force on a period's first day prices the whole period, as the
list price does.

Discount: the promotions that target the fee are split by their stacking rule; the cumulative ones add up, the
best-of ones never combine, and the larger of "the best single best-of" and "the sum of the cumulative ones"
is given, never more than the fee. A percentage is of the period's whole fee, rounded half up to the kopeck; a
fixed amount is per charged period (a month, or a day of a daily plan).

The pure part (``effective_price``, ``discount``) is what the billing run, the proration of actions and the
previews all call. ``RunPricing`` loads the rules once per run and, per chunk, the few subscriptions they touch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from abonent.core.money import KOPECK

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Override:
    id: int
    plan_id: int
    monthly_fee: Decimal
    daily_fee: Decimal | None
    valid_from: dt.date
    valid_until: dt.date | None  # the last day, inclusive
    reason: str
    source: str  # "subscription" | "group"
    group_id: int | None = None

    def covers(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


@dataclass(frozen=True, slots=True)
class BundleRule:
    id: int
    name: str
    shares: dict  # plan id → monthly share
    valid_from: dt.date
    valid_until: dt.date | None

    def covers(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


@dataclass(frozen=True, slots=True)
class PromotionRule:
    id: int
    name: str
    percent: bool
    value: Decimal
    cumulative: bool
    plan_ids: frozenset | None = None  # None: every plan
    group_ids: frozenset | None = None  # None: everyone
    bundle_id: int | None = None
    first_months: int | None = None
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None

    @property
    def personal(self) -> bool:
        """Whether it depends on who the subscriber is (groups, bundle, subscription age), not only on the plan."""
        return self.group_ids is not None or self.bundle_id is not None or self.first_months is not None

    def targets_plan(self, plan_id: int) -> bool:
        return self.plan_ids is None or plan_id in self.plan_ids

    def applies(
        self,
        plan_id: int,
        start: dt.date,
        *,
        group_ids: frozenset = frozenset(),
        bundle_id: int | None = None,
        started_on: dt.date | None = None,
    ) -> bool:
        if not self.targets_plan(plan_id):
            return False
        if self.starts_on is not None and start < self.starts_on:
            return False
        if self.ends_on is not None and start > self.ends_on:
            return False
        if self.group_ids is not None and not (self.group_ids & group_ids):
            return False
        if self.bundle_id is not None and bundle_id != self.bundle_id:
            return False
        if self.first_months is not None:
            from ..calculations import add_months

            if started_on is None or start >= add_months(started_on, self.first_months):
                return False
        return True

    def amount(self, fee: Decimal) -> Decimal:
        """This promotion's discount on a fee, never more than the fee."""
        off = (fee * self.value / HUNDRED).quantize(KOPECK, rounding=ROUND_HALF_UP) if self.percent else self.value
        return min(off, fee)


def discount(fee: Decimal, promotions) -> Decimal:
    """The discount on ``fee`` from the promotions that apply: the best single best-of one or the sum of the
    cumulative ones, whichever is larger, capped at the fee (a discount never makes a fee negative)."""
    if fee <= 0:
        return ZERO
    best = max((p.amount(fee) for p in promotions if not p.cumulative), default=ZERO)
    cumulative = sum((p.amount(fee) for p in promotions if p.cumulative), ZERO)
    return min(max(best, cumulative), fee)


@dataclass(frozen=True, slots=True)
class Effective:
    """The price a subscription's plan has on a day, and where it comes from."""

    monthly_fee: Decimal
    daily_fee: Decimal | None
    source: str  # "subscription" | "group" | "bundle" | "plan"
    source_id: int | None = None
    reason: str = ""
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    bundle_id: int | None = None

    @property
    def is_list_price(self) -> bool:
        return self.source == "plan"


def effective_price(price, plan_id: int, day: dt.date, *, own=(), groups=(), bundles=()) -> Effective:
    """The fee of ``plan_id`` on ``day`` for a subscription with these overrides (its own, its groups') and
    holding these bundles; ``price`` is the plan's list ``PlanPrice`` on that day."""
    mine = [o for o in own if o.plan_id == plan_id and o.covers(day)]
    if mine:
        o = max(mine, key=lambda o: (o.valid_from, o.id))
        daily = o.daily_fee if o.daily_fee is not None else price.daily_fee
        return Effective(o.monthly_fee, daily, "subscription", o.id, o.reason, o.valid_from, o.valid_until)
    theirs = [o for o in groups if o.plan_id == plan_id and o.covers(day)]
    if theirs:
        o = min(theirs, key=lambda o: (o.monthly_fee, o.daily_fee or ZERO, o.id))
        daily = o.daily_fee if o.daily_fee is not None else price.daily_fee
        return Effective(o.monthly_fee, daily, "group", o.id, o.reason, o.valid_from, o.valid_until)
    held = [b for b in bundles if plan_id in b.shares and b.covers(day)]
    if held:
        b = min(held, key=lambda b: (b.shares[plan_id], b.id))
        return Effective(
            b.shares[plan_id], price.daily_fee, "bundle", b.id, b.name, b.valid_from, b.valid_until, bundle_id=b.id
        )
    return Effective(price.monthly_fee, price.daily_fee, "plan", price.pk, "", price.valid_from, None)


@dataclass
class Context:
    """What the rules need to know of one subscription beyond its plan."""

    own: list = field(default_factory=list)
    groups: list = field(default_factory=list)  # the group overrides of its subscriber's groups
    group_ids: frozenset = frozenset()
    bundles: list = field(default_factory=list)  # the bundles its subscriber holds every member plan of
    started_on: dt.date | None = None


class RunPricing:
    """The pricing rules, loaded once (a billing run, a preview), and the contexts of the subscriptions they
    touch, loaded per chunk with a query per kind of rule that exists (none when there are no rules)."""

    def __init__(self):
        from .models import PriceOverride

        # One query when there are no rules at all (most installations, most of the time): the portal's home and
        # the billing run's default path pay nothing more for pricing.
        self.empty = not _any_rules()
        if self.empty:
            self.promotions, self.bundles, self.group_overrides, self.has_own = [], [], {}, False
            self.universal, self.personal = [], []
            return
        self.promotions = load_promotions()
        self.bundles = load_bundles()
        self.group_overrides: dict[int, list[Override]] = {}
        for o in PriceOverride.objects.filter(group__isnull=False):
            self.group_overrides.setdefault(o.group_id, []).append(override_of(o))
        self.has_own = PriceOverride.objects.filter(subscription__isnull=False).exists()
        self.universal = [p for p in self.promotions if not p.personal]
        self.personal = [p for p in self.promotions if p.personal]
        group_plans = {o.plan_id for rows in self.group_overrides.values() for o in rows}
        self.group_ids = set(self.group_overrides)
        self.all_plans_grouped = False
        self.first_month_plans: set | None = set()
        for p in self.personal:
            if p.group_ids is not None:
                self.group_ids |= p.group_ids
                if p.plan_ids is None:
                    self.all_plans_grouped = True
                else:
                    group_plans |= p.plan_ids
            if p.first_months is not None and self.first_month_plans is not None:
                self.first_month_plans = None if p.plan_ids is None else self.first_month_plans | p.plan_ids
        self.group_plans = group_plans
        self.bundle_plans = {plan_id for b in self.bundles for plan_id in b.shares}
        self.empty = not (self.promotions or self.bundles or self.group_overrides or self.has_own)

    def universal_discount(self, plan_id: int, start: dt.date, fee: Decimal) -> Decimal:
        if not self.universal:
            return ZERO
        return discount(fee, [p for p in self.universal if p.applies(plan_id, start)])

    def promotions_for(self, plan_id: int, start: dt.date, ctx: Context, bundle_id: int | None) -> list:
        return [
            p
            for p in self.promotions
            if p.applies(plan_id, start, group_ids=ctx.group_ids, bundle_id=bundle_id, started_on=ctx.started_on)
        ]

    def contexts(self, rows) -> dict[int, Context]:
        """The contexts of the subscriptions among ``rows`` (``(id, subscriber id, plan id, pending plan id)``)
        that a rule other than a plan-wide promotion may touch; the others are priced as the plan is."""
        if self.empty or not rows:
            return {}
        from abonent.subscribers.models import Subscriber

        from ..models import Subscription, SubscriptionStatus
        from .models import PriceOverride

        found: dict[int, Context] = {}

        def ctx(sid: int) -> Context:
            return found.setdefault(sid, Context())

        def on(plans) -> list:
            if plans is None:
                return rows
            return [r for r in rows if r[2] in plans or (r[3] is not None and r[3] in plans)]

        if self.has_own:
            low, high = min(r[0] for r in rows), max(r[0] for r in rows)
            wanted = {r[0] for r in rows}
            for o in PriceOverride.objects.filter(subscription_id__gte=low, subscription_id__lte=high):
                if o.subscription_id in wanted:
                    ctx(o.subscription_id).own.append(override_of(o))
        if self.group_ids:
            grouped = rows if self.all_plans_grouped else on(self.group_plans)
            if grouped:
                memberships: dict[int, set] = {}
                for subscriber_id, group_id in Subscriber.groups.through.objects.filter(
                    subscribergroup_id__in=self.group_ids, subscriber_id__in={r[1] for r in grouped}
                ).values_list("subscriber_id", "subscribergroup_id"):
                    memberships.setdefault(subscriber_id, set()).add(group_id)
                for sid, subscriber_id, *_rest in grouped:
                    if subscriber_id in memberships:
                        c = ctx(sid)
                        c.group_ids = frozenset(memberships[subscriber_id])
                        c.groups = [o for g in sorted(c.group_ids) for o in self.group_overrides.get(g, [])]
        if self.bundles:
            candidates = on(self.bundle_plans)
            if candidates:
                holding: dict[int, set] = {}
                for subscriber_id, plan_id in (
                    Subscription.objects.filter(
                        subscriber_id__in={r[1] for r in candidates}, plan_id__in=self.bundle_plans
                    )
                    .exclude(status=SubscriptionStatus.TERMINATED)
                    .values_list("subscriber_id", "plan_id")
                ):
                    holding.setdefault(subscriber_id, set()).add(plan_id)
                for sid, subscriber_id, *_rest in candidates:
                    held = [b for b in self.bundles if set(b.shares) <= holding.get(subscriber_id, set())]
                    if held:
                        ctx(sid).bundles = held
        if self.first_month_plans is None or self.first_month_plans:
            young = on(self.first_month_plans)
            if young:
                for sid, started_on in Subscription.objects.filter(pk__in=[r[0] for r in young]).values_list(
                    "pk", "started_on"
                ):
                    ctx(sid).started_on = started_on
        return found


def _any_rules() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM billing_promotion WHERE is_active) "
            "OR EXISTS (SELECT 1 FROM billing_bundle) OR EXISTS (SELECT 1 FROM billing_priceoverride)"
        )
        return bool(cursor.fetchone()[0])


def override_of(o) -> Override:
    return Override(
        o.pk,
        o.plan_id,
        o.monthly_fee,
        o.daily_fee,
        o.valid_from,
        o.valid_until,
        o.reason,
        o.source,
        o.group_id,
    )


def load_promotions() -> list[PromotionRule]:
    from .models import Promotion

    rules = []
    for p in Promotion.objects.filter(is_active=True).prefetch_related("plans", "groups"):
        plans = frozenset(x.pk for x in p.plans.all()) or None
        groups = frozenset(x.pk for x in p.groups.all()) or None
        rules.append(
            PromotionRule(
                p.pk,
                p.name,
                p.kind == "percent",
                p.value,
                p.stacking == "cumulative",
                plans,
                groups,
                p.bundle_id,
                p.first_months,
                p.starts_on,
                p.ends_on,
            )
        )
    return rules


def load_bundles() -> list[BundleRule]:
    from .models import Bundle

    return [
        BundleRule(b.pk, b.name, {i.plan_id: i.share for i in b.items.all()}, b.valid_from, b.valid_until)
        for b in Bundle.objects.prefetch_related("items")
    ]
