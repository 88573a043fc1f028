"""A plan change the billing run puts in force reaches RADIUS: the policy-change feed and a CoA, in the run's
transaction, once."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from abonent.billing import actions as billing
from abonent.billing.engine import plans_switched, run_billing
from abonent.billing.models import Subscription, SubscriptionEvent
from abonent.billing.testing import run_on
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.network import actions as network
from abonent.network.models import CoaKind, CoaReason, CoaRequest, LoginKind, PolicyChange, Session
from abonent.network.policy import PolicyStore
from abonent.network.vendors import Speed

pytestmark = pytest.mark.django_db

NOV_1, NOV_20, DEC_1 = dt.date(2026, 11, 1), dt.date(2026, 11, 20), dt.date(2026, 12, 1)


@pytest.fixture
def gamer(admin, internet):
    return catalog.do_create_plan(
        code="gamer-300",
        name="Игровой 300",
        service=internet,
        monthly_fee=Decimal("900.00"),
        valid_from=dt.date(2020, 1, 1),
        download_kbps=307200,
        upload_kbps=153600,
        acting_user=admin,
    )


@pytest.fixture
def home(admin, internet):
    return catalog.do_create_plan(
        code="home-50",
        name="Домашний 50",
        service=internet,
        monthly_fee=Decimal("500.00"),
        valid_from=dt.date(2020, 1, 1),
        download_kbps=51200,
        upload_kbps=25600,
        acting_user=admin,
    )


@pytest.fixture
def downgrading(make_subscriber, gamer, home, admin):
    """A subscriber on the gamer plan, online on an accel-ppp NAS, with a downgrade to home for December."""
    subscriber = make_subscriber()
    with clock.travel_to(NOV_1):
        billing.do_post_payment(subscriber, amount="3000.00", channel="cash", external_id="c-1", acting_user=admin)
        subscription = billing.do_activate_subscription(subscriber, plan=gamer, acting_user=admin)
        network.do_create_login(
            subscriber, acting_user=admin, kind=LoginKind.PPPOE, username="ivanov", password="s3cret-pw"
        )
    with clock.travel_to(NOV_20):
        billing.do_change_plan(subscription, plan=home, acting_user=admin)
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.pending_plan, subscription.pending_plan_from) == (gamer, home, DEC_1)
    return subscriber


def _online(subscriber, nas):
    now = clock.now()
    return Session.objects.create(
        nas=nas,
        unique_id="u1",
        acct_session_id="s1",
        subscriber=subscriber,
        username="ivanov",
        framed_ip="100.64.0.7",
        started_at=now,
        updated_at=now,
    )


def _speed(store):
    return store.decide(store.by_login[("password", "ivanov")], timezone.localtime(clock.now())).speed


def _feed(subscriber):
    return PolicyChange.objects.filter(subscriber_id=subscriber.pk).count()


def test_a_scheduled_downgrade_reaches_the_policy_and_the_open_session_once(downgrading, gamer, home, make_nas):
    # Given the RADIUS policy loaded before December and a session online
    session = _online(downgrading, make_nas("accel_ppp"))
    with clock.travel_to(NOV_20):
        store = PolicyStore()
        store.load_all()
        assert _speed(store) == Speed(307200, 153600)
    feed_before = _feed(downgrading)

    # When December's billing run switches the plan
    run_on(DEC_1)

    # Then the store following the feed re-reads the subscriber and answers with the new plan's speed
    assert Subscription.objects.get(subscriber=downgrading).plan == home
    assert _feed(downgrading) == feed_before + 1
    with clock.travel_to(DEC_1):
        assert store.apply_changes() == 1
        assert _speed(store) == Speed(51200, 25600)
    # and the open session gets it by CoA, without a reconnect
    request = CoaRequest.objects.get()
    assert (request.kind, request.reason, request.session_id) == (CoaKind.COA, CoaReason.PLAN_CHANGE, session.pk)
    assert request.attributes["Filter-Id"] == ["51200/25600"]
    assert request.attributes["Acct-Session-Id"] == ["s1"]
    # and the subscription's history shows the change on the day it took effect
    event = SubscriptionEvent.objects.get(subscription__subscriber=downgrading, kind="plan_changed")
    assert (event.from_plan, event.to_plan, timezone.localtime(event.effective_at).date()) == (gamer, home, DEC_1)

    # When the run is repeated, and the next day's run comes
    run_on(DEC_1)
    run_on(dt.date(2026, 12, 2))

    # Then nothing is written twice
    assert _feed(downgrading) == feed_before + 1
    assert CoaRequest.objects.count() == 1
    assert SubscriptionEvent.objects.filter(kind="plan_changed").count() == 1


def test_an_offline_subscriber_gets_the_feed_entry_and_no_coa(downgrading, make_nas):
    make_nas("accel_ppp")
    feed_before = _feed(downgrading)
    run_on(DEC_1)
    assert _feed(downgrading) == feed_before + 1
    assert not CoaRequest.objects.exists()


def test_a_run_without_a_plan_change_writes_nothing_for_radius(make_subscriber, gamer, admin, make_nas):
    subscriber = make_subscriber()
    with clock.travel_to(NOV_1):
        billing.do_activate_subscription(subscriber, plan=gamer, acting_user=admin)
    _online(subscriber, make_nas("accel_ppp"))
    feed_before = PolicyChange.objects.count()
    assert run_on(DEC_1).charges == 1
    assert PolicyChange.objects.count() == feed_before
    assert not CoaRequest.objects.exists()


def test_the_feed_and_the_coa_roll_back_with_the_switch(downgrading, gamer, home, make_nas):
    # Given a chunk whose transaction fails after the switch was written and signalled
    _online(downgrading, make_nas("accel_ppp"))
    feed_before = _feed(downgrading)

    def fail(sender, **kwargs):
        raise RuntimeError("the chunk's transaction fails here")

    plans_switched.connect(fail, dispatch_uid="test.fail")
    try:
        with pytest.raises(RuntimeError):
            run_on(DEC_1)
    finally:
        plans_switched.disconnect(dispatch_uid="test.fail")

    # Then nothing of it is left: no switch, no feed entry, no CoA
    assert Subscription.objects.get(subscriber=downgrading).plan == gamer
    assert _feed(downgrading) == feed_before
    assert not CoaRequest.objects.exists()

    # And the run done again does all of it once
    run_on(DEC_1)
    assert Subscription.objects.get(subscriber=downgrading).plan == home
    assert _feed(downgrading) == feed_before + 1
    assert CoaRequest.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_parallel_chunks_each_write_their_switches(make_subscriber, gamer, home, admin, make_nas):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("parallel chunk workers run on PostgreSQL only")
    # Given two subscribers with a downgrade for December, each in a chunk of its own
    make_nas("accel_ppp")
    subscribers = [make_subscriber(last_name=name) for name in ("Иванов", "Петров")]
    for subscriber in subscribers:
        with clock.travel_to(NOV_1):
            subscription = billing.do_activate_subscription(subscriber, plan=gamer, acting_user=admin)
        with clock.travel_to(NOV_20):
            billing.do_change_plan(subscription, plan=home, acting_user=admin)
    last_before = PolicyChange.objects.order_by("-id").values_list("id", flat=True).first() or 0

    # When the run takes the chunks on two workers, each with its own connection and transaction
    with clock.travel_to(DEC_1):
        result = run_billing(DEC_1, chunk_size=1, workers=2)

    # Then both switches reached the feed, once
    assert (result.workers, result.charges) == (2, 2)
    assert set(Subscription.objects.values_list("plan_id", flat=True)) == {home.pk}
    fed = PolicyChange.objects.filter(id__gt=last_before).values_list("subscriber_id", flat=True)
    assert sorted(fed) == sorted(s.pk for s in subscribers)
