"""Attack review of Session-Timeout for time plans: the RADIUS answer must never let a subscriber online for more
than the money and package time left buy. Each test states the correct behaviour and fails today."""

import datetime as dt
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from abonent.billing import actions as billing
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.network import actions as network
from abonent.network.models import LoginKind, Session
from abonent.network.policy import PolicyStore

D = Decimal


@pytest.fixture
def time_plan(admin, internet):
    return catalog.do_create_plan(
        code="wifi", name="Wi-Fi", service=internet, monthly_fee=D("0"), unit_price=D("1.00"), charge_mode="time",
        time_unit="minute", download_kbps=10240, upload_kbps=10240, valid_from=dt.date(2020, 1, 1), acting_user=admin,
    )  # fmt: skip


def _guest(make_subscriber, time_plan, admin, *, simultaneous_use=1):
    """A hotspot login on the per-minute plan with 10.00 ₽: ten minutes."""
    subscriber = make_subscriber()
    billing.do_post_payment(subscriber, amount="10.00", channel="cash", external_id="g-1", acting_user=admin)
    billing.do_activate_subscription(subscriber, plan=time_plan, acting_user=admin)
    login = network.do_create_login(
        subscriber, acting_user=admin, kind=LoginKind.HOTSPOT, username="guest", password="wifi-pw",
        simultaneous_use=simultaneous_use,
    )  # fmt: skip
    return subscriber, login


def _decide(store):
    return store.decide(store.by_login[("password", "guest")], timezone.localtime())


@pytest.mark.django_db
def test_a_reconnect_before_the_next_rating_pass_does_not_get_the_whole_budget_again(
    make_subscriber, time_plan, admin, make_nas
):
    """``abonent radius`` keeps the budget read at its last reload; the pending time in it is only the sessions
    known then (time_budget.py:42-55). A session that started after the reload, used 9 of the 10 minutes and stopped
    is seen by the store (session_started/session_stopped) but not by seconds_left, and nothing reloads the
    budget until the rating pass (every 5 min) charges it: the reconnect gets the full 600 s again, and again
    for every reconnect until then — the balance goes negative by several budgets."""
    guest, login = _guest(make_subscriber, time_plan, admin)
    nas = make_nas()
    store = PolicyStore.for_subscribers([guest.pk])
    assert _decide(store).session_timeout == 600
    started = clock.now() - dt.timedelta(minutes=9)
    store.session_started(login.pk, "s-1", nas.pk, started)
    store.session_stopped(login.pk, "s-1")
    again = _decide(store)
    assert again.accept
    assert again.session_timeout <= 60  # one minute left


@pytest.mark.django_db
def test_two_sessions_at_once_do_not_each_get_the_whole_budget(make_subscriber, time_plan, admin, make_nas):
    """simultaneous_use = 2: the second Access-Request, a second after the first, is answered from a budget that
    has the first session pending for one second only (time_budget.py:42-55), so both get ~600 s for 10.00 ₽ and
    the NAS lets them use 20 minutes: the balance ends at −10.00 with no credit limit."""
    guest, login = _guest(make_subscriber, time_plan, admin, simultaneous_use=2)
    nas = make_nas()
    first = _decide(PolicyStore.for_subscribers([guest.pk])).session_timeout
    Session.objects.create(
        nas=nas, unique_id="x1", acct_session_id="a1", subscriber=guest, login=login, username="guest",
        started_at=clock.now() - dt.timedelta(seconds=1), updated_at=clock.now(), session_time=1,
    )  # fmt: skip
    second = _decide(PolicyStore.for_subscribers([guest.pk])).session_timeout
    assert first + second <= 600 + 1  # together they may use what 10.00 ₽ buys, not twice that


@pytest.mark.django_db
def test_the_budget_after_a_price_rise_at_midnight_uses_the_new_price(make_subscriber, time_plan, admin):
    """Docs: "units = whole units the money left buys at today's price". The price is read into the budget when
    it is loaded (time_budget.py:74-80, clock.today()) and only balance changes and package purchases reload it:
    a store loaded before midnight keeps yesterday's price all the next day."""
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 12, 9, 12, 0))):
        catalog.do_add_plan_price(
            time_plan, valid_from=dt.date(2026, 12, 10), monthly_fee=D("0"), unit_price=D("2.00"), acting_user=admin
        )
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 12, 9, 23, 59))):
        guest, _login = _guest(make_subscriber, time_plan, admin)
        store = PolicyStore.for_subscribers([guest.pk])
        assert _decide(store).session_timeout == 600
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 12, 10, 0, 1))):
        assert _decide(store).session_timeout == 300  # 10.00 ₽ at 2.00 a minute


