"""Deliveries to a local receiver: retries, the signature, redelivery from the log, replays, deadlines."""

import datetime as dt
import itertools
import threading
import time

import pytest
from django.test import Client
from django.urls import reverse
from werkzeug import Response

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.integrations.webhooks import events, payloads, sending
from abonent.integrations.webhooks.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EventType,
)

from .conftest import verify

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


def _drain_until_settled(times=5):
    """The worker's runs, each at the moment the delivery is due next."""
    for _ in range(times):
        due = Delivery.objects.filter(status=DeliveryStatus.PENDING).order_by("next_attempt_at").first()
        if due is None:
            return
        with clock.travel_to(max(due.next_attempt_at, T0)):
            sending.send_due()


def test_fails_twice_then_delivered_once_signed(
    hook, make_subscriber, httpserver, received, django_capture_on_commit_callbacks
):
    # Given a CRM that answers 500 twice, then 200
    endpoint, secret = hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_ordered_request("/crm/hook", method="POST").respond_with_data("boom", status=500)
    httpserver.expect_ordered_request("/crm/hook", method="POST").respond_with_data("boom again", status=500)
    httpserver.expect_ordered_request("/crm/hook", method="POST").respond_with_data(
        '{"ok": true}', content_type="application/json"
    )
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        subscriber = make_subscriber()

    # When the worker runs whenever the delivery is due
    _drain_until_settled()

    # Then it went three times and is delivered, once, with the same event id and a valid signature each time
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.last_status_code == 200
    hits = received()
    assert len(hits) == 3
    event_ids = {headers["Abonent-Event-Id"] for headers, _body, _json in hits}
    assert event_ids == {str(delivery.event_id)}
    for headers, body, document in hits:
        assert verify(secret, headers, body, now=int(headers["Abonent-Timestamp"]))
        assert document["type"] == "subscriber.created"
        assert document["id"] == str(delivery.event_id)
        assert document["data"]["subscriber"]["id"] == subscriber.pk
        assert document["data"]["subscriber"]["account_number"] == subscriber.account_number
    assert [h["Abonent-Delivery-Attempt"] for h, _b, _j in hits] == ["1", "2", "3"]
    log = list(
        Attempt.objects.filter(delivery=delivery).values_list("number", "outcome", "status_code", "response_excerpt")
    )
    assert log == [
        (1, AttemptOutcome.RETRY, 500, "boom"),
        (2, AttemptOutcome.RETRY, 500, "boom again"),
        (3, AttemptOutcome.DELIVERED, 200, '{"ok": true}'),
    ]
    # And the waits between them were the documented backoff: 30 s, then 60 s
    starts = list(Attempt.objects.filter(delivery=delivery).values_list("started_at", flat=True))
    assert [b - a for a, b in itertools.pairwise(starts)] == [
        dt.timedelta(seconds=30),
        dt.timedelta(seconds=60),
    ]
    httpserver.check_assertions()


def test_wrong_secret_or_stale_timestamp_fails_verification(
    hook, make_subscriber, httpserver, received, django_capture_on_commit_callbacks
):
    _endpoint, secret = hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_request("/crm/hook").respond_with_data("", status=204)
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        make_subscriber()
    with clock.travel_to(T0):
        assert sending.send_due() == {"delivered": 1}
    (headers, body, _doc) = received()[0]
    now = int(T0.timestamp())
    assert verify(secret, headers, body, now=now)
    assert not verify("whsec_other", headers, body, now=now)
    assert not verify(secret, headers, body + b" ", now=now)
    assert not verify(secret, headers, body, now=now + 301)


def test_redelivery_from_the_log_carries_the_same_event_id(
    hook, admin, make_subscriber, httpserver, received, django_capture_on_commit_callbacks
):
    # Given a delivered event
    _endpoint, secret = hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_request("/crm/hook").respond_with_data("ok")
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        make_subscriber()
    with clock.travel_to(T0):
        sending.send_due()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED

    # When the admin asks for it again from the log page
    client = Client()
    client.force_login(admin)
    later = T0 + dt.timedelta(hours=1)
    with clock.travel_to(later), django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("webhooks:redeliver", args=[delivery.pk]))
    assert response.status_code == 302
    with clock.travel_to(later):
        assert sending.send_due() == {"delivered": 1}

    # Then the receiver got the same event (id and body) twice, each validly signed, and the log shows both rounds
    hits = received()
    assert len(hits) == 2
    assert hits[0][0]["Abonent-Event-Id"] == hits[1][0]["Abonent-Event-Id"] == str(delivery.event_id)
    assert hits[0][1] == hits[1][1]
    assert all(verify(secret, h, b, now=int(h["Abonent-Timestamp"])) for h, b, _j in hits)
    assert list(Attempt.objects.filter(delivery=delivery).values_list("number", "round", "outcome")) == [
        (1, 1, AttemptOutcome.DELIVERED),
        (2, 2, AttemptOutcome.DELIVERED),
    ]
    audit = AuditEvent.objects.get(action="webhooks.redelivery_requested")
    assert audit.actor == admin
    assert audit.after["event"] == str(delivery.event_id)
    page = client.get(reverse("webhooks:delivery", args=[delivery.pk]))
    assert page.status_code == 200
    assert str(delivery.event_id) in page.content.decode()


