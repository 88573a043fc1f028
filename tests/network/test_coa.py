"""The CoA / Disconnect client (RFC 5176) against a local NAS stand-in: a UDP listener that decodes with pyrad,
checks the Request Authenticator and Message-Authenticator with the NAS's secret, and answers as scripted."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone, translation
from pyrad import packet as radius_packet

from abonent.billing import actions as billing
from abonent.billing.models import Subscription
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.network import actions as network
from abonent.network.access import sync_access_states
from abonent.network.coa import send_due
from abonent.network.models import (
    AccessMark,
    CoaError,
    CoaKind,
    CoaReason,
    CoaRequest,
    CoaStatus,
    LoginKind,
    Session,
    SessionStatus,
)
from abonent.network.testing import ACK, DROP, CoaListener
from abonent.staff.permissions import Role

from .conftest import SECRET
from .states import into_debt, pays

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(dt.datetime(2025, 3, 10, 12, 0))


def nak(cause: int | None = None) -> tuple[str, int | None]:
    return ("nak", cause)


@pytest.fixture
def listener():
    running = CoaListener(SECRET)
    yield running
    running.close()


@pytest.fixture
def nas(make_nas, listener):
    return make_nas("mikrotik", coa_port=listener.port)


@pytest.fixture
def online(customer, nas):
    return open_session(customer, nas)


def open_session(customer, nas) -> Session:
    """The customer's PPPoE session on the NAS, as accounting would have opened it."""
    login = customer.network_logins.get()
    return Session.objects.create(
        nas=nas,
        unique_id="u-1",
        acct_session_id="81a00003",
        login=login,
        subscriber=customer,
        username=login.username,
        framed_ip="100.64.0.10",
        started_at=T0 - dt.timedelta(hours=1),
        updated_at=T0 - dt.timedelta(minutes=2),
    )


def _queue_disconnect(session) -> CoaRequest:
    with clock.travel_to(T0):
        [request] = network.queue_disconnect(session.subscriber_id, reason=CoaReason.SUSPEND)
    return request


def test_plan_change_pushes_the_new_rate_limit_to_the_nas_and_ends_acked(
    customer, online, listener, admin, internet, django_capture_on_commit_callbacks
):
    # given an online subscriber and a faster plan
    faster = catalog.do_create_plan(
        code="home-200",
        name="Домашний 200",
        service=internet,
        monthly_fee=Decimal("700.00"),
        valid_from=dt.date(2020, 1, 1),
        download_kbps=204800,
        upload_kbps=102400,
        acting_user=admin,
    )
    subscription = Subscription.objects.get(subscriber=customer)
    # when staff upgrade the plan and the queue is sent
    with clock.travel_to(T0):
        with django_capture_on_commit_callbacks(execute=True):
            billing.do_change_plan(subscription, plan=faster, acting_user=admin)
        counts = send_due()
    # then the NAS got one authentic CoA-Request naming the session, with the new speed
    assert counts == {"acked": 1}
    assert listener.received == [
        {
            "code": radius_packet.CoARequest,
            "authentic": True,
            "attributes": {
                "User-Name": ["ivanov"],
                "Acct-Session-Id": ["81a00003"],
                "Framed-IP-Address": ["100.64.0.10"],
                "Mikrotik-Rate-Limit": ["102400k/204800k"],
            },
        }
    ]
    request = CoaRequest.objects.get()
    assert (request.kind, request.reason, request.session_id) == (CoaKind.COA, CoaReason.PLAN_CHANGE, online.pk)
    assert (request.status, request.attempts, request.finished_at) == (CoaStatus.ACKED, 1, T0)
    assert (request.error_cause, request.last_error, request.error_text) == (None, "", "")


