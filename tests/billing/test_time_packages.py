"""Time packages: bought from the balance once per purchase, used by rating before money, the soonest to expire
first; unused time is lost when a package expires. Through actions and ``/api/v1``."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from abonent.api.models import IdempotencyRecord
from abonent.billing import actions
from abonent.billing.ledger import verify
from abonent.billing.models import Charge, ChargeKind, LedgerTransaction, TimePackagePurchase, TimeRating
from abonent.billing.testing import balance
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.staff.permissions import Role

from .time_helpers import D, local, rate, session, time_charges

NOON = local(2026, 11, 10, 12, 0)


@pytest.fixture
def packages(admin, time_plan):
    """60 minutes within 30 days for 40 ₽, 10 hours within 7 days for 300 ₽."""
    return (
        catalog.do_create_time_package(
            code="hour", name="Час", seconds=3600, validity_days=30, price="40.00", plans=[time_plan], acting_user=admin
        ),
        catalog.do_create_time_package(
            code="ten", name="10 часов", seconds=36000, validity_days=7, price="300.00", plans=[time_plan],
            acting_user=admin,
        ),
    )  # fmt: skip


def buy(subscription, package, admin, at=NOON):
    with clock.travel_to(at):
        return actions.do_buy_time_package(subscription, package=package, acting_user=admin)


def test_a_package_is_charged_once_and_used_before_money(on_time, subscriber, nas, packages, admin):
    bought = buy(on_time, packages[0], admin)
    assert (bought.seconds, bought.price, bought.expires_at) == (3600, D("40.00"), NOON + dt.timedelta(days=30))
    assert balance(subscriber) == D("460.00")
    charge = Charge.objects.get(kind=ChargeKind.TIME_PACKAGE)
    assert (charge.amount, charge.event_id, charge.period_start) == (D("40.00"), bought.event_id, dt.date(2026, 11, 10))
    # 70 minutes online: 60 from the package, 10 paid.
    session(nas, subscriber, NOON + dt.timedelta(minutes=5), NOON + dt.timedelta(minutes=75))
    rate(NOON + dt.timedelta(hours=2))
    bought.refresh_from_db()
    assert bought.used_seconds == 3600
    assert time_charges(on_time) == [(dt.date(2026, 11, 10), D("10.00"), 4200)]
    part = TimeRating.objects.get()
    assert (part.package_seconds, part.money_seconds, part.units) == (3600, 600, 10)
    assert balance(subscriber) == D("450.00")
    assert verify() == []


def test_the_soonest_to_expire_is_used_first_and_expired_time_is_lost(on_time, subscriber, nas, packages, admin):
    month = buy(on_time, packages[0], admin)
    week = buy(on_time, packages[1], admin)
    session(nas, subscriber, NOON + dt.timedelta(hours=1), NOON + dt.timedelta(hours=2))
    rate(NOON + dt.timedelta(hours=3))
    month.refresh_from_db(), week.refresh_from_db()
    assert (week.used_seconds, month.used_seconds) == (3600, 0)
    # After the week the 9 hours left in it are gone: the next session takes the month's hour, then money.
    later = NOON + dt.timedelta(days=8)
    session(nas, subscriber, later, later + dt.timedelta(minutes=61))
    rate(later + dt.timedelta(hours=2))
    month.refresh_from_db(), week.refresh_from_db()
    assert (week.used_seconds, month.used_seconds) == (3600, 3600)
    assert time_charges(on_time) == [(dt.date(2026, 11, 18), D("1.00"), 3660)]
    assert balance(subscriber) == D("500.00") - D("340.00") - D("1.00")


def test_a_package_not_offered_or_unaffordable_is_refused(on_time, subscriber, packages, admin, make_plan):
    other = catalog.do_create_time_package(
        code="other", name="Чужой", seconds=600, validity_days=1, price="1.00", acting_user=admin
    )
    with pytest.raises(ValidationError) as caught:
        buy(on_time, other, admin)
    assert caught.value.error_dict["package"][0].code == "package_not_offered"
    actions.do_adjust_balance(subscriber, amount="-480.00", reason="test", acting_user=admin)
    with pytest.raises(ValidationError) as caught:
        buy(on_time, packages[0], admin)
    assert caught.value.code == "insufficient_funds"
    assert not TimePackagePurchase.objects.exists() and balance(subscriber) == D("20.00")


def test_packages_are_sold_only_on_time_plans(make_plan, admin):
    monthly = make_plan("home", "650.00")
    with pytest.raises(ValidationError) as caught:
        catalog.do_create_time_package(
            code="x", name="x", seconds=3600, validity_days=1, price="1", plans=[monthly], acting_user=admin
        )
    assert caught.value.error_dict["plans"][0].code == "plan_not_time"


# --- the API -------------------------------------------------------------------------------------------------


def test_buying_through_the_api_with_the_same_key_twice_charges_once(api, on_time, subscriber, packages):
    path = f"/api/v1/subscriptions/{on_time.pk}/time-packages"
    key = {"Idempotency-Key": "pkg-1"}
    with clock.travel_to(NOON):
        first = api.post(path, {"package_id": packages[0].pk}, headers=key)
        second = api.post(path, {"package_id": packages[0].pk}, headers=key)
        other = api.post(path, {"package_id": packages[1].pk}, headers=key)
    assert (first.status_code, second.status_code, other.status_code) == (201, 201, 409)
    assert second.json() == first.json()
    assert first.json()["package"]["code"] == "hour"
    assert (first.json()["seconds"], first.json()["left_seconds"], first.json()["price"]) == (3600, 3600, "40.00")
    assert TimePackagePurchase.objects.count() == 1 and IdempotencyRecord.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="time_package").count() == 1
    assert balance(subscriber) == D("460.00")


def test_buying_without_a_key_is_400_and_bad_ids_are_422(api, on_time, subscriber, packages):
    path = f"/api/v1/subscriptions/{on_time.pk}/time-packages"
    no_key = api.post(path, {"package_id": packages[0].pk}, key=None)
    missing = api.post(path, {"package_id": 999999})
    assert no_key.status_code == 400 and no_key.json()["error"]["code"] == "idempotency_key_required"
    assert missing.status_code == 422
    assert [(f["field"], f["code"]) for f in missing.json()["error"]["fields"]] == [("package_id", "does_not_exist")]
    assert not TimePackagePurchase.objects.exists() and balance(subscriber) == D("500.00")


def test_another_branchs_subscription_is_404(api_of, make_subscriber, branch, other_branch, time_plan, packages, admin):
    stranger = make_subscriber(branch_obj=other_branch)
    with clock.travel_to(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(stranger, plan=time_plan, acting_user=admin)
        actions.do_post_payment(stranger, amount="1000.00", channel="cash", external_id="s")
    client = api_of(Role.OPERATOR, branches=[branch])
    for response in (
        client.get(f"/api/v1/subscriptions/{subscription.pk}/time"),
        client.post(f"/api/v1/subscriptions/{subscription.pk}/time-packages", {"package_id": packages[0].pk}),
    ):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert not TimePackagePurchase.objects.exists()


def test_the_time_of_a_subscription(api, on_time, subscriber, nas, packages, admin):
    buy(on_time, packages[0], admin)
    session(nas, subscriber, NOON + dt.timedelta(minutes=1), NOON + dt.timedelta(minutes=91))
    rate(NOON + dt.timedelta(hours=2))
    with clock.travel_to(NOON + dt.timedelta(hours=2)):
        body = api.get(f"/api/v1/subscriptions/{on_time.pk}/time").json()
    assert {k: body[k] for k in ("unit", "unit_price", "used_seconds", "charged", "package_seconds_left")} == {
        "unit": "minute",
        "unit_price": "1.00",
        "used_seconds": 5400,
        "charged": "30.00",
        "package_seconds_left": 0,
    }
    assert (body["period_start"], body["period_end"]) == ("2026-11-01", "2026-12-01")
    # 430 ₽ left buy 430 minutes.
    assert body["seconds_left"] == 430 * 60
    assert [o["code"] for o in body["offered"]] == ["hour", "ten"]
    assert body["history"][0]["amount"] == "30.00" and body["history"][0]["package_seconds"] == 3600
