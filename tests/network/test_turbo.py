"""Turbo in the RADIUS policy: the bought speed until it runs out, in the in-memory store and on the wire."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from abonent.billing import actions as billing
from abonent.billing.models import Subscription
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.network.policy import PolicyStore
from abonent.network.vendors import Speed

from .conftest import SECRET

NOON = timezone.make_aware(dt.datetime(2026, 11, 10, 12, 0))
PAP = 'User-Name = "ivanov"\nUser-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n'


@pytest.fixture
def turbo(admin, plan):
    turbo = catalog.do_create_turbo(
        code="turbo-500", name="Турбо", download_kbps=512000, upload_kbps=256000, hours=3, price="50.00",
        acting_user=admin,
    )  # fmt: skip
    plan.turbos.add(turbo)
    return turbo


def _decide(customer, at):
    with clock.travel_to(at):
        store = PolicyStore.for_subscribers([customer.pk])
        return store.decide(store.by_login[("password", "ivanov")], timezone.localtime(at))


@pytest.mark.django_db
def test_the_turbo_speed_until_it_runs_out(customer, turbo, admin, plan):
    subscription = Subscription.objects.get(subscriber=customer)
    assert _decide(customer, NOON).speed.down_kbps == 102400
    with clock.travel_to(NOON):
        bought = billing.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    assert _decide(customer, NOON + dt.timedelta(minutes=1)).speed == Speed(512000, 256000)
    # A policy loaded while the turbo was on stops giving it at the end, worker or not.
    with clock.travel_to(NOON):
        store = PolicyStore.for_subscribers([customer.pk])
    policy = store.by_login[("password", "ivanov")]
    assert store.decide(policy, timezone.localtime(bought.ends_at - dt.timedelta(seconds=1))).speed.down_kbps == 512000
    assert store.decide(policy, timezone.localtime(bought.ends_at)).speed.down_kbps == 102400
    # A night speed faster than the turbo is kept.
    plan.night_download_kbps, plan.night_upload_kbps = 1024000, 1024000
    plan.night_starts_at, plan.night_ends_at = dt.time(1, 0), dt.time(7, 0)
    plan.save()
    with clock.travel_to(NOON):
        store = PolicyStore.for_subscribers([customer.pk])
    night = timezone.make_aware(dt.datetime(2026, 11, 11, 2, 0))
    policy = store.by_login[("password", "ivanov")]
    object.__setattr__(policy, "turbo_until", night + dt.timedelta(hours=1))
    assert store.decide(policy, night).speed.down_kbps == 1024000


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_a_running_server_answers_with_a_turbo_bought_after_it_started(
    customer, turbo, admin, make_nas, server, radclient
):
    make_nas("mikrotik")
    subscription = Subscription.objects.get(subscriber=customer)
    with server() as running:
        before = radclient(running.auth_port, SECRET, "auth", PAP)
        billing.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
        deadline = time.monotonic() + 10
        while True:  # the server follows the policy-change feed every 0.2 s here
            after = radclient(running.auth_port, SECRET, "auth", PAP)
            if "256000k/512000k" in after.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert 'Mikrotik-Rate-Limit = "51200k/102400k"' in before.stdout, before.stdout + before.stderr
    assert 'Mikrotik-Rate-Limit = "256000k/512000k"' in after.stdout, after.stdout + after.stderr


def _night_store():
    from abonent.network.selectors import LoginPolicy, PlanSpeeds

    store = PolicyStore()
    store.plans = {
        1: PlanSpeeds(
            day=Speed(100000, 100000),
            night=Speed(300000, 300000),
            night_from=dt.time(1, 0),
            night_until=dt.time(7, 0),
            fup=None,
            included_bytes=None,
        )
    }
    policy = LoginPolicy(1, 1, "pppoe", "ivanov", "", True, False, "active", 1, None, None, 1)
    return store, policy


@pytest.mark.parametrize(
    ("local", "zone", "speed", "timeout"),
    [
        # by day: the day speed until the night starts at 01:00
        (dt.datetime(2026, 11, 10, 23, 0), "Europe/Moscow", 100000, 2 * 3600),
        # at night: the night speed until 07:00
        (dt.datetime(2026, 11, 11, 1, 0), "Europe/Moscow", 300000, 6 * 3600),
        # the night of the spring change in Berlin (02:00 → 03:00) is an hour shorter
        (dt.datetime(2026, 3, 29, 1, 30), "Europe/Berlin", 300000, 4 * 3600 + 1800),
        # and the autumn one an hour longer
        (dt.datetime(2026, 10, 25, 1, 30), "Europe/Berlin", 300000, 6 * 3600 + 1800),
    ],
)
def test_night_speed_and_the_session_timeout_to_the_next_boundary(local, zone, speed, timeout):
    from zoneinfo import ZoneInfo

    store, policy = _night_store()
    decision = store.decide(policy, local.replace(tzinfo=ZoneInfo(zone)))
    assert (decision.speed.down_kbps, decision.session_timeout) == (speed, timeout)