def test_a_replayed_domain_event_makes_no_second_delivery(hook, make_subscriber, django_capture_on_commit_callbacks):
    endpoint, _secret = hook(types=[EventType.SUBSCRIBER_CREATED, EventType.SUBSCRIBER_CHANGED])
    other, _ = hook(types=[EventType.SUBSCRIBER_CREATED], name="Second CRM", path="/second")
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        subscriber = make_subscriber()
    assert Delivery.objects.count() == 2
    # The same domain event handled again (a retried handler, a second worker): nothing new
    events.subscriber_created(event="subscriber.created", subscriber_id=subscriber.pk)
    events.subscriber_created(event="subscriber.created", subscriber_id=subscriber.pk)
    assert Delivery.objects.count() == 2
    assert set(Delivery.objects.values_list("endpoint_id", flat=True)) == {endpoint.pk, other.pk}
    # Directly through the queue too: the unique (endpoint, event) decides
    items = payloads.subscriber_created(subscriber.pk)
    assert events.enqueue(EventType.SUBSCRIBER_CREATED, items) == 0
    assert Delivery.objects.count() == 2


def test_a_slow_receiver_hits_the_deadline_and_is_retried(
    hook, make_subscriber, httpserver, settings, django_capture_on_commit_callbacks
):
    settings.ABONENT_WEBHOOK_READ_TIMEOUT_S = 0.3
    hook(types=[EventType.SUBSCRIBER_CREATED])

    released = threading.Event()

    def slow(request):
        released.wait(5)  # far past the read deadline; let go once the sender has given up
        return Response("late")

    httpserver.expect_ordered_request("/crm/hook").respond_with_handler(slow)
    httpserver.expect_ordered_request("/crm/hook").respond_with_data("ok")
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        make_subscriber()
    started = time.monotonic()
    with clock.travel_to(T0):
        assert sending.send_due() == {"retry": 1}
    assert time.monotonic() - started < 2  # the deadline cut it, not the receiver
    released.set()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_error.startswith("timeout")
    assert delivery.next_attempt_at == T0 + dt.timedelta(seconds=30)
    with clock.travel_to(T0 + dt.timedelta(seconds=30)):
        assert sending.send_due() == {"delivered": 1}


def test_410_is_not_retried(hook, make_subscriber, httpserver, received, django_capture_on_commit_callbacks):
    hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_request("/crm/hook").respond_with_data("gone", status=410)
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        make_subscriber()
    with clock.travel_to(T0):
        assert sending.send_due() == {"failed": 1}
    with clock.travel_to(T0 + dt.timedelta(days=1)):
        assert sending.send_due() == {}
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_status_code, delivery.attempts) == (DeliveryStatus.FAILED, 410, 1)
    assert len(received()) == 1


def test_429_and_network_errors_are_retried_until_the_last_attempt(
    hook, make_subscriber, httpserver, django_capture_on_commit_callbacks
):
    hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_request("/crm/hook").respond_with_data("slow down", status=429)
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        make_subscriber()
    _drain_until_settled(times=sending.MAX_ATTEMPTS + 2)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, sending.MAX_ATTEMPTS)
    assert Attempt.objects.filter(delivery=delivery).count() == sending.MAX_ATTEMPTS


def test_a_receiver_that_is_down_is_retried(hook, make_subscriber, django_capture_on_commit_callbacks, admin):
    from abonent.integrations.webhooks import actions

    actions.do_create_endpoint(
        actions.EndpointData(name="Down", url="http://127.0.0.1:9/hook", event_types=[EventType.SUBSCRIBER_CREATED]),
        acting_user=admin,
    )
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        make_subscriber()
    with clock.travel_to(T0):
        assert sending.send_due() == {"retry": 1}
    assert Delivery.objects.get().last_error.startswith("ConnectError")