def test_nak_503_session_context_not_found_ends_naked_at_once(online, listener):
    # given a NAS that no longer has the session
    request = _queue_disconnect(online)
    listener.script = [nak(503)]
    # when the queue is sent
    with clock.travel_to(T0):
        assert send_due() == {"naked": 1}
    # then the refusal and its cause are kept, and no retry is planned
    request.refresh_from_db()
    assert (request.status, request.attempts, request.error_cause, request.finished_at) == (
        CoaStatus.NAKED,
        1,
        503,
        T0,
    )
    assert (request.last_error, request.error_detail) == (CoaError.NAK, "")
    assert request.error_text == "The NAS refused the request: Error-Cause 503 (Session-Context-Not-Found)."
    assert len(listener.received) == 1
    # the session row is left to accounting and the stale-session sweeper (see abonent/network/coa.py)
    online.refresh_from_db()
    assert online.status == SessionStatus.OPEN
    # and nothing is sent again later
    with clock.travel_to(T0 + dt.timedelta(hours=1)):
        assert send_due() == {}
    assert len(listener.received) == 1


def test_silence_is_retried_with_backoff_and_ends_failed_after_five_attempts(online, listener):
    # given a NAS that never answers
    request = _queue_disconnect(online)
    listener.script = [DROP] * 5
    moment = T0
    # when the worker runs at each moment a retry falls due
    for attempt, wait_s in enumerate((10, 30, 90, 270), start=1):
        with clock.travel_to(moment):
            assert send_due(timeout=0.2) == {"retry": 1}
        request.refresh_from_db()
        assert (request.status, request.attempts) == (CoaStatus.PENDING, attempt)
        assert request.next_attempt_at == moment + dt.timedelta(seconds=wait_s)
        assert (request.last_error, request.error_detail) == (CoaError.NO_ANSWER, "0.2")
        assert request.error_text == "No answer from the NAS within 0.2 s."
        # not due a second earlier
        with clock.travel_to(request.next_attempt_at - dt.timedelta(seconds=1)):
            assert send_due(timeout=0.2) == {}
        moment = request.next_attempt_at
    with clock.travel_to(moment):
        assert send_due(timeout=0.2) == {"failed": 1}
    # then it was sent five times and is given up
    request.refresh_from_db()
    assert (request.status, request.attempts, request.finished_at, request.error_cause) == (
        CoaStatus.FAILED,
        5,
        moment,
        None,
    )
    assert len(listener.received) == 5
    assert all(packet["authentic"] for packet in listener.received)
    with clock.travel_to(moment + dt.timedelta(days=1)):
        assert send_due(timeout=0.2) == {}


def test_other_naks_are_retried_and_end_naked_after_five_attempts(online, listener):
    request = _queue_disconnect(online)
    listener.script = [nak(506)] * 5
    moment = T0
    outcomes = []
    for _ in range(5):
        with clock.travel_to(moment):
            outcomes.append(send_due())
        request.refresh_from_db()
        moment = request.next_attempt_at
    assert outcomes == [{"retry": 1}] * 4 + [{"naked": 1}]
    assert (request.status, request.attempts, request.error_cause) == (CoaStatus.NAKED, 5, 506)
    assert request.error_text == "The NAS refused the request: Error-Cause 506 (Resources-Unavailable)."


def test_a_retry_that_is_acked_ends_acked(online, listener):
    request = _queue_disconnect(online)
    listener.script = [nak(None), ACK]
    with clock.travel_to(T0):
        assert send_due() == {"retry": 1}
    request.refresh_from_db()
    assert (request.error_cause, request.last_error) == (None, CoaError.NAK)
    assert request.error_text == "The NAS refused the request without giving a reason."
    with clock.travel_to(T0 + dt.timedelta(seconds=10)):
        assert send_due() == {"acked": 1}
    request.refresh_from_db()
    assert (request.status, request.attempts, request.last_error, request.error_text) == (CoaStatus.ACKED, 2, "", "")


def test_staff_disconnect_sends_a_disconnect_request(online, listener, admin):
    # when staff press "disconnect"
    with clock.travel_to(T0):
        request = network.do_disconnect_session(online, acting_user=admin, reason="тест")
        assert send_due() == {"acked": 1}
    # then the NAS got a Disconnect-Request naming the session, and nothing else
    assert listener.received == [
        {
            "code": radius_packet.DisconnectRequest,
            "authentic": True,
            "attributes": {
                "User-Name": ["ivanov"],
                "Acct-Session-Id": ["81a00003"],
                "Framed-IP-Address": ["100.64.0.10"],
            },
        }
    ]
    request.refresh_from_db()
    assert (request.kind, request.reason, request.status) == (CoaKind.DISCONNECT, CoaReason.STAFF, CoaStatus.ACKED)


