"""Time plans in the console: the card shows the time used this period and the packages left, and sells a package;
the plan form creates a time plan with its unit price."""

import datetime as dt

import pytest
from django.test import Client

from abonent.billing.models import TimePackagePurchase
from abonent.billing.testing import balance
from abonent.catalog import actions as catalog
from abonent.catalog.models import Plan
from abonent.core import clock
from abonent.staff.permissions import Role

from .time_helpers import D, local, rate, session

NOON = local(2026, 11, 10, 12, 0)


@pytest.fixture
def staff(make_staff):
    def make(role) -> Client:
        client = Client()
        client.force_login(make_staff(role))
        return client

    return make


@pytest.fixture
def package(admin, time_plan):
    return catalog.do_create_time_package(
        code="hour", name="Час", seconds=3600, validity_days=30, price="40.00", plans=[time_plan], acting_user=admin
    )


def test_the_card_shows_time_and_sells_a_package(staff, on_time, subscriber, nas, package):
    session(nas, subscriber, NOON - dt.timedelta(hours=2), NOON - dt.timedelta(minutes=75))
    rate(NOON)
    operator = staff(Role.OPERATOR)
    with clock.travel_to(NOON):
        body = operator.get(f"/staff/subscribers/{subscriber.pk}/").content.decode()
        assert f'id="time-{on_time.pk}"' in body
        assert "45 min" in body  # online this period
        assert f'data-form="time-package-{on_time.pk}"' in body
        bought = operator.post(
            f"/staff/subscribers/{subscriber.pk}/billing/subscriptions/{on_time.pk}/time-package/",
            {"package": package.pk, "reason": "по телефону"},
        )
    assert bought.status_code in (200, 302)
    purchase = TimePackagePurchase.objects.get()
    assert (purchase.seconds, purchase.price, purchase.event.reason) == (3600, D("40.00"), "по телефону")
    assert balance(subscriber) == D("500.00") - D("45.00") - D("40.00")


def test_a_cashier_cannot_sell_a_package(staff, on_time, subscriber, package):
    response = staff(Role.CASHIER).post(
        f"/staff/subscribers/{subscriber.pk}/billing/subscriptions/{on_time.pk}/time-package/", {"package": package.pk}
    )
    assert response.status_code == 403
    assert not TimePackagePurchase.objects.exists()


def test_the_plan_form_creates_a_time_plan_with_its_unit_price(staff, internet):
    with clock.travel_to(dt.date(2026, 11, 16)):
        response = staff(Role.ADMIN).post(
            "/staff/catalog/plans/new/",
            {
                "name": "Wi-Fi", "code": "wifi", "service": internet.pk, "charge_mode": "time",
                "period_anchor": "calendar", "daily_pricing": "split", "proration_unit": "days", "monthly_fee": "0",
                "unit_price": "30", "time_unit": "hour", "free_minutes": "5", "minimum_session_charge": "10",
                "download_mbps": "10", "upload_mbps": "10", "overage_rounding": "per_gb",
            },
        )  # fmt: skip
        refused = staff(Role.ADMIN).post(
            "/staff/catalog/plans/new/",
            {
                "name": "Wi-Fi 2", "code": "wifi-2", "service": internet.pk, "charge_mode": "time",
                "period_anchor": "calendar", "daily_pricing": "split", "proration_unit": "days", "monthly_fee": "0",
                "download_mbps": "10", "upload_mbps": "10", "overage_rounding": "per_gb",
            },
        )  # fmt: skip
    plan = Plan.objects.get(code="wifi")
    assert response.status_code == 302
    assert (plan.time_unit, plan.free_minutes, plan.minimum_session_charge) == ("hour", 5, D("10.00"))
    assert list(plan.prices.values_list("unit_price", "monthly_fee")) == [(D("30.00"), D("0.00"))]
    assert refused.status_code == 422 and not Plan.objects.filter(code="wifi-2").exists()
    assert "needs a price per unit of time" in refused.content.decode()


def test_time_packages_in_the_catalog_api(api, package, time_plan):
    body = api.get("/api/v1/time-packages").json()
    assert body == [
        {
            "id": package.pk, "code": "hour", "name": "Час", "seconds": 3600, "validity_days": 30, "price": "40.00",
            "is_active": True, "plans": [time_plan.pk],
        }
    ]  # fmt: skip
    plan = api.get(f"/api/v1/plans/{time_plan.pk}").json()
    assert (plan["charge_mode"], plan["time_unit"], plan["current_price"]["unit_price"]) == ("time", "minute", "1.00")