@pytest.mark.parametrize("size", [10_000_000])
def test_an_absurd_answer_is_cut_to_the_excerpt(
    hook, make_subscriber, httpserver, size, django_capture_on_commit_callbacks
):
    hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_request("/crm/hook").respond_with_data("x" * size)
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        make_subscriber()
    with clock.travel_to(T0):
        assert sending.send_due() == {"delivered": 1}
    assert len(Attempt.objects.get().response_excerpt) == sending.RESPONSE_EXCERPT


def test_no_post_starts_that_could_outlive_the_lease(
    hook, make_subscriber, httpserver, received, monkeypatch, django_capture_on_commit_callbacks
):
    # Given a batch claimed, and POSTs that (by the deadlines) could take longer than what is left of the lease
    hook(types=[EventType.SUBSCRIBER_CREATED])
    httpserver.expect_request("/crm/hook").respond_with_data("ok")
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        make_subscriber()
    monkeypatch.setattr(sending, "lease_span", lambda: dt.timedelta(seconds=1))
    with clock.travel_to(T0):
        assert sending.send_due() == {"released": 1}
    # Then nothing was sent, and the delivery is due again at once with its attempt given back
    assert received() == []
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.PENDING, 0, T0)
    monkeypatch.undo()
    with clock.travel_to(T0):
        assert sending.send_due() == {"delivered": 1}
    assert Delivery.objects.get().attempts == 1


def test_an_outcome_after_the_lease_was_taken_is_dropped(hook, make_subscriber, django_capture_on_commit_callbacks):
    hook(types=[EventType.SUBSCRIBER_CREATED])
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        make_subscriber()
    with clock.travel_to(T0):
        (mine,), lease, _given_up = sending._claim(10)
    # This worker stalled past its lease; another claims the delivery and delivers it
    later = lease + dt.timedelta(seconds=1)
    with clock.travel_to(later):
        (theirs,), their_lease, _given_up = sending._claim(10)
        assert theirs.pk == mine.pk and theirs.attempts == 2
        full = Delivery.objects.select_related("endpoint", "event").get()
        full.attempts, full.next_attempt_at = theirs.attempts, their_lease
        assert (
            sending._record(full, sending.Answer("delivered", 200), started_at=later, lease=their_lease) == "delivered"
        )
    # The stalled worker's late answer changes nothing
    full.attempts = 1
    with clock.travel_to(later):
        assert sending._record(full, sending.Answer("retry", 500), started_at=T0, lease=lease) == "stale"
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.DELIVERED, 200)
    assert list(Attempt.objects.values_list("outcome", flat=True)) == ["delivered"]


def test_old_finished_events_are_pruned_pending_ones_kept(hook, admin):
    from abonent.integrations.webhooks import actions
    from abonent.integrations.webhooks.models import WebhookEvent

    hook(types=[EventType.PAYMENT_RECEIVED])
    with clock.travel_to(T0):
        events.enqueue(EventType.PAYMENT_RECEIVED, [("payment.received:1", {}), ("payment.received:2", {})])
    Delivery.objects.filter(event__key="payment.received:1").update(status=DeliveryStatus.DELIVERED)
    with clock.travel_to(T0 + dt.timedelta(days=89)):
        assert actions.do_prune_events() == 0
    with clock.travel_to(T0 + dt.timedelta(days=91)):
        assert actions.do_prune_events() == 1
    assert list(WebhookEvent.objects.values_list("key", flat=True)) == ["payment.received:2"]
    assert Delivery.objects.count() == 1


def test_the_command_and_the_worker_job_send_what_is_due(hook, httpserver, received):
    import io

    from django.core.management import call_command

    from abonent.core.scheduler import registered_jobs
    from abonent.integrations.webhooks import tasks

    hook(types=[EventType.PAYMENT_RECEIVED])
    httpserver.expect_request("/crm/hook").respond_with_data("ok")
    events.enqueue(EventType.PAYMENT_RECEIVED, [("payment.received:1", {}), ("payment.received:2", {})])
    out = io.StringIO()
    call_command("webhooks", "send", "--limit", "1", stdout=out)
    assert out.getvalue().strip() == '{"delivered": 1}'
    assert tasks.send_due.call() == {"delivered": 1}
    assert len(received()) == 2
    assert {"webhooks.send_due", "webhooks.prune"} <= set(registered_jobs())