def test_a_reply_signed_with_another_secret_is_not_believed(online, listener):
    # given a NAS configured with a different secret: it discards our request as not authentic
    listener.secret = b"some-other-secret-of-the-nas"
    request = _queue_disconnect(online)
    with clock.travel_to(T0):
        assert send_due(timeout=0.3) == {"retry": 1}
    request.refresh_from_db()
    assert (request.status, request.attempts, request.last_error) == (CoaStatus.PENDING, 1, CoaError.NO_ANSWER)
    assert [packet["authentic"] for packet in listener.received] == [False]


def test_one_silent_nas_does_not_hold_up_the_others(customer, online, listener, make_nas):
    # given a second NAS that never answers, with a session of the same subscriber
    silent = CoaListener(SECRET, host="127.0.0.2")
    silent.script = [DROP]
    try:
        dead_nas = make_nas("mikrotik", name="nas-dead", ip_address="127.0.0.2", coa_port=silent.port)
        Session.objects.create(
            nas=dead_nas,
            unique_id="u-2",
            acct_session_id="dead0001",
            subscriber=customer,
            username="ivanov",
            started_at=T0 - dt.timedelta(hours=1),
            updated_at=T0 - dt.timedelta(minutes=2),
        )
        with clock.travel_to(T0):
            network.queue_disconnect(customer.pk, reason=CoaReason.SUSPEND)
            started = time.monotonic()
            counts = send_due(timeout=1.0)
            elapsed = time.monotonic() - started
    finally:
        silent.close()
    # then both went out in one batch: the answered one is acked, the other waits for its retry
    assert counts == {"acked": 1, "retry": 1}
    assert elapsed < 1.8
    assert CoaRequest.objects.get(nas=online.nas).status == CoaStatus.ACKED
    assert CoaRequest.objects.get(nas=dead_nas).status == CoaStatus.PENDING


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
def test_two_workers_at_once_send_each_request_exactly_once(customer, nas, listener):
    # given twenty due Disconnect-Requests
    for n in range(20):
        Session.objects.create(
            nas=nas,
            unique_id=f"u-{n}",
            acct_session_id=f"s-{n}",
            subscriber=customer,
            username="ivanov",
            started_at=T0,
            updated_at=T0,
        )
    with clock.travel_to(T0):
        network.queue_disconnect(customer.pk, reason=CoaReason.SUSPEND)
    results = []
    barrier = threading.Barrier(2)

    def worker():
        try:
            barrier.wait(5)
            results.append(send_due(limit=15))
        finally:
            connection.close()

    # when two workers claim from the queue at the same moment
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # then every request went out once and only once
    assert sum(r.get("acked", 0) for r in results) == 20
    assert sorted(p["attributes"]["Acct-Session-Id"][0] for p in listener.received) == sorted(
        f"s-{n}" for n in range(20)
    )
    assert set(CoaRequest.objects.values_list("status", "attempts")) == {(CoaStatus.ACKED, 1)}


def test_the_answer_of_an_expired_claim_does_not_overwrite_a_newer_one(online):
    from django.db.models import F

    from abonent.network.coa import Answer, _claim_due, _record

    request = _queue_disconnect(online)
    (claimed,) = _claim_due(10)
    # The worker stalls past its lease; another claims the request again and counts another attempt.
    CoaRequest.objects.filter(pk=request.pk).update(attempts=F("attempts") + 1)
    assert _record(claimed, Answer("ack")) == "stale"
    request.refresh_from_db()
    assert (request.status, request.attempts) == (CoaStatus.PENDING, 2)


