"""A period charged in parts is priced as one (billing/pricing): overrides and promotions are decided on the whole
period's first day, in the run, in ``next_fee`` (the portal's previews) and in ``price_view``; a time plan has no
fee to price; a daily fee is only for plans with a fixed daily fee."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions, ledger
from abonent.billing.models import Charge, ChargeKind
from abonent.billing.pricing import actions as pricing
from abonent.billing.pricing.models import PriceOverride
from abonent.billing.pricing.selectors import next_fee, price_view
from abonent.billing.testing import run_on
from abonent.catalog.selectors import price_on

D = Decimal
NOV, DEC, JAN = dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1)


def lines(subscription, start):
    return sorted(
        (c.kind, c.amount)
        for c in Charge.objects.filter(subscription=subscription, period_start=start, event__isnull=True)
    )


@pytest.fixture
def paid(subscriber, on):
    with on(NOV):
        actions.do_post_payment(subscriber, amount="10000.00", channel="test", external_id="opening")
    return subscriber


def test_an_override_ending_mid_period_prices_the_days_after_an_unfreeze(paid, monthly, admin, on):
    """400 ₽ from 1 to 10 December priced December; the days 19–31 December after a freeze are December's too:
    400·13/31 = 167.74 (not 650·13/31 = 272.58), as the portal's preview says before the unfreeze."""
    with on(NOV):
        subscription = actions.do_activate_subscription(paid, plan=monthly, acting_user=admin)
        pricing.do_set_price_override(
            subscription=subscription,
            plan=monthly,
            monthly_fee="400.00",
            valid_from=DEC,
            valid_until=dt.date(2026, 12, 10),
            reason="Договор",
            acting_user=admin,
        )
    run_on(DEC)
    assert lines(subscription, DEC) == [("fee", D("400.00"))]
    with on(dt.date(2026, 12, 5)):
        actions.do_freeze_subscription(subscription, days=14, acting_user=admin)
    resumes = dt.date(2026, 12, 19)
    previewed = next_fee(
        monthly,
        price_on(monthly, resumes),
        resumes,
        subscription.anchor_day,
        subscription_id=subscription.pk,
        subscriber_id=subscription.subscriber_id,
    )[0]
    subscription.refresh_from_db()
    with on(resumes):
        actions.do_unfreeze_subscription(subscription, acting_user=admin)
    fee = Charge.objects.get(subscription=subscription, period_start=resumes, kind=ChargeKind.FEE)
    assert (fee.amount, fee.base_fee, previewed) == (D("167.74"), D("400.00"), D("167.74"))
    # Paid for 1–4 and 19–31 December: 17 days of 400 ₽, to the kopeck.
    december = sum(
        Charge.objects.filter(subscription=subscription, period_start__lt=JAN, period_end__gt=DEC)
        .exclude(kind=ChargeKind.FREEZE_FEE)
        .values_list("amount", flat=True),
        D("0.00"),
    )
    assert december == D("219.35")
    assert ledger.verify() == []


def test_a_window_promotion_starting_mid_period_discounts_from_the_next_period(paid, monthly, admin, on):
    """−10 % for periods from 10 December: a subscription activated on the 15th is in a December that began on the
    1st, so its first part is not discounted (the view says so too); January is."""
    with on(NOV):
        pricing.do_create_promotion(
            name="−10 %", kind="percent", value="10", starts_on=dt.date(2026, 12, 10), acting_user=admin
        )
    with on(dt.date(2026, 12, 15)):
        subscription = actions.do_activate_subscription(paid, plan=monthly, acting_user=admin)
    assert lines(subscription, dt.date(2026, 12, 15)) == [("fee", D("356.45"))]
    assert price_view(subscription, day=dt.date(2026, 12, 15)).discount == D("0.00")
    assert price_view(subscription, day=JAN).discount == D("65.00")
    run_on(JAN)
    assert lines(subscription, JAN) == [("discount", D("-65.00")), ("fee", D("650.00"))]
    assert ledger.verify() == []


def test_prices_of_time_plans_and_daily_fees_of_other_plans_are_refused_through_the_api(
    api, paid, monthly, make_plan, make_subscriber, admin, on
):
    wifi = make_plan("wifi-minute", "0.00", name="Wi-Fi", charge_mode="time", time_unit="minute", unit_price=D("1.00"))
    other = make_subscriber(last_name="Петров", phone="+79160000001")
    with on(NOV):
        subscription = actions.do_activate_subscription(paid, plan=monthly, acting_user=admin)
        timed = actions.do_activate_subscription(other, plan=wifi, acting_user=admin)
        url = f"/api/v1/subscriptions/{subscription.pk}/price-overrides"
        body = {"plan_id": monthly.pk, "monthly_fee": "500.00", "valid_from": "2026-12-01", "reason": "x"}
        daily = api.post(url, {**body, "daily_fee": "10.00"}, headers={"Idempotency-Key": "daily"})
        url = f"/api/v1/subscriptions/{timed.pk}/price-overrides"
        time_rated = api.post(url, {**body, "plan_id": wifi.pk}, headers={"Idempotency-Key": "time"})
        price = api.get(f"/api/v1/subscriptions/{timed.pk}/price")
        listed = api.get(f"/api/v1/subscribers/{other.pk}/subscriptions").json()
    assert [(r.status_code, codes(r)) for r in (daily, time_rated, price)] == [
        (422, [("daily_fee", "daily_fee_not_used")]),
        (422, [("plan_id", "plan_time_rated")]),
        (422, [("plan", "plan_time_rated")]),
    ]
    assert listed[0]["price"] is None
    assert PriceOverride.objects.count() == 0


def codes(response):
    return [(f["field"], f["code"]) for f in response.json()["error"]["fields"]]