def test_an_integration_switched_off_holds_its_pending_deliveries(hook, admin, httpserver, received):
    from abonent.integrations.webhooks import actions

    endpoint, _secret = hook(types=[EventType.PAYMENT_RECEIVED])
    httpserver.expect_request("/crm/hook").respond_with_data("ok")
    with clock.travel_to(T0):
        events.enqueue(EventType.PAYMENT_RECEIVED, [("payment.received:1", {})])
    data = actions.EndpointData(name=endpoint.name, url=endpoint.url, event_types=endpoint.event_types, is_active=False)
    actions.do_update_endpoint(endpoint, data, acting_user=admin)
    with clock.travel_to(T0):
        events.enqueue(EventType.PAYMENT_RECEIVED, [("payment.received:2", {})])  # none for an inactive one
        assert sending.send_due() == {}
    assert received() == []
    assert Delivery.objects.get().status == DeliveryStatus.PENDING
    data.is_active = True
    actions.do_update_endpoint(endpoint, data, acting_user=admin)
    with clock.travel_to(T0):
        assert sending.send_due() == {"delivered": 1}
    assert len(received()) == 1


def test_a_rotated_field_key_keeps_the_signing_secret(hook, settings, httpserver, received):
    from abonent.core.key_rotation import rotate_field_key

    settings.ABONENT_FIELD_KEY = "old-field-key"
    _endpoint, secret = hook(types=[EventType.PAYMENT_RECEIVED])
    settings.ABONENT_FIELD_KEY, settings.ABONENT_FIELD_KEY_OLD = "new-field-key", ["old-field-key"]
    (report,) = [r for r in rotate_field_key() if r.name == "webhooks.Endpoint.secret_encrypted"]
    assert report.reencrypted == 1
    settings.ABONENT_FIELD_KEY_OLD = []
    httpserver.expect_request("/crm/hook").respond_with_data("ok")
    with clock.travel_to(T0):
        events.enqueue(EventType.PAYMENT_RECEIVED, [("payment.received:1", {})])
        assert sending.send_due() == {"delivered": 1}
    headers, body, _doc = received()[0]
    assert verify(secret, headers, body, now=int(T0.timestamp()))


def test_a_slow_receiver_does_not_hold_back_another(hook, httpserver, received, settings):
    from pytest_httpserver import HTTPServer

    settings.ABONENT_WEBHOOK_CONCURRENCY = 4
    hook(types=[EventType.PAYMENT_RECEIVED], name="Slow CRM")

    def slow(_request):
        time.sleep(0.4)
        return Response("ok")

    httpserver.expect_request("/crm/hook").respond_with_handler(slow)
    fast = HTTPServer(host="127.0.0.1", port=0)
    fast.start()
    try:
        hook(types=[EventType.PAYMENT_RECEIVED], name="Fast CRM", path="/fast")
        Endpoint.objects.filter(name="Fast CRM").update(url=fast.url_for("/fast"))
        with clock.travel_to(T0):
            events.enqueue(EventType.PAYMENT_RECEIVED, [(f"payment.received:{n}", {}) for n in range(3)])
        started = time.monotonic()
        arrived = []
        fast.expect_request("/fast").respond_with_handler(lambda r: arrived.append(time.monotonic()) or Response("ok"))
        with clock.travel_to(T0):
            assert sending.send_due() == {"delivered": 6}
        # The slow receiver answers one at a time (1.2 s for its three); the fast one's three came meanwhile
        assert len(arrived) == 3
        assert max(arrived) - started < 0.8
        assert len(received()) == 3
    finally:
        fast.clear()
        fast.stop()


@pytest.mark.parametrize("head", [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b""])
def test_a_receiver_dripping_its_answer_is_cut_off(hook, settings, head):
    """Each read in time, the answer never ending: the body dripped after the headers, or the status line and
    headers themselves dripped (``head`` empty: the drip is all there is)."""
    import socket
    import threading as th

    settings.ABONENT_WEBHOOK_CONNECT_TIMEOUT_S = 0.2
    settings.ABONENT_WEBHOOK_READ_TIMEOUT_S = 0.2
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = th.Event()

    def drip():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(head)
        while not stop.is_set():  # one byte every 0.1 s: each read is in time, the answer never ends
            try:
                conn.sendall(b"x")
            except OSError:
                break
            time.sleep(0.1)
        conn.close()

    th.Thread(target=drip, daemon=True).start()
    endpoint, _secret = hook(types=[EventType.PAYMENT_RECEIVED])
    Endpoint.objects.filter(pk=endpoint.pk).update(url=f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
    with clock.travel_to(T0):
        events.enqueue(EventType.PAYMENT_RECEIVED, [("payment.received:1", {})])
        started = time.monotonic()
        try:
            assert sending.send_due() == {"retry": 1}
        finally:
            stop.set()
            listener.close()
    assert time.monotonic() - started < 2
    assert Delivery.objects.get().last_error.startswith("timeout")
