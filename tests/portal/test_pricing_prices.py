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