def test_a_turbo_is_pushed_on_and_taken_back_by_coa(
    customer, online, listener, admin, plan, django_capture_on_commit_callbacks
):
    # given an online subscriber whose plan sells a turbo
    turbo = catalog.do_create_turbo(
        code="turbo-500", name="Турбо", download_kbps=512000, upload_kbps=256000, hours=3, price="50.00",
        acting_user=admin,
    )  # fmt: skip
    plan.turbos.add(turbo)
    subscription = Subscription.objects.get(subscriber=customer)
    # when it is bought, and later runs out and the worker finishes it
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        billing.do_activate_turbo(subscription, turbo=turbo, acting_user=admin)
    with clock.travel_to(T0):
        assert send_due() == {"acked": 1}
    with clock.travel_to(T0 + dt.timedelta(hours=3)):
        with django_capture_on_commit_callbacks(execute=True):
            assert billing.do_finish_due_turbos() == 1
        assert send_due() == {"acked": 1}
    # then the NAS got the turbo's rate limit, then the plan's again, each without a reconnect
    assert [(r["code"], r["attributes"]["Mikrotik-Rate-Limit"]) for r in listener.received] == [
        (radius_packet.CoARequest, ["256000k/512000k"]),
        (radius_packet.CoARequest, ["51200k/102400k"]),
    ]
    assert list(CoaRequest.objects.order_by("id").values_list("reason", "status")) == [
        (CoaReason.TURBO_ON, CoaStatus.ACKED),
        (CoaReason.TURBO_OFF, CoaStatus.ACKED),
    ]


# --- errors are stored language-neutral -----------------------------------------------------------------------


def test_a_nak_is_stored_as_data_and_worded_in_the_readers_language_once(online, listener, make_staff):
    # given a NAS that refuses the request, and a worker running in Russian
    request = _queue_disconnect(online)
    listener.script = [nak(404)]
    with clock.travel_to(T0), translation.override("ru"):
        assert send_due() == {"retry": 1}
    # then what is stored is the Error-Cause and a code, not a sentence in the worker's language
    request.refresh_from_db()
    assert (request.error_cause, request.last_error, request.error_detail) == (404, CoaError.NAK, "")
    # and an English reader gets it in English, with the Error-Cause named once
    staff = Client()
    staff.force_login(make_staff(Role.ENGINEER))
    html = staff.get(f"/staff/subscribers/{online.subscriber_id}/").content.decode()
    assert html.count("Error-Cause 404") == 1
    assert "The NAS refused the request: Error-Cause 404 (Invalid-Request)." in html


def test_an_error_written_before_codes_were_stored_is_shown_as_it_was(online):
    request = _queue_disconnect(online)
    CoaRequest.objects.filter(pk=request.pk).update(last_error="NAS отклонил запрос")
    request.refresh_from_db()
    assert request.error_text == "NAS отклонил запрос"


# --- a newer request supersedes the older ones it covers ------------------------------------------------------


@pytest.fixture
def accel_nas(make_nas, listener):
    return make_nas("accel_ppp", coa_port=listener.port)


def _online_ipoe(subscriber, nas, admin) -> Session:
    login = network.do_create_login(
        subscriber, acting_user=admin, kind=LoginKind.IPOE_MAC, username="aa:bb:cc:00:00:01"
    )
    return Session.objects.create(
        nas=nas,
        unique_id="u-ipoe",
        acct_session_id="ipoe0001",
        login=login,
        subscriber=subscriber,
        username="aa:bb:cc:00:00:01",
        framed_ip="100.64.0.20",
        started_at=T0 - dt.timedelta(hours=1),
        updated_at=T0 - dt.timedelta(minutes=2),
    )


def test_a_restrict_still_retrying_is_never_sent_after_the_restore(customer, accel_nas, listener, admin):
    # given an accel-ppp IPoE session whose NAS NAKs the debt redirect with 404, so it is retrying
    session = _online_ipoe(customer, accel_nas, admin)
    listener.script = [nak(404)]
    with clock.travel_to(T0):
        into_debt(customer, admin)
        sync_access_states()
        assert send_due() == {"retry": 1}
    restrict = CoaRequest.objects.get(reason=CoaReason.RESTRICT)
    # when the subscriber pays before the retry and the restore is queued
    with clock.travel_to(T0 + dt.timedelta(seconds=5)):
        pays(customer, admin)
        assert sync_access_states()["restored"] == 1
    # then the restrict is superseded at once, in the console too
    restrict.refresh_from_db()
    assert (restrict.status, restrict.finished_at) == (CoaStatus.SUPERSEDED, T0 + dt.timedelta(seconds=5))
    # and only the restore goes out, whenever the worker runs
    for later in (10, 40, 130, 400, 3600):
        with clock.travel_to(T0 + dt.timedelta(seconds=later)):
            send_due()
    assert [(p["attributes"]["Acct-Session-Id"], p["attributes"]["L4-Redirect"]) for p in listener.received] == [
        (["ipoe0001"], [1]),
        (["ipoe0001"], [0]),
    ]
    assert list(CoaRequest.objects.order_by("pk").values_list("reason", "status", "attempts")) == [
        (CoaReason.RESTRICT, CoaStatus.SUPERSEDED, 1),
        (CoaReason.RESTORE, CoaStatus.ACKED, 1),
    ]
    assert session.pk == CoaRequest.objects.get(reason=CoaReason.RESTORE).session_id
    assert not AccessMark.objects.exists()


