"""The FUP speed: a plan with included traffic throttles a subscriber over it, whichever way the login finds
its plan."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from abonent.billing import actions as billing
from abonent.billing.models import Subscription
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.core.scheduler import registered_jobs
from abonent.network import actions as network
from abonent.network import tasks
from abonent.network.models import CoaKind, CoaReason, CoaRequest, Login, LoginKind, QuotaMark, Session, UsageDay
from abonent.network.policy import PolicyStore
from abonent.network.selectors import subscribers_over_quota
from abonent.network.vendors import Speed

pytestmark = pytest.mark.django_db

GB = 1_000_000_000
NOV_1 = dt.date(2026, 11, 1)
NOV_20_NOON = timezone.make_aware(dt.datetime(2026, 11, 20, 12, 0))


@pytest.fixture
def fup_plan(admin, internet):
    return catalog.do_create_plan(
        code="lte-50",
        name="50 ГБ",
        service=internet,
        monthly_fee=Decimal("400.00"),
        valid_from=dt.date(2020, 1, 1),
        download_kbps=102400,
        upload_kbps=51200,
        included_bytes=50 * GB,
        fup_download_kbps=1024,
        fup_upload_kbps=512,
        acting_user=admin,
    )


@pytest.fixture
def on_fup_plan(make_subscriber, fup_plan, admin):
    """A subscriber on the FUP plan with a PPPoE login created as the console creates it: no subscription."""
    subscriber = make_subscriber()
    with clock.travel_to(NOV_1):
        billing.do_post_payment(subscriber, amount="1000.00", channel="cash", external_id="c-1", acting_user=admin)
        billing.do_activate_subscription(subscriber, plan=fup_plan, acting_user=admin)
        network.do_create_login(
            subscriber, acting_user=admin, kind=LoginKind.PPPOE, username="ivanov", password="s3cret-pw"
        )
    assert Login.objects.get(username="ivanov").subscription is None
    return subscriber


def _used(subscriber, day, gigabytes):
    UsageDay.objects.create(
        subscriber=subscriber, day=day, input_octets=gigabytes * GB // 4, output_octets=gigabytes * GB * 3 // 4
    )


def _speed(subscriber):
    with clock.travel_to(NOV_20_NOON):
        store = PolicyStore.for_subscribers([subscriber.pk])
        return store.decide(store.by_login[("password", "ivanov")], NOV_20_NOON).speed


def test_a_login_without_a_subscription_gets_the_fup_speed_over_the_quota(on_fup_plan):
    _used(on_fup_plan, dt.date(2026, 11, 5), 30)
    assert _speed(on_fup_plan) == Speed(102400, 51200)
    assert subscribers_over_quota(NOV_1) == set()

    _used(on_fup_plan, dt.date(2026, 11, 19), 21)

    assert subscribers_over_quota(NOV_1) == {on_fup_plan.pk}
    assert _speed(on_fup_plan) == Speed(1024, 512)
    # The whole store, as abonent radius loads it, says the same.
    with clock.travel_to(NOV_20_NOON):
        store = PolicyStore()
        store.load_all()
    assert store.over_quota == {on_fup_plan.pk}
    assert store.decide(store.by_login[("password", "ivanov")], NOV_20_NOON).speed == Speed(1024, 512)


def test_last_months_traffic_does_not_count(on_fup_plan):
    _used(on_fup_plan, dt.date(2026, 10, 31), 80)
    assert subscribers_over_quota(NOV_1) == set()
    assert _speed(on_fup_plan) == Speed(102400, 51200)


def test_the_quota_of_the_plan_the_login_is_bound_to(on_fup_plan, admin):
    # Given the login bound to a subscription on a plan without a quota, beside the subscriber's FUP one
    business = catalog.do_create_service(
        code="internet-b2b", name="Интернет для бизнеса", kind="internet", acting_user=admin
    )
    unlimited = catalog.do_create_plan(
        code="b2b-100",
        name="Бизнес 100",
        service=business,
        monthly_fee=Decimal("1500.00"),
        valid_from=dt.date(2020, 1, 1),
        download_kbps=102400,
        upload_kbps=102400,
        acting_user=admin,
    )
    with clock.travel_to(NOV_1):
        other = billing.do_activate_subscription(on_fup_plan, plan=unlimited, acting_user=admin)
    login = Login.objects.get(username="ivanov")
    network.do_update_login(login, acting_user=admin, subscription=other)
    _used(on_fup_plan, dt.date(2026, 11, 19), 60)
    # Then no FUP plan sets that login's speed: not throttled
    assert subscribers_over_quota(NOV_1) == set()
    assert _speed(on_fup_plan) == Speed(102400, 102400)


def test_a_terminated_fup_subscription_does_not_throttle(on_fup_plan, admin):
    subscription = Subscription.objects.get(subscriber=on_fup_plan)
    with clock.travel_to(dt.date(2026, 11, 10)):
        billing.do_terminate_subscription(subscription, acting_user=admin, reason="moved away")
    _used(on_fup_plan, dt.date(2026, 11, 19), 60)
    assert subscribers_over_quota(NOV_1) == set()


def test_only_the_subscribers_asked_about(on_fup_plan, make_subscriber, fup_plan, admin):
    _used(on_fup_plan, dt.date(2026, 11, 19), 60)
    other = make_subscriber(last_name="Петров")
    with clock.travel_to(NOV_1):
        billing.do_activate_subscription(other, plan=fup_plan, acting_user=admin)
    network.do_create_login(other, acting_user=admin, kind=LoginKind.PPPOE, username="petrov", password="pw-petrov")
    _used(other, dt.date(2026, 11, 19), 60)
    assert subscribers_over_quota(NOV_1) == {on_fup_plan.pk, other.pk}
    assert subscribers_over_quota(NOV_1, [other.pk]) == {other.pk}


# --- crossing the quota mid-session: the worker's CoA ------------------------------------------------------


def _online(subscriber, nas):
    now = clock.now()
    return Session.objects.create(
        nas=nas,
        unique_id=f"u{subscriber.pk}",
        acct_session_id=f"s{subscriber.pk}",
        subscriber=subscriber,
        username="ivanov",
        framed_ip="100.64.0.7",
        started_at=now,
        updated_at=now,
    )


def test_crossing_the_quota_online_queues_the_fup_speed_once_and_the_month_gives_it_back(on_fup_plan, make_nas):
    # Given a subscriber online under the quota
    session = _online(on_fup_plan, make_nas("accel_ppp"))
    _used(on_fup_plan, dt.date(2026, 11, 5), 30)
    with clock.travel_to(NOV_20_NOON):
        assert network.sync_fup_speeds() == {"throttled": 0, "released": 0, "requests": 0}

    # When this month's traffic crosses the included volume
    _used(on_fup_plan, dt.date(2026, 11, 20), 21)
    with clock.travel_to(NOV_20_NOON):
        result = network.sync_fup_speeds()
        again = network.sync_fup_speeds()

    # Then the session gets the FUP speed by CoA, once
    assert result == {"throttled": 1, "released": 0, "requests": 1}
    assert again == {"throttled": 0, "released": 0, "requests": 0}
    request = CoaRequest.objects.get()
    assert (request.kind, request.reason, request.session_id) == (CoaKind.COA, CoaReason.FUP, session.pk)
    assert request.attributes["Filter-Id"] == ["1024/512"]

    # When the month turns
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 12, 1, 0, 1))):
        result = network.sync_fup_speeds()
        again = network.sync_fup_speeds()

    # Then the plan's speed comes back by CoA, once
    assert result == {"throttled": 0, "released": 1, "requests": 1}
    assert again == {"throttled": 0, "released": 0, "requests": 0}
    back = CoaRequest.objects.latest("id")
    assert (back.reason, back.attributes["Filter-Id"]) == (CoaReason.FUP, ["102400/51200"])
    assert CoaRequest.objects.count() == 2
    assert not QuotaMark.objects.exists()


def test_a_subscriber_offline_when_crossing_is_marked_and_sent_nothing(on_fup_plan, make_nas):
    nas = make_nas("accel_ppp")
    _used(on_fup_plan, dt.date(2026, 11, 19), 60)
    with clock.travel_to(NOV_20_NOON):
        assert network.sync_fup_speeds() == {"throttled": 1, "released": 0, "requests": 0}
        # Coming online later, the Access-Accept already carries the FUP speed: no CoA for it.
        _online(on_fup_plan, nas)
        assert network.sync_fup_speeds() == {"throttled": 0, "released": 0, "requests": 0}
    assert QuotaMark.objects.filter(subscriber=on_fup_plan).exists()
    assert not CoaRequest.objects.exists()


def test_a_crossing_another_run_took_is_not_pushed_again(on_fup_plan, make_nas, monkeypatch):
    # Given a run that read the marks before a concurrent run marked the crossing and committed
    _online(on_fup_plan, make_nas("accel_ppp"))
    _used(on_fup_plan, dt.date(2026, 11, 19), 60)
    with clock.travel_to(NOV_20_NOON):
        assert network.sync_fup_speeds()["requests"] == 1
        monkeypatch.setattr(network, "_quota_marked", set)
        # When it writes, the mark's unique key says the crossing is taken
        assert network.sync_fup_speeds() == {"throttled": 0, "released": 0, "requests": 0}
    assert CoaRequest.objects.count() == 1


def test_the_worker_job_is_registered_every_minute():
    job = registered_jobs()["network.sync_fup_speeds"]
    assert job.every == dt.timedelta(minutes=1)
    assert job.task is tasks.sync_fup_speeds