@pytest.mark.django_db
def test_an_expired_package_no_longer_counts_in_session_timeout(make_subscriber, time_plan, admin):
    """The budget keeps the package seconds left but not when they expire (TimeBudget, time_budget.py:26-36), and
    expiry reloads nothing: after the package's end a new session is still promised its 30 minutes, which rating
    then charges from the money (a package counts only for parts starting before its end) — 40.00 ₽ of debt on
    10.00 ₽."""
    start = timezone.make_aware(dt.datetime(2026, 12, 9, 12, 0))
    with clock.travel_to(start):
        guest, _login = _guest(make_subscriber, time_plan, admin)
        package = catalog.do_create_time_package(
            code="p", name="p", seconds=1800, validity_days=1, price="0.00", plans=[time_plan], acting_user=admin
        )
        billing.do_buy_time_package(guest.subscriptions.get(), package=package, acting_user=admin)
    with clock.travel_to(start + dt.timedelta(hours=23, minutes=59)):
        store = PolicyStore.for_subscribers([guest.pk])
        assert _decide(store).session_timeout == 1800 + 600
    with clock.travel_to(start + dt.timedelta(days=1, minutes=1)):
        assert _decide(store).session_timeout == 600  # the money only


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_radclient_a_wifi_card_reconnecting_after_nine_minutes_gets_one_minute_not_ten(
    admin, branch, make_nas, server, radclient
):
    """End to end: a 10.00 ₽ Wi-Fi card on a 1.00 ₽/min plan. The first login gets Session-Timeout 600; the NAS
    reports the session's Stop after 540 s. Nothing reloads the budget of ``abonent radius`` on accounting (the
    feed follows balance changes, i.e. the rating pass up to 5 min later), so the card logs in again at once with
    600 s more, and again after that: ten minutes of money buy twenty and more."""
    import uuid

    from abonent.vouchers import actions as vouchers
    from abonent.vouchers import wifi
    from abonent.vouchers.testing import card, code_of

    from .conftest import SECRET

    plan = catalog.do_create_plan(
        code="wifi-card", name="Wi-Fi card", service=catalog.do_create_service(
            code="hotspot", name="Hotspot", kind="internet", acting_user=admin
        ), monthly_fee=D("0"), unit_price=D("1.00"), charge_mode="time", time_unit="minute", download_kbps=10240,
        upload_kbps=10240, valid_from=dt.date(2020, 1, 1), acting_user=admin,
    )  # fmt: skip
    dealer = vouchers.do_create_dealer(name="Киоск", commission_percent="5", acting_user=admin)
    series = vouchers.do_create_series(
        name="Wi-Fi 10", kind="wifi", amount="10.00", count=1, expires_on=dt.date(2099, 6, 30), plan=plan,
        branch=branch, acting_user=admin,
    )  # fmt: skip
    vouchers.do_sell_vouchers(series, dealer=dealer, first=1, last=1, key=str(uuid.uuid4()), acting_user=admin)
    access = wifi.activate_wifi(code=code_of(card(series, 1)), client_ip="10.5.0.17")
    make_nas()
    auth = (
        f'User-Name = "{access.username}"\nUser-Password = "{access.password}"\nService-Type = Login-User\n'
        "Message-Authenticator = 0x00\n"
    )
    stop = (
        f'User-Name = "{access.username}"\nAcct-Status-Type = Stop\nAcct-Session-Id = "card-1"\n'
        "NAS-IP-Address = 127.0.0.1\nAcct-Session-Time = 540\nAcct-Terminate-Cause = User-Request\n"
    )
    with server() as running:
        time.sleep(1.5)  # the server has settled: its first re-reads of the feed are done
        first = radclient(running.auth_port, SECRET, "auth", auth)
        acct = radclient(running.acct_port, SECRET, "acct", stop)
        assert "Received Accounting-Response" in acct.stdout, acct.stdout + acct.stderr
        deadline = time.monotonic() + 10
        while not Session.objects.filter(acct_session_id="card-1").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # a few ticks of the policy refresher (0.2 s here)
        second = radclient(running.auth_port, SECRET, "auth", auth)
    assert "Session-Timeout = 600" in first.stdout, first.stdout + first.stderr
    assert "Received Access-Accept" in second.stdout, second.stdout + second.stderr
    timeout = int(second.stdout.split("Session-Timeout = ")[1].split()[0])
    assert timeout <= 60  # 9 of the card's 10 minutes are used