def test_the_claim_skips_a_request_a_newer_one_covers_when_both_are_waiting(customer, accel_nas, listener, admin):
    # given a restrict and a restore both waiting for the same session, as two transactions queuing at the same
    # moment leave them (neither saw the other's row)
    _online_ipoe(customer, accel_nas, admin)
    with clock.travel_to(T0):
        [restrict] = network.queue_access_change(customer.pk, restricted=True)
        [restore] = network.queue_access_change(customer.pk, restricted=False)
    CoaRequest.objects.filter(pk=restrict.pk).update(status=CoaStatus.PENDING, finished_at=None)
    # when the worker claims them
    with clock.travel_to(T0):
        assert send_due() == {"acked": 1}
    # then the older is superseded unsent, the newer sent
    assert [p["attributes"]["L4-Redirect"] for p in listener.received] == [[0]]
    restrict.refresh_from_db()
    restore.refresh_from_db()
    assert (restrict.status, restrict.attempts, restore.status) == (CoaStatus.SUPERSEDED, 0, CoaStatus.ACKED)


def test_a_speed_change_during_a_restore_retry_carries_the_restore_with_it(
    customer, accel_nas, listener, admin, internet, django_capture_on_commit_callbacks
):
    # given a restore CoA (L4-Redirect 0 and the speed) that the NAS NAKed and that waits for its retry
    _online_ipoe(customer, accel_nas, admin)
    listener.script = [nak(506)]
    with clock.travel_to(T0):
        network.queue_access_change(customer.pk, restricted=False)
        assert send_due() == {"retry": 1}
    faster = catalog.do_create_plan(
        code="home-200", name="Домашний 200", service=internet, monthly_fee=Decimal("700.00"),
        valid_from=dt.date(2020, 1, 1), download_kbps=204800, upload_kbps=102400, acting_user=admin,
    )  # fmt: skip
    # when the plan changes before the retry
    with clock.travel_to(T0 + dt.timedelta(seconds=5)), django_capture_on_commit_callbacks(execute=True):
        billing.do_change_plan(Subscription.objects.get(subscriber=customer), plan=faster, acting_user=admin)
    with clock.travel_to(T0 + dt.timedelta(seconds=10)):
        assert send_due() == {"acked": 1}
    # then one CoA carries both the new speed and the redirect off, and the old restore is never sent again
    assert [(p["attributes"]["L4-Redirect"], p["attributes"]["Filter-Id"]) for p in listener.received] == [
        ([0], ["102400/51200"]),
        ([0], ["204800/102400"]),
    ]
    assert list(CoaRequest.objects.order_by("pk").values_list("reason", "status")) == [
        (CoaReason.RESTORE, CoaStatus.SUPERSEDED),
        (CoaReason.PLAN_CHANGE, CoaStatus.ACKED),
    ]


def test_a_staff_disconnect_is_never_superseded_by_a_later_speed_change(
    customer, online, listener, admin, internet, django_capture_on_commit_callbacks
):
    # given a staff Disconnect waiting for its retry
    listener.script = [DROP]
    with clock.travel_to(T0):
        staff = network.do_disconnect_session(online, acting_user=admin, reason="abuse")
        assert send_due(timeout=0.2) == {"retry": 1}
    faster = catalog.do_create_plan(
        code="home-200", name="Домашний 200", service=internet, monthly_fee=Decimal("700.00"),
        valid_from=dt.date(2020, 1, 1), download_kbps=204800, upload_kbps=102400, acting_user=admin,
    )  # fmt: skip
    # when the plan changes and the worker runs again
    with clock.travel_to(T0 + dt.timedelta(seconds=5)), django_capture_on_commit_callbacks(execute=True):
        billing.do_change_plan(Subscription.objects.get(subscriber=customer), plan=faster, acting_user=admin)
    with clock.travel_to(T0 + dt.timedelta(seconds=10)):
        assert send_due() == {"acked": 2}
    # then the Disconnect still went out
    staff.refresh_from_db()
    assert staff.status == CoaStatus.ACKED
    assert [p["code"] for p in listener.received] == [
        radius_packet.DisconnectRequest,
        radius_packet.DisconnectRequest,
        radius_packet.CoARequest,
    ]


