"""The issue's scenario on a movable clock, with the real parts: our RADIUS server answering FreeRADIUS's
radclient, and a NAS's CoA port (a UDP listener checking each request's authenticators) receiving what the CoA
queue sends. Nothing is called by hand between the money and the NAS: the sweep and the after-commit events
move the state, the network app queues the requests, ``send_due`` sends them.

A Cisco ISG NAS takes the debtor redirect live (its service commands by CoA), so access is restricted and
restored without a reconnect; suspension disconnects."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from pyrad import packet as radius_packet

from abonent.billing import actions as billing
from abonent.billing.testing import run_on
from abonent.core import clock
from abonent.dunning.evaluation import sweep
from abonent.dunning.models import AccessState, AccessStateKind
from abonent.network import actions as network
from abonent.network.coa import send_due
from abonent.network.models import AuthAttempt, CoaReason, CoaRequest, LoginKind, RejectReason, Session
from abonent.network.testing import RADCLIENT, CoaListener, radius_server
from abonent.network.testing import radclient as send_radclient
from abonent.notifications.models import Event, Message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("radius")]

State = AccessStateKind
SECRET = "a-long-shared-secret-for-the-scenario"
PAP = 'User-Name = "petrov"\nUser-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n'
DEBTORS = "subscriber:service-name=DEBTORS"


def at(day: int, month: int = 12, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _real_parts(settings):
    # As in tests/network: the server answers from committed data, which SQLite's test database cannot give
    # (its ledger triggers refuse the flush); CI runs this on PostgreSQL.
    if RADCLIENT is None:
        pytest.skip("radclient is not installed (apt-get install freeradius-utils)")
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("the RADIUS socket tests run on PostgreSQL")


@pytest.fixture
def server(tmp_path):
    return lambda: radius_server(tmp_path / "radius")


@pytest.fixture
def radclient():
    return send_radclient


@pytest.fixture
def listener():
    running = CoaListener(SECRET)
    yield running
    running.close()


@pytest.fixture
def cisco(admin, listener):
    return network.do_create_nas(
        acting_user=admin, name="isg-1", ip_address="127.0.0.1", secret=SECRET, vendor="cisco", coa_port=listener.port
    )


@pytest.fixture
def debtor(make_subscriber, make_plan, admin, settings):
    """On "Интернет-100" (650 ₽ a month) since 1 November with 700 ₽ paid: 50 ₽ left for December."""
    settings.ABONENT_QUIET_HOURS = ""
    plan = make_plan("internet-100", "650.00", name="Интернет-100", download_kbps=102400, upload_kbps=51200)
    subscriber = make_subscriber(last_name="Петров")
    with clock.travel_to(dt.date(2026, 11, 1)):
        billing.do_post_payment(subscriber, amount="700.00", channel="test", external_id="opening")
        billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        network.do_create_login(
            subscriber, acting_user=admin, kind=LoginKind.PPPOE, username="petrov", password="s3cret-pw"
        )
    return subscriber


def go_online(subscriber, nas) -> Session:
    login = subscriber.network_logins.get()
    return Session.objects.create(
        nas=nas,
        unique_id=f"u-{subscriber.pk}",
        acct_session_id="81a00003",
        login=login,
        subscriber=subscriber,
        username=login.username,
        framed_ip="100.64.0.10",
        started_at=at(1, 11, 8),
        updated_at=clock.now(),
    )


def state_of(subscriber) -> str:
    return AccessState.objects.get(subscriber=subscriber).state


def sent(listener) -> list[tuple[int, list[str]]]:
    """(code, Cisco-AVPair values) of what reached the NAS, in order."""
    return [(r["code"], r["attributes"].get("Cisco-AVPair", [])) for r in listener.received]


def sms_events(subscriber) -> list[str]:
    return list(
        Message.objects.filter(subscriber=subscriber, channel="sms").order_by("id").values_list("event", flat=True)
    )


def test_warned_restricted_by_coa_then_a_payment_restores_by_coa(debtor, cisco, listener, server, radclient):
    # 3 days before the charge of 1 December the 50 ₽ left do not cover it: warned, and told so.
    with clock.travel_to(at(28, 11)):
        sweep()
    assert state_of(debtor) == State.WARNED
    assert sms_events(debtor) == [Event.RUNOUT_SOON]
    assert "50,00" in Message.objects.get(subscriber=debtor, channel="sms").body

    # The billing run charges December; the next sweep restricts, and the CoA queue tells the live session.
    run_on(dt.date(2026, 12, 1))
    with clock.travel_to(at(1, hour=6)):
        session = go_online(debtor, cisco)
        sweep()
        assert send_due() == {"acked": 1}
    assert state_of(debtor) == State.RESTRICTED
    assert sms_events(debtor)[-1] == Event.RESTRICTED
    assert sent(listener) == [
        (radius_packet.CoARequest, ["subscriber:command=activate-service", DEBTORS]),
    ]
    assert listener.received[0]["authentic"] is True
    assert listener.received[0]["attributes"]["Acct-Session-Id"] == [session.acct_session_id]

    # A new connection now is let in to the payment page only.
    Session.objects.filter(pk=session.pk).update(status="closed", stopped_at=at(1, hour=7))
    with clock.travel_to(at(1, hour=8)), server() as running:
        answer = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Accept" in answer.stdout, answer.stdout + answer.stderr
    assert "DEBTORS" in answer.stdout

    # The payment restores access at once (after its commit, no sweep), by CoA on the live session.
    with clock.travel_to(at(2, hour=10)):
        session = Session.objects.create(
            nas=cisco, unique_id="u-2", acct_session_id="81a00004", login=debtor.network_logins.get(),
            subscriber=debtor, username="petrov", framed_ip="100.64.0.11", started_at=at(1, hour=8),
            updated_at=clock.now(),
        )  # fmt: skip
        billing.do_post_payment(debtor, amount="600.00", channel="test", external_id="debt")
        assert state_of(debtor) == State.ACTIVE
        assert send_due() == {"acked": 1}
    assert sent(listener)[-1] == (radius_packet.CoARequest, ["subscriber:command=deactivate-service", DEBTORS])
    restore = CoaRequest.objects.latest("pk")
    assert (restore.reason, restore.session_id) == (CoaReason.RESTORE, session.pk)
    assert sms_events(debtor)[-1] == Event.RESTORED
    with clock.travel_to(at(2, hour=11)), server() as running:
        Session.objects.filter(pk=session.pk).update(status="closed", stopped_at=at(2, hour=11))
        answer = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Accept" in answer.stdout
    assert "DEBTORS" not in answer.stdout


def test_without_payment_suspended_after_the_grace_days_with_a_disconnect(debtor, cisco, listener, server, radclient):
    run_on(dt.date(2026, 12, 1))
    with clock.travel_to(at(1, hour=6)):
        sweep()
    with clock.travel_to(at(14, hour=12)):
        session = go_online(debtor, cisco)
        sweep()
        send_due()
    assert state_of(debtor) == State.RESTRICTED
    listener.received.clear()

    with clock.travel_to(at(15, hour=7)):  # 14 days restricted
        sweep()
        assert send_due() == {"acked": 1}
    assert state_of(debtor) == State.SUSPENDED
    assert [code for code, _avpairs in sent(listener)] == [radius_packet.DisconnectRequest]
    assert listener.received[0]["attributes"]["Acct-Session-Id"] == [session.acct_session_id]
    assert sms_events(debtor)[-2:] == [Event.RESTRICTED, Event.SUSPENDED]
    assert AccessState.objects.get(subscriber=debtor).owed == Decimal("600.00")

    # The NAS stops the session; the subscriber's next attempt is rejected, and the state is the reason.
    Session.objects.filter(pk=session.pk).update(status="closed", stopped_at=at(15, hour=7))
    with clock.travel_to(at(15, hour=8)), server() as running:
        answer = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Reject" in answer.stdout, answer.stdout + answer.stderr
    assert AuthAttempt.objects.filter(subscriber=debtor).latest("pk").reason == RejectReason.SUSPENDED
