"""The portal shows the prices a subscriber pays (billing/pricing): the home page's next charge at its individual
price net of its discount, and the plans page's offers at its prices."""

from __future__ import annotations

import datetime as dt

import pytest

from abonent.billing.models import Subscription
from abonent.billing.pricing import actions as pricing
from abonent.core import clock

from .conftest import api_of, signed_in

pytestmark = pytest.mark.django_db
NOV_20 = dt.date(2026, 11, 20)


def test_home_next_charge_and_plans_page_at_the_subscribers_prices(subscriber, stranger, portal_plans, admin):
    subscription = Subscription.objects.get(subscriber=subscriber)
    with clock.travel_to(dt.date(2026, 11, 1)):
        pricing.do_set_price_override(
            subscription=subscription, plan=portal_plans["home"], monthly_fee="500.00",
            valid_from=dt.date(2026, 12, 1), reason="Договор", acting_user=admin,
        )  # fmt: skip
        pricing.do_set_price_override(
            subscription=subscription, plan=portal_plans["gamer"], monthly_fee="777.00",
            valid_from=dt.date(2026, 11, 1), reason="Договор", acting_user=admin,
        )  # fmt: skip
        pricing.do_create_promotion(
            name="−10 %", kind="percent", value="10", plans=[portal_plans["home"]], acting_user=admin
        )
    with clock.travel_to(NOV_20):
        home = api_of(subscriber).get("/api/v1/my/home").json()
        theirs = api_of(stranger).get("/api/v1/my/home").json()
        plans_page = signed_in(subscriber).get("/my/plan/").content.decode()
        plans_api = api_of(subscriber).get("/api/v1/my/plans").json()
    assert home["plans"][0]["next_charge"]["amount"] == "450.00"  # 500 less 10 %
    assert home["plans"][0]["monthly_fee"] == "500.00"
    assert theirs["plans"][0]["next_charge"]["amount"] == "900.00"  # no price of theirs, no promotion on "gamer"
    assert "777" in plans_page
    offered = {p["name"]: p["monthly_fee"] for p in plans_api["subscriptions"][0]["offered"]}
    assert offered["Игровой"] == "777.00" and offered["Домашний"] == "400.00"


def test_freeze_and_plan_change_confirmed_as_seen_with_a_discount(make_subscriber, portal_plans, admin, now):
    """A credit's discount line is part of the credit the subscriber was shown, not a catch-up: the
    confirmations match their previews."""
    from .conftest import _customer

    with clock.travel_to(dt.date(2026, 11, 1)):
        pricing.do_create_promotion(name="−20 %", kind="percent", value="20", acting_user=admin)
    customer = _customer(make_subscriber, portal_plans["home"], admin, phone="+79160000042")
    subscription = Subscription.objects.get(subscriber=customer)
    portal = api_of(customer)
    preview = portal.get("/api/v1/my/freeze/preview", {"subscription": subscription.pk, "days": 14}).json()
    assert preview["credit"] == "190.66"  # 11 of 30 days: 238.33 of the fee less 47.67 of its discount
    done = portal.post(
        "/api/v1/my/freeze", {"subscription": subscription.pk, "days": 14, "expected_fee": preview["fee"]}
    )
    assert done.status_code == 200, done.content

    other = _customer(make_subscriber, portal_plans["home"], admin, phone="+79160000043", last_name="Сидоров")
    theirs = Subscription.objects.get(subscriber=other)
    change = api_of(other).get(
        "/api/v1/my/plans/preview", {"subscription": theirs.pk, "plan": portal_plans["gamer"].pk}
    )
    assert change.status_code == 200, change.content
    assert change.json()["credit"] == "190.66"
    confirmed = api_of(other).post(
        "/api/v1/my/plans/change",
        {"subscription": theirs.pk, "plan": portal_plans["gamer"].pk, "expected_net": change.json()["net"]},
    )
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["net"] == change.json()["net"]