def test_a_disconnect_supersedes_a_waiting_coa(customer, online, listener, admin):
    # given a speed CoA waiting for its retry
    listener.script = [nak(506)]
    with clock.travel_to(T0):
        [speed] = network.queue_policy_coa(customer.pk, reason=CoaReason.PLAN_CHANGE)
        assert send_due() == {"retry": 1}
    # when the subscription is suspended
    with clock.travel_to(T0 + dt.timedelta(seconds=5)):
        network.queue_disconnect(customer.pk, reason=CoaReason.SUSPEND)
    with clock.travel_to(T0 + dt.timedelta(seconds=10)):
        assert send_due() == {"acked": 1}
    # then only the Disconnect follows the first try of the CoA
    speed.refresh_from_db()
    assert speed.status == CoaStatus.SUPERSEDED
    assert [p["code"] for p in listener.received] == [radius_packet.CoARequest, radius_packet.DisconnectRequest]


def test_a_speed_change_on_cisco_leaves_a_waiting_redirect_change_alone(customer, make_nas, listener, admin):
    # Cisco switches the redirect with a service command and the speed with a QoS policy, both in Cisco-AVPair:
    # they change different things, so both must arrive (superseding goes by AV-pair key, not attribute name).
    nas = make_nas("cisco", coa_port=listener.port)
    Session.objects.create(
        nas=nas, unique_id="u-c", acct_session_id="c1", subscriber=customer, login=customer.network_logins.get(),
        username="ivanov", started_at=T0, updated_at=T0,
    )  # fmt: skip
    with clock.travel_to(T0):
        network.queue_access_change(customer.pk, restricted=False)
        network.queue_policy_coa(customer.pk, reason=CoaReason.PLAN_CHANGE)
        assert send_due() == {"acked": 2}
    assert list(CoaRequest.objects.order_by("pk").values_list("reason", "status")) == [
        (CoaReason.RESTORE, CoaStatus.ACKED),
        (CoaReason.PLAN_CHANGE, CoaStatus.ACKED),
    ]
    assert [p["attributes"]["Cisco-AVPair"] for p in listener.received] == [
        ["subscriber:command=deactivate-service", "subscriber:service-name=DEBTORS"],
        ["ip:sub-qos-policy-in=ABONENT-UP-51200K", "ip:sub-qos-policy-out=ABONENT-DOWN-102400K"],
    ]


def test_a_cisco_restore_supersedes_the_waiting_restrict_and_a_speed_change_does_not(customer, make_nas, admin):
    nas = make_nas("cisco")
    Session.objects.create(
        nas=nas, unique_id="u-c", acct_session_id="c1", subscriber=customer, login=customer.network_logins.get(),
        username="ivanov", started_at=T0, updated_at=T0,
    )  # fmt: skip
    with clock.travel_to(T0):
        (restrict,) = network.queue_access_change(customer.pk, restricted=True)
        network.queue_policy_coa(customer.pk, reason=CoaReason.PLAN_CHANGE)
        restrict.refresh_from_db()
        assert restrict.status == CoaStatus.PENDING  # the QoS push does not cover the service command
        network.queue_access_change(customer.pk, restricted=False)
    restrict.refresh_from_db()
    assert restrict.status == CoaStatus.SUPERSEDED
    assert list(CoaRequest.objects.order_by("pk").values_list("reason", "status")) == [
        (CoaReason.RESTRICT, CoaStatus.SUPERSEDED),
        (CoaReason.PLAN_CHANGE, CoaStatus.PENDING),
        (CoaReason.RESTORE, CoaStatus.PENDING),
    ]
