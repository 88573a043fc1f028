"""The outbox worker: claims, leases, send-time checks, and several workers at once never sending twice."""

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from abonent.core import clock
from abonent.notifications import delivery
from abonent.notifications.models import Event, Message, MessageStatus, Preference
from abonent.notifications.queueing import Notice, notify_many

from .delivery_servers import SMSRU_KEY, T0, FakeSmsRu, http_server, send_at  # noqa: F401


@pytest.fixture
def smsru(http_server, settings):  # noqa: F811
    fake = FakeSmsRu()
    http_server.expect_request("/sms/send", method="POST").respond_with_handler(fake.handler)
    settings.ABONENT_QUIET_HOURS = ""
    settings.ABONENT_NOTIFY_HTTP_DEADLINE = 2
    settings.ABONENT_SMS_PROVIDER = "smsru"
    settings.ABONENT_SMSRU_URL = http_server.url_for("/").rstrip("/")
    settings.ABONENT_SMSRU_API_ID = SMSRU_KEY
    return fake


def queue(subscribers, per_subscriber=1, at=T0):
    with clock.travel_to(at):
        notify_many(
            [
                Notice(s.pk, Event.BULK, f"n{i}:{s.pk}", channels=("sms",), body=f"text {i} for {s.pk}")
                for s in subscribers
                for i in range(per_subscriber)
            ]
        )


@pytest.mark.django_db
def test_a_channel_turned_off_after_queueing_is_skipped_at_send_time(smsru, make_subscriber):
    person = make_subscriber()
    queue([person])
    Preference.objects.create(subscriber=person, sms=False, updated_at=T0)
    assert send_at(T0) == {"skipped": 1}
    message = Message.objects.get()
    assert (message.status, message.error, message.finished_at) == (MessageStatus.SKIPPED, "channel_off", T0)
    assert smsru.requests == 0


@pytest.mark.django_db
def test_without_a_configured_provider_the_message_is_skipped_with_the_reason(settings, make_subscriber):
    settings.ABONENT_QUIET_HOURS = ""
    settings.ABONENT_SMS_PROVIDER = ""
    queue([make_subscriber()])
    assert send_at(T0) == {"skipped": 1}
    assert Message.objects.get().error == "no_transport"


@pytest.mark.django_db
def test_a_dead_workers_messages_are_claimed_again_after_the_lease_and_its_late_answer_is_dropped(
    smsru, make_subscriber
):
    queue([make_subscriber()])
    with clock.travel_to(T0):
        dead, dead_lease = delivery._claim_due(10, None)  # a worker claims, then hangs
    assert len(dead) == 1
    assert send_at(T0 + dt.timedelta(minutes=1)) == {}  # still leased
    after_lease = T0 + delivery.LEASE + dt.timedelta(seconds=1)
    assert send_at(after_lease) == {"sent": 1}
    message = Message.objects.get()
    assert (message.status, message.attempts) == (MessageStatus.SENT, 2)
    # The hung worker wakes up with an answer: its claim is gone, so nothing it says is written.
    late = {dead[0].pk: delivery.Outcome(delivery.Result.RETRY, error="timeout")}
    with clock.travel_to(after_lease + dt.timedelta(seconds=5)):
        assert delivery._record(dead, late, dead_lease) == {"retry": 1, "stale": 1}
    assert Message.objects.get().status == MessageStatus.SENT
    assert len(smsru.accepted) == 1


@pytest.mark.django_db
def test_a_batch_not_started_within_half_the_lease_is_handed_back_unsent(smsru, make_subscriber, monkeypatch):
    queue([make_subscriber()])
    monkeypatch.setattr(delivery, "LEASE", dt.timedelta(seconds=0))  # every batch starts "too late"
    assert send_at(T0) == {"released": 1}
    message = Message.objects.get()
    assert (message.status, message.attempts, message.next_attempt_at) == (MessageStatus.QUEUED, 0, T0)
    assert smsru.requests == 0


def test_backoff_honours_the_providers_retry_after_within_the_longest_wait():
    assert delivery.backoff(1) == dt.timedelta(seconds=30)
    assert delivery.backoff(2, retry_after=5) == dt.timedelta(minutes=2)
    assert delivery.backoff(1, retry_after=300) == dt.timedelta(minutes=5)
    assert delivery.backoff(9, retry_after=10**6) == dt.timedelta(hours=2)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
def test_two_workers_draining_together_send_every_message_exactly_once(smsru, make_subscriber):
    people = [make_subscriber(last_name=f"Сидоров{i}", phone=f"+7916777{i:04d}") for i in range(30)]
    queue(people, per_subscriber=10, at=clock.now())
    assert Message.objects.filter(status=MessageStatus.QUEUED).count() == 300
    barrier = threading.Barrier(2)
    totals, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            sent = 0
            while counts := delivery.send_due(limit=25):
                sent += counts.get("sent", 0)
            totals.append(sent)
        except Exception as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(totals) == 300 and all(totals)  # both took part
    accepted = smsru.counted()
    assert len(accepted) == 300 and set(accepted.values()) == {1}
    assert set(Message.objects.values_list("status", "attempts")) == {(MessageStatus.SENT, 1)}
