"""Attack on the traffic rating: the same bytes charged twice, a chunk blocked by one subscriber's counters."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions
from abonent.billing.ledger import verify
from abonent.core import clock
from abonent.network.accounting import MAX_COUNTER
from tests.billing.usage_helpers import DEC, GB, NOV, add_usage, overage_plan, rate_on, usage_charges

pytestmark = pytest.mark.django_db
D = Decimal


def _total(subscription) -> Decimal:
    return sum((c[2] for c in usage_charges(subscription)), D("0.00"))


def test_anniversary_to_calendar_plan_change_does_not_charge_the_same_days_twice(make_plan, subscriber, admin):
    # Every byte charged (0 GB included, 2 ₽/GB): 10 GB used on 5 November must cost 20 ₽, once.
    anniversary = overage_plan(make_plan, "ann-0", included_gb=0, period_anchor="anniversary")
    calendar = overage_plan(make_plan, "cal-0", included_gb=0)
    anniversary.switchable_to.add(calendar)
    with clock.travel_to(dt.date(2026, 10, 15)):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=anniversary, acting_user=admin)
    add_usage(subscriber, dt.date(2026, 11, 5), download=10 * GB)
    rate_on(dt.date(2026, 11, 15))  # the anniversary period 15 Oct – 14 Nov: 10 GB → 20 ₽
    with clock.travel_to(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)):
        actions.do_change_plan(subscription, plan=calendar, acting_user=admin, reason="", force=True)
    rate_on(DEC)  # the calendar November: 1–19 on the anniversary plan holds 5 November again
    assert _total(subscription) == D("20.00"), usage_charges(subscription)
    assert verify() == []


def test_calendar_to_anniversary_plan_change_does_not_charge_the_same_days_twice(make_plan, subscriber, admin):
    calendar = overage_plan(make_plan, "cal-0", included_gb=0)
    anniversary = overage_plan(make_plan, "ann-0", included_gb=0, period_anchor="anniversary")
    calendar.switchable_to.add(anniversary)
    with clock.travel_to(dt.date(2026, 10, 10)):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=calendar, acting_user=admin)
    add_usage(subscriber, dt.date(2026, 10, 20), download=10 * GB)
    rate_on(NOV)  # calendar October: 10 GB → 20 ₽
    with clock.travel_to(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)):
        actions.do_change_plan(subscription, plan=anniversary, acting_user=admin, reason="", force=True)
    rate_on(dt.date(2026, 12, 10))  # anniversary periods from the 10th: 10 Oct – 9 Nov holds 20 October again
    assert _total(subscription) == D("20.00"), usage_charges(subscription)
    assert verify() == []


def test_two_subscriptions_of_one_subscriber_do_not_both_charge_the_same_traffic(make_plan, subscriber, admin):
    # Traffic is kept per subscriber (UsageDay), not per subscription: 600 GB over 500 GB included is 100 GB
    # over, 200 ₽ — however many metered subscriptions (an internet and an IPTV service) the subscriber has.
    from abonent.catalog import actions as catalog

    iptv = catalog.do_create_service(code="iptv", name="IPTV", kind="iptv", acting_user=admin)
    plan = overage_plan(make_plan)
    tv = overage_plan(make_plan, "tv-500", service=iptv)
    with clock.travel_to(NOV):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        first = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        second = actions.do_activate_subscription(subscriber, plan=tv, acting_user=admin)
    add_usage(subscriber, dt.date(2026, 11, 10), download=600 * GB)
    rate_on(DEC)
    assert _total(first) + _total(second) <= D("200.00"), (usage_charges(first), usage_charges(second))
    assert verify() == []


def test_a_subscription_ended_and_a_new_one_started_the_same_day_count_that_day_once(make_plan, subscriber, admin):
    plan = overage_plan(make_plan, "every-byte", included_gb=0)
    with clock.travel_to(NOV):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        old = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    day = dt.date(2026, 11, 15)
    with clock.travel_to(day):
        actions.do_terminate_subscription(old, acting_user=admin, reason="moved", on=day)
        new = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    add_usage(subscriber, day, download=10 * GB)  # the day of the move: 20 ₽, once
    rate_on(DEC)
    assert _total(old) + _total(new) == D("20.00"), (usage_charges(old), usage_charges(new))
    assert verify() == []


def test_one_subscriber_with_saturated_counters_does_not_block_the_chunk(make_plan, subscriber, make_subscriber, admin):
    plan = overage_plan(make_plan)
    other = make_subscriber()
    with clock.travel_to(NOV):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        actions.do_post_payment(other, amount="5000.00", channel="test", external_id="opening-2")
        actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        normal = actions.do_activate_subscription(other, plan=plan, acting_user=admin)
    # Two days at the counters' limit (accounting saturates each day at 2^63 − 1): the period sums past bigint.
    add_usage(subscriber, dt.date(2026, 11, 10), download=MAX_COUNTER)
    add_usage(subscriber, dt.date(2026, 11, 11), download=MAX_COUNTER)
    add_usage(other, dt.date(2026, 11, 10), download=501 * GB)
    rate_on(DEC)  # must not fail the whole chunk
    assert _total(normal) == D("2.00")
    assert verify() == []


def test_the_estimate_shown_mid_period_matches_what_the_period_end_charges_after_leaving_for_unlimited(
    make_plan, subscriber, admin
):
    from abonent.billing.rating.estimate import usage_estimate

    metered = overage_plan(make_plan, "traffic-300", included_gb=300)
    unlimited = make_plan("unlimited", "700.00")
    metered.switchable_to.add(unlimited)
    with clock.travel_to(NOV):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=metered, acting_user=admin)
    add_usage(subscriber, dt.date(2026, 11, 5), download=160 * GB)  # 15/30 of 300 GB included: 10 GB over
    with clock.travel_to(dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)):
        actions.do_change_plan(subscription, plan=unlimited, acting_user=admin, reason="", force=True)
    subscription.refresh_from_db()
    estimate = usage_estimate(subscription, dt.date(2026, 11, 30))
    rate_on(DEC)
    charged = _total(subscription)
    assert charged == D("20.00")
    # The card and the portal must announce what the period's end then charges.
    assert estimate is not None and estimate.amount == charged