@pytest.mark.django_db
def test_the_monthly_fee_of_another_subscription_reaches_the_hotspot_session_timeout(make_subscriber, plan, admin):
    """Docs: the budget is reloaded "when the balance of a subscriber on a time plan changes". The billing run's
    fees change it without any event (engine.py emits only plans_switched), so a subscriber with home internet
    (650 ₽) and Wi-Fi by the minute keeps, at the RADIUS server, the money the 1st's fee has already taken."""
    from abonent.billing.testing import run_on
    from abonent.network.models import RejectReason

    hotspot = catalog.do_create_service(code="hotspot", name="Hotspot", kind="internet", acting_user=admin)
    wifi = catalog.do_create_plan(
        code="wifi-h", name="Wi-Fi", service=hotspot, monthly_fee=D("0"), unit_price=D("1.00"), charge_mode="time",
        time_unit="minute", download_kbps=10240, upload_kbps=10240, valid_from=dt.date(2020, 1, 1), acting_user=admin,
    )  # fmt: skip
    subscriber = make_subscriber()
    with clock.travel_to(dt.date(2026, 11, 1)):
        billing.do_post_payment(subscriber, amount="1300.00", channel="cash", external_id="h-1", acting_user=admin)
        billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)  # November's 650 ₽
        billing.do_activate_subscription(subscriber, plan=wifi, acting_user=admin)
        network.do_create_login(
            subscriber, acting_user=admin, kind=LoginKind.HOTSPOT, username="guest", password="wifi-pw",
            subscription=subscriber.subscriptions.get(plan=wifi),
        )  # fmt: skip
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 11, 30, 23, 0))):
        store = PolicyStore()
        store.load_all()
        store.apply_changes()  # the trailing window of the feed, as the first ticks do
        assert _decide(store).session_timeout == 650 * 60
    run_on(dt.date(2026, 12, 1))  # December's 650 ₽: nothing left for Wi-Fi
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 12, 1, 9, 0))):
        store.apply_changes()
        decision = _decide(store)
    assert (decision.accept, decision.reason) == (False, RejectReason.NO_TIME_LEFT)


@pytest.mark.django_db
def test_an_open_home_session_does_not_eat_the_hotspot_budget(make_subscriber, plan, admin, make_nas):
    """time_budget._pending (time_budget.py:118-121) takes every unrated session of the subscriber, not those of
    the time subscription's logins: a home PPPoE session online for 3 hours on the monthly plan counts as 180
    paid minutes against the Wi-Fi money: the hotspot Session-Timeout drops by 3 hours (to no_time_left when the
    money is less), and it keeps falling for as long as the home session is online."""
    hotspot = catalog.do_create_service(code="hotspot", name="Hotspot", kind="internet", acting_user=admin)
    wifi = catalog.do_create_plan(
        code="wifi-h", name="Wi-Fi", service=hotspot, monthly_fee=D("0"), unit_price=D("1.00"), charge_mode="time",
        time_unit="minute", download_kbps=10240, upload_kbps=10240, valid_from=dt.date(2020, 1, 1), acting_user=admin,
    )  # fmt: skip
    subscriber = make_subscriber()
    billing.do_post_payment(subscriber, amount="750.00", channel="cash", external_id="h-1", acting_user=admin)
    home_sub = billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    wifi_sub = billing.do_activate_subscription(subscriber, plan=wifi, acting_user=admin)
    home = network.do_create_login(
        subscriber, acting_user=admin, kind=LoginKind.PPPOE, username="home-1", password="pw-home-1",
        subscription=home_sub,
    )  # fmt: skip
    network.do_create_login(
        subscriber, acting_user=admin, kind=LoginKind.HOTSPOT, username="guest", password="wifi-pw",
        subscription=wifi_sub,
    )  # fmt: skip
    before = _decide(PolicyStore.for_subscribers([subscriber.pk]))
    assert before.accept
    Session.objects.create(
        nas=make_nas(), unique_id="home-x", acct_session_id="h1", subscriber=subscriber, login=home,
        username="home-1", started_at=clock.now() - dt.timedelta(hours=3), updated_at=clock.now(), session_time=10800,
    )  # fmt: skip
    after = _decide(PolicyStore.for_subscribers([subscriber.pk]))
    assert after.accept
    assert after.session_timeout == before.session_timeout
