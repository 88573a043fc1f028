"""Property: whatever happens to a subscription, what it is charged for service is exactly what its days in
service are worth, to the kopeck (issue 11).

Hypothesis draws a calendar (a start day, price versions of the plans on random days) and a sequence of events on
later days: billing runs (missed, or repeated), freezes, unfreezes, upgrades, downgrades (scheduled or forced) and
a termination. After a last run, the charges for service (fees, a plan change's credit and charge, a freeze's
credit) must add up to the oracle below, freeze fees to what the policy asks, and ``ledger verify`` must pass.

The oracle knows nothing of charges. It reads what happened from the subscription's history (when it was frozen,
which plan was in force on each day, when it ended) and prices each *stretch*: consecutive days in service on one
plan within one billing period, started by a period start, an activation, an unfreeze or a plan change. A stretch
``[a, b)`` of a monthly plan with fee ``F`` (the price on ``a``) in a period ``[s, e)`` of ``n`` days is worth
``round(F·(e − a)/n) − round(F·(e − b)/n)``; a day of a daily plan is worth its daily charge. Summed over stretches
this is "the days in service times the prices then valid", with the one rounding rule a partial period has.

CI runs a bounded number of examples; ``make test-properties`` runs many more (ABONENT_PROPERTY_EXAMPLES).
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import hypothesis
import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from abonent.billing import actions, calculations, ledger
from abonent.billing.models import (
    Charge,
    ChargeKind,
    Freeze,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from abonent.billing.periods import amount_for, period_for
from abonent.billing.testing import run_on
from abonent.catalog import actions as catalog_actions
from abonent.catalog.models import ChargeMode, FreezePolicy, PeriodAnchor, PlanPrice
from abonent.core import clock

D = Decimal
ONE_DAY = dt.timedelta(days=1)
SERVICE = [ChargeKind.FEE, ChargeKind.PRORATION_CHARGE, ChargeKind.PRORATION_CREDIT, ChargeKind.REVERSAL]

# CI: a bounded number of examples; ``make test-properties`` sets ABONENT_PROPERTY_EXAMPLES (1,000 by default).
settings.register_profile("fees", max_examples=int(os.environ.get("ABONENT_PROPERTY_EXAMPLES", 25)), deadline=None)

# Plans of one service (they may switch to each other): fee, how they count periods.
PLANS = {
    "calendar-650": {"fee": "650.00", "charge_mode": ChargeMode.MONTHLY, "period_anchor": PeriodAnchor.CALENDAR},
    "anniversary-930": {"fee": "930.00", "charge_mode": ChargeMode.MONTHLY, "period_anchor": PeriodAnchor.ANNIVERSARY},
    "calendar-399": {"fee": "399.00", "charge_mode": ChargeMode.MONTHLY, "period_anchor": PeriodAnchor.CALENDAR},
    "daily-310": {"fee": "310.00", "charge_mode": ChargeMode.DAILY, "period_anchor": PeriodAnchor.CALENDAR},
}
EVENTS = ["run", "run twice", "freeze", "unfreeze", "change", "force change", "terminate", "reverse", "price", "skip"]


@st.composite
def scenarios(draw):
    start = draw(st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2027, 12, 31)))
    first_plan = draw(st.sampled_from(sorted(PLANS)))
    prices = draw(
        st.lists(
            st.tuples(
                st.sampled_from(sorted(PLANS)), st.integers(-40, 150), st.sampled_from(["500.00", "777.77", "1000.00"])
            ),
            max_size=3,
            unique_by=lambda p: (p[0], p[1]),
        )
    )
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(0, 24),  # days after the previous step
                st.sampled_from(EVENTS),
                st.integers(1, 40),  # freeze days
                st.sampled_from(sorted(PLANS)),  # plan to change to (or to price)
                st.integers(0, 1000),  # which charge to give back, from which day, how many days; a new price
            ),
            max_size=10,
        )
    )
    return start, first_plan, prices, steps


@pytest.fixture
def catalog(admin, internet):
    policy = FreezePolicy.objects.create(
        name="property", min_days=1, max_days=40, yearly_quota_days=366, fee_per_day=D("1.00")
    )
    plans = {}
    for code, spec in PLANS.items():
        plans[code] = catalog_actions.do_create_plan(
            code=code,
            name=code,
            service=internet,
            monthly_fee=D(spec["fee"]),
            valid_from=dt.date(2020, 1, 1),
            charge_mode=spec["charge_mode"],
            period_anchor=spec["period_anchor"],
            freeze_policy=policy,
            acting_user=admin,
        )
    for plan in plans.values():
        plan.switchable_to.set([p for p in plans.values() if p.pk != plan.pk])
    return plans


@settings(
    settings.get_profile("fees"), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(scenario=scenarios())
# Found by the property on PostgreSQL: a freeze that had run out, then another freeze on the next day.
@example(
    scenario=(
        dt.date(2025, 1, 1),
        "anniversary-930",
        [],
        [(0, "force change", 1, "calendar-399", 0), (0, "freeze", 1, "anniversary-930", 0), (1, "freeze", 1, "x", 0)],
    )
)
def test_service_charges_equal_the_days_in_service_at_the_prices_then_valid(catalog, subscriber, admin, scenario):
    start, first_plan, prices, steps = scenario
    with transaction.atomic():
        _play(catalog, subscriber, admin, start, first_plan, prices, steps)
        transaction.set_rollback(True)


def _play(plans, subscriber, admin, start, first_plan, prices, steps):
    for code, offset, fee in prices:
        PlanPrice.objects.get_or_create(
            plan=plans[code],
            valid_from=start + dt.timedelta(days=offset),
            defaults={"monthly_fee": D(fee), "created_at": clock.now()},
        )
    with clock.travel_to(start):
        actions.do_post_payment(subscriber, amount="1000000.00", channel="test", external_id="property")
        subscription = actions.do_activate_subscription(subscriber, plan=plans[first_plan], acting_user=admin)
    day = start
    for gap, event, days, target, pick in steps:
        day += dt.timedelta(days=gap)
        subscription.refresh_from_db()
        if subscription.status == SubscriptionStatus.TERMINATED:
            break
        _event(subscription, plans, admin, day, event, days, target, pick)
    last_run = day + ONE_DAY
    run_on(last_run)
    subscription.refresh_from_db()

    charged = sum(
        Charge.objects.filter(subscription=subscription, kind__in=SERVICE).values_list("amount", flat=True), D("0")
    )
    assert charged == _worth_of_days_in_service(subscription, last_run)
    freeze_fees = sum(
        Charge.objects.filter(subscription=subscription, kind=ChargeKind.FREEZE_FEE).values_list("amount", flat=True),
        D("0"),
    )
    # 1.00 a frozen day: the days booked, or those used (the policy's one-day minimum) when it ended early.
    assert freeze_fees == sum((D(_freeze_days(f)) for f in _freezes(subscription)), D("0"))
    assert ledger.verify() == []
    assert run_on(last_run).charges == 0  # a repeated run charges nothing


def _event(subscription, plans, admin, day, event, days, target, pick):
    try:
        with clock.travel_to(day):
            if event == "run":
                run_on(day)
            elif event == "run twice":
                run_on(day)
                assert run_on(day).charges == 0
            elif event == "freeze":
                actions.do_freeze_subscription(subscription, days=days, acting_user=admin)
            elif event == "unfreeze":
                actions.do_unfreeze_subscription(subscription, acting_user=admin)
            elif event in ("change", "force change"):
                actions.do_change_plan(
                    subscription, plan=plans[target], acting_user=admin, force=event == "force change"
                )
            elif event == "terminate":
                actions.do_terminate_subscription(subscription, acting_user=admin, reason="property")
            elif event == "reverse":
                _reverse_some_days(subscription, admin, day, pick)
            elif event == "price":
                catalog_actions.do_add_plan_price(
                    plans[target],
                    valid_from=day + dt.timedelta(days=1 + pick % 20),
                    monthly_fee=D(400 + pick),
                    acting_user=admin,
                )
        hypothesis.event(f"{event}: done")
    except ValidationError as exc:
        # Refused (frozen already, same plan, not frozen…): nothing happened, which the history shows.
        hypothesis.event(f"{event}: refused ({getattr(exc, 'code', None) or 'field'})")


def _reverse_some_days(subscription, admin, day, pick):
    """Give back some days served (before today) of one of the charges for days of service."""
    charges = list(
        Charge.objects.filter(
            subscription=subscription, kind__in=[ChargeKind.FEE, ChargeKind.PRORATION_CHARGE], period_start__lt=day
        ).order_by("id")
    )
    if not charges:
        return
    charge = charges[pick % len(charges)]
    last = min(charge.period_end, day)
    first = charge.period_start + dt.timedelta(days=pick % (last - charge.period_start).days)
    until = first + dt.timedelta(days=1 + (pick // 7) % (last - first).days)
    actions.do_reverse_charge(charge, reason="property", acting_user=admin, first_day=first, until=until)


# --- the oracle --------------------------------------------------------------------------------------------------


def _freeze_days(freeze) -> int:
    booked = (freeze.ends_on - freeze.starts_on).days
    if freeze.ended_early_on is None:
        return booked
    return min(booked, max((freeze.ended_early_on - freeze.starts_on).days, freeze.policy.min_days))


def _freezes(subscription):
    return list(Freeze.objects.filter(subscription=subscription).order_by("starts_on", "id"))


def _worth_of_days_in_service(subscription: Subscription, last_run: dt.date) -> Decimal:
    frozen = []  # [from, until) of each freeze as it really lasted
    boundaries = {subscription.started_on}
    for freeze in _freezes(subscription):
        until = freeze.ended_early_on if freeze.ended_early_on is not None else freeze.ends_on
        if freeze.status == "active" and freeze.ends_on > last_run:
            until = dt.date.max  # still frozen at the end
        frozen.append((freeze.starts_on, until))
        boundaries.add(until)
    switches = []  # (effective day, plan) in order
    for event in SubscriptionEvent.objects.filter(
        subscription=subscription, kind=SubscriptionEventKind.PLAN_CHANGED
    ).order_by("effective_at", "id"):
        effective = _local_day(event.effective_at)
        switches.append((effective, event.to_plan))
        boundaries.add(effective)
    first_plan = SubscriptionEvent.objects.get(subscription=subscription, kind=SubscriptionEventKind.ACTIVATED).to_plan

    reversed_days = set()  # days given back: not billed, though in service
    for start, end in Charge.objects.filter(subscription=subscription, kind=ChargeKind.REVERSAL).values_list(
        "period_start", "period_end"
    ):
        reversed_days.update(start + dt.timedelta(days=n) for n in range((end - start).days))

    if subscription.status == SubscriptionStatus.TERMINATED:
        horizon = subscription.ended_on
    elif subscription.status == SubscriptionStatus.FROZEN:
        horizon = max(f for f, _u in frozen)
    else:
        horizon = subscription.next_charge_on

    def plan_on(day):
        plan = first_plan
        for effective, to_plan in switches:
            if effective <= day:
                plan = to_plan
        return plan

    def in_service(day):
        return not any(f <= day < u for f, u in frozen)

    total = D("0.00")
    day, stretch = subscription.started_on, None  # stretch: (plan, period start, period end, first day)
    while day < horizon:
        if not in_service(day):
            total += _close(stretch, day, reversed_days)
            stretch, day = None, day + ONE_DAY
            continue
        plan = plan_on(day)
        full_start = period_for(plan, day, subscription.anchor_day)[2]
        base_end = period_for(plan, full_start, subscription.anchor_day)[1]
        key = (plan.pk, full_start, base_end)
        if stretch is None or stretch[0] != key or day in boundaries:
            total += _close(stretch, day, reversed_days)
            stretch = (key, plan, day)
        day += ONE_DAY
    total += _close(stretch, horizon, reversed_days)
    return total


def _close(stretch, end: dt.date, reversed_days: set) -> Decimal:
    """What the days ``[first, end)`` of a stretch are worth, less the days given back (they keep the stretch's
    price: a reversal gives back part of the charge that priced them)."""
    if stretch is None:
        return D("0.00")
    (_pk, full_start, base_end), plan, first = stretch
    price = plan.prices.filter(valid_from__lte=first).order_by("-valid_from").first()
    total, day = D("0.00"), first
    while day < end:
        if day not in reversed_days:
            if plan.charge_mode == ChargeMode.DAILY:
                # A day of a daily plan is priced on that day (each day is a period of its own).
                day_price = plan.prices.filter(valid_from__lte=day).order_by("-valid_from").first()
                total += amount_for(plan, day_price, day, day + ONE_DAY, day)[0]
            else:
                period = (full_start, base_end)
                total += calculations.prorate(price.monthly_fee, period=period, used_from=day) - calculations.prorate(
                    price.monthly_fee, period=period, used_from=day + ONE_DAY
                )
        day += ONE_DAY
    return total


def _local_day(moment: dt.datetime) -> dt.date:
    from django.utils import timezone

    return timezone.localtime(moment).date()
