"""``/my/time/``: a time plan's time left, packages and charged sessions; buying a package at the price shown."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from abonent.billing import actions as billing
from abonent.billing.models import LedgerAccount, TimePackagePurchase
from abonent.billing.rating.time import rate_time
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.network import actions as network
from abonent.network.models import Session

from .conftest import signed_in

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("now")]
D = Decimal


@pytest.fixture
def wifi(make_plan, admin):
    plan = make_plan("wifi", "0", name="Wi-Fi", charge_mode="time", time_unit="minute", unit_price=D("1.00"))
    package = catalog.do_create_time_package(
        code="hour", name="Час", seconds=3600, validity_days=30, price="40.00", plans=[plan], acting_user=admin
    )
    return plan, package


@pytest.fixture
def guest(make_subscriber, wifi, admin):
    guest = make_subscriber(last_name="Гостев")
    with clock.travel_to(dt.date(2026, 11, 1)):
        billing.do_post_payment(guest, amount="100.00", channel="test", external_id="wifi-1")
        billing.do_activate_subscription(guest, plan=wifi[0], acting_user=admin)
    return guest


def test_the_page_shows_time_left_and_history_and_buys_a_package(guest, wifi, admin):
    nas = network.do_create_nas(acting_user=admin, secret="x" * 24, vendor="mikrotik", name="hs", ip_address="10.1.1.1")
    start = timezone.make_aware(dt.datetime(2026, 11, 20, 10, 0))
    Session.objects.create(
        nas=nas, unique_id="u1", acct_session_id="a1", subscriber=guest, username="g", status="closed",
        started_at=start, updated_at=start + dt.timedelta(minutes=10), stopped_at=start + dt.timedelta(minutes=10),
        session_time=600,
    )  # fmt: skip
    rate_time()
    client = signed_in(guest)
    page = client.get("/my/time/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="time-left">1 h 30 min' in body  # 90 ₽ left at 1 ₽ a minute
    assert 'data-testid="time-used">10 min' in body
    bought = client.post(
        f"/my/time/{guest.subscriptions.get().pk}/package/", {"package": wifi[1].pk, "expected_price": "40.00"}
    )
    assert bought.status_code == 302
    assert TimePackagePurchase.objects.get().seconds == 3600
    assert LedgerAccount.objects.get(subscriber=guest).balance == D("50.00")
    after = client.get("/my/time/").content.decode()
    assert 'data-testid="time-packages-left">1 h 00 min' in after
    assert 'data-testid="time-left">1 h 50 min' in after


def test_the_same_form_sent_twice_buys_once(guest, wifi):
    """A double click (or a resend after a dropped answer) posts the page's form again with its one-time key: one
    package, one charge; the page rendered again carries a new key, which buys again."""
    client = signed_in(guest)
    page = client.get("/my/time/").content.decode()
    key = page.split('name="key" value="')[1].split('"')[0]
    url = f"/my/time/{guest.subscriptions.get().pk}/package/"
    form = {"package": wifi[1].pk, "expected_price": "40.00", "key": key}
    assert client.post(url, form).status_code == 302
    assert client.post(url, form).status_code == 302
    assert TimePackagePurchase.objects.count() == 1
    assert LedgerAccount.objects.get(subscriber=guest).balance == D("60.00")
    fresh = client.get("/my/time/").content.decode().split('name="key" value="')[1].split('"')[0]
    assert fresh != key
    assert client.post(url, {**form, "key": fresh}).status_code == 302
    assert TimePackagePurchase.objects.count() == 2
    assert LedgerAccount.objects.get(subscriber=guest).balance == D("20.00")


def test_a_changed_price_is_not_charged(guest, wifi):
    client = signed_in(guest)
    response = client.post(
        f"/my/time/{guest.subscriptions.get().pk}/package/", {"package": wifi[1].pk, "expected_price": "30.00"}
    )
    assert response.status_code == 409
    garbage = client.post(f"/my/time/{guest.subscriptions.get().pk}/package/", {"package": "x", "expected_price": "y"})
    assert garbage.status_code == 422
    assert not TimePackagePurchase.objects.exists()
    assert LedgerAccount.objects.get(subscriber=guest).balance == D("100.00")


def test_another_subscribers_subscription_is_404_and_a_monthly_plan_has_no_time_page(guest, wifi, subscriber):
    client = signed_in(subscriber)
    response = client.post(
        f"/my/time/{guest.subscriptions.get().pk}/package/", {"package": wifi[1].pk, "expected_price": "40.00"}
    )
    assert response.status_code == 404
    assert client.get("/my/time/").status_code == 404
    assert not TimePackagePurchase.objects.exists()


def test_the_services_page_links_to_the_time_page_for_a_time_plan_only(guest, subscriber):
    assert 'data-testid="time-link"' in signed_in(guest).get("/my/services/").content.decode()
    assert 'data-testid="time-link"' not in signed_in(subscriber).get("/my/services/").content.decode()
