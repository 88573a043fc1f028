"""Time plans at the RADIUS server: Session-Timeout is what the package time and money left buy; nothing left is
an Access-Reject (``no_time_left``). In the in-memory store, through its snapshot, and on the wire (radclient)."""

import datetime as dt
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from abonent.billing import actions as billing
from abonent.billing.rating.time_budget import TimeBudget, seconds_left
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.network import actions as network
from abonent.network.models import AuthAttempt, LoginKind, RejectReason, Session
from abonent.network.policy import PolicyStore

from .conftest import SECRET

D = Decimal
PAP = 'User-Name = "guest"\nUser-Password = "wifi-pw"\nService-Type = Login-User\nMessage-Authenticator = 0x00\n'


@pytest.fixture
def time_plan(admin, internet):
    return catalog.do_create_plan(
        code="wifi", name="Wi-Fi", service=internet, monthly_fee=D("0"), unit_price=D("1.00"), charge_mode="time",
        time_unit="minute", download_kbps=10240, upload_kbps=10240, valid_from=dt.date(2020, 1, 1), acting_user=admin,
    )  # fmt: skip


@pytest.fixture
def guest(make_subscriber, time_plan, admin):
    """A hotspot login on the per-minute plan with 10.00 ₽: ten minutes."""
    subscriber = make_subscriber()
    billing.do_post_payment(subscriber, amount="10.00", channel="cash", external_id="g-1", acting_user=admin)
    billing.do_activate_subscription(subscriber, plan=time_plan, acting_user=admin)
    network.do_create_login(subscriber, acting_user=admin, kind=LoginKind.HOTSPOT, username="guest", password="wifi-pw")
    return subscriber


def _decide(subscriber):
    store = PolicyStore.for_subscribers([subscriber.pk])
    return store.decide(store.by_login[("password", "guest")], timezone.localtime())


def test_seconds_left_takes_free_minutes_packages_money_and_time_not_charged_yet():
    budget = TimeBudget(1000, 0, 60, 100, 0, 0, ())
    assert seconds_left(budget, 0) == 600
    assert seconds_left(budget._replace(free_seconds=300), 0) == 900
    assert seconds_left(budget._replace(package_seconds=3600), 0) == 4200
    # 90 s online not charged yet: two started minutes off the money.
    assert seconds_left(budget._replace(pending=((100.0, 190.0),)), 1000) == 480
    # An open session eats packages first, then money, as time passes.
    assert seconds_left(budget._replace(package_seconds=60, pending=((0.0, None),)), 120) == 540
    assert seconds_left(budget._replace(money_cents=99), 0) == 0
    assert seconds_left(budget._replace(money_cents=-500), 0) == 0
    assert seconds_left(budget._replace(minimum_cents=1500), 0) == 0  # not even the minimum of a session
    assert seconds_left(budget._replace(unit_price_cents=0), 0) is None
    assert seconds_left(budget._replace(unit_seconds=3600, unit_price_cents=3000, money_cents=6100), 0) == 7200


@pytest.mark.django_db
def test_session_timeout_is_what_is_left_and_nothing_left_is_a_reject(guest, time_plan, admin, make_nas):
    decision = _decide(guest)
    assert (decision.accept, decision.session_timeout) == (True, 600)
    # An open session started five minutes ago has used five of the ten minutes.
    Session.objects.create(
        nas=make_nas(), unique_id="x1", acct_session_id="a1", subscriber=guest, username="guest",
        started_at=clock.now() - dt.timedelta(minutes=5), updated_at=clock.now(), session_time=300,
    )  # fmt: skip
    assert 295 <= _decide(guest).session_timeout <= 300
    Session.objects.all().delete()
    billing.do_adjust_balance(guest, amount="-10.00", reason="test", acting_user=admin)
    decision = _decide(guest)
    assert (decision.accept, decision.reason) == (False, RejectReason.NO_TIME_LEFT)
    # A package bought lets them in for its time.
    package = catalog.do_create_time_package(
        code="p", name="p", seconds=1800, validity_days=1, price="0.00", plans=[time_plan], acting_user=admin
    )
    subscription = guest.subscriptions.get()
    billing.do_buy_time_package(subscription, package=package, acting_user=admin)
    assert _decide(guest).session_timeout == 1800


@pytest.mark.django_db
def test_the_budget_survives_the_snapshot(guest, tmp_path):
    from abonent.network.radius import snapshot

    store = PolicyStore.for_subscribers([guest.pk])
    policy = store.by_login[("password", "guest")]
    restored = snapshot._read_login(snapshot._login(policy))
    assert restored == policy and restored.time_budget.money_cents == 1000


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_radclient_gets_session_timeout_from_money_and_a_reject_without(guest, admin, make_nas, server, radclient):
    make_nas("mikrotik")
    with server() as running:
        accepted = radclient(running.auth_port, SECRET, "auth", PAP)
        billing.do_adjust_balance(guest, amount="-10.00", reason="spent", acting_user=admin)
        deadline = time.monotonic() + 10
        while True:  # the server follows the policy-change feed every 0.2 s here
            rejected = radclient(running.auth_port, SECRET, "auth", PAP)
            if "Access-Reject" in rejected.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert "Received Access-Accept" in accepted.stdout, accepted.stdout + accepted.stderr
    assert "Session-Timeout = 600" in accepted.stdout
    assert "Received Access-Reject" in rejected.stdout, rejected.stdout + rejected.stderr
    assert AuthAttempt.objects.filter(reason=RejectReason.NO_TIME_LEFT, subscriber=guest).exists()
