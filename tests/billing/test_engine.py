"""The billing run's rules beyond the basic scenarios: price versions, anniversaries, online-only days, parking."""

import datetime as dt
from decimal import Decimal

from abonent.billing import actions, selectors
from abonent.billing.models import Charge, OnlineDay
from abonent.billing.testing import balance, run_on
from abonent.catalog.actions import do_add_plan_price

D = Decimal


def fee_amounts(subscription):
    return list(
        Charge.objects.filter(subscription=subscription, kind="fee")
        .order_by("period_start")
        .values_list("period_start", "amount")
    )


def test_a_new_price_applies_from_its_date_and_old_charges_keep_theirs(make_plan, subscriber, admin, on):
    plan = make_plan("internet-100", "650.00")
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        do_add_plan_price(plan, valid_from=dt.date(2026, 12, 1), monthly_fee=D("700.00"), acting_user=admin)
    run_on(dt.date(2026, 12, 1))
    assert fee_amounts(subscription) == [(dt.date(2026, 11, 1), D("650.00")), (dt.date(2026, 12, 1), D("700.00"))]
    first = Charge.objects.filter(subscription=subscription).earliest("period_start")
    assert first.price.monthly_fee == D("650.00")  # the version used is recorded on the charge


def test_anniversary_periods_clamp_to_short_months_and_return(make_plan, subscriber, admin, on):
    plan = make_plan("anniv", "600.00", period_anchor="anniversary")
    with on(dt.date(2027, 1, 31)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    for day in (dt.date(2027, 2, 28), dt.date(2027, 3, 31), dt.date(2027, 4, 30)):
        run_on(day)
    periods = list(
        Charge.objects.filter(subscription=subscription)
        .order_by("period_start")
        .values_list("period_start", "period_end", "amount")
    )
    assert periods == [
        (dt.date(2027, 1, 31), dt.date(2027, 2, 28), D("600.00")),
        (dt.date(2027, 2, 28), dt.date(2027, 3, 31), D("600.00")),
        (dt.date(2027, 3, 31), dt.date(2027, 4, 30), D("600.00")),
        (dt.date(2027, 4, 30), dt.date(2027, 5, 31), D("600.00")),
    ]


def test_charge_only_if_online_the_day_before(make_plan, subscriber, admin, on):
    plan = make_plan("hotspot", "310.00", charge_mode="daily", charge_only_if_online=True)
    with on(dt.date(2026, 12, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    OnlineDay.objects.create(subscriber=subscriber, day=dt.date(2026, 12, 2))
    run_on(dt.date(2026, 12, 5))
    # Only the 3rd follows a day online (the 2nd); each day of December costs 310/31 = 10.00.
    assert fee_amounts(subscription) == [(dt.date(2026, 12, 3), D("10.00"))]
    subscription.refresh_from_db()
    assert subscription.next_charge_on == dt.date(2026, 12, 6)  # skipped days are not retried


def test_a_fixed_daily_price(make_plan, subscriber, admin, on):
    plan = make_plan("day-pass", "0.00", charge_mode="daily", daily_pricing="fixed", daily_fee=D("25.00"))
    with on(dt.date(2026, 12, 1)):
        actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    run_on(dt.date(2026, 12, 3))
    assert balance(subscriber) == D("-75.00")


def test_a_plan_without_a_price_parks_the_subscription_and_the_run_goes_on(make_plan, make_subscriber, admin, on):
    priced = make_plan("priced", "500.00")
    future = make_plan("future", "500.00", valid_from=dt.date(2027, 1, 1))
    ok_subscriber, parked_subscriber = make_subscriber(phone="+79160000001"), make_subscriber(phone="+79160000002")
    with on(dt.date(2027, 1, 1)):
        ok = actions.do_activate_subscription(ok_subscriber, plan=priced, acting_user=admin)
        parked = actions.do_activate_subscription(parked_subscriber, plan=future, acting_user=admin)
    # Rewind the parked one into a time its plan had no price (as a bad migration could leave it).
    type(parked).objects.filter(pk=parked.pk).update(next_charge_on=dt.date(2026, 12, 1))
    result = run_on(dt.date(2027, 2, 1))
    assert [p.subscription_id for p in result.parked] == [parked.pk]
    assert fee_amounts(ok)[-1] == (dt.date(2027, 2, 1), D("500.00"))
    parked.refresh_from_db()
    assert parked.next_charge_on == dt.date(2026, 12, 1)  # untouched, waiting for a person


def test_upgrade_prorated_by_seconds(make_plan, subscriber, admin, on):
    home = make_plan("home-s", "600.00", proration_unit="seconds")
    fast = make_plan("fast-s", "900.00")
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=home, acting_user=admin)
    # Noon (Moscow) on the 16th: 14.5 of 30 days left.
    with on(dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)):
        preview = selectors.preview_plan_change(subscription, fast)
    assert (preview.credit, preview.charge) == (D("290.00"), D("435.00"))


def test_subscription_cannot_be_activated_twice_for_one_service(make_plan, subscriber, admin):
    import pytest
    from django.core.exceptions import ValidationError

    plan = make_plan("internet-100", "650.00")
    actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    with pytest.raises(ValidationError) as exc:
        actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    assert exc.value.code == "subscription_exists"
