"""SMS through local servers speaking SMS.ru's and SMSC's HTTP APIs: retries through a failing gateway without
loss or duplicates, numbers that cannot take SMS, the providers' error codes."""

import datetime as dt

import pytest

from abonent.core import clock
from abonent.notifications.delivery import BACKOFF_S, MAX_ATTEMPTS
from abonent.notifications.models import Event, Message, MessageStatus
from abonent.notifications.queueing import Notice, notify_many

from .delivery_servers import SMSRU_KEY, T0, FakeSmsc, FakeSmsRu, http_server, send_at  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def sms_settings(settings):
    settings.ABONENT_QUIET_HOURS = ""
    settings.ABONENT_NOTIFY_HTTP_DEADLINE = 0.5
    settings.ABONENT_SMS_SENDER = "TverNet"
    return settings


@pytest.fixture
def smsru(http_server, sms_settings):  # noqa: F811
    fake = FakeSmsRu()
    http_server.expect_request("/sms/send", method="POST").respond_with_handler(fake.handler)
    sms_settings.ABONENT_SMS_PROVIDER = "smsru"
    sms_settings.ABONENT_SMSRU_URL = http_server.url_for("/").rstrip("/")
    sms_settings.ABONENT_SMSRU_API_ID = SMSRU_KEY
    return fake


@pytest.fixture
def smsc(http_server, sms_settings):  # noqa: F811
    fake = FakeSmsc()
    http_server.expect_request("/sys/send.php", method="POST").respond_with_handler(fake.send)
    http_server.expect_request("/sys/status.php", method="GET").respond_with_handler(fake.status)
    sms_settings.ABONENT_SMS_PROVIDER = "smsc"
    sms_settings.ABONENT_SMSC_URL = http_server.url_for("/sys")
    sms_settings.ABONENT_SMSC_LOGIN, sms_settings.ABONENT_SMSC_PASSWORD = "isp", "secret"
    return fake


def queue_sms(subscribers, key="n"):
    with clock.travel_to(T0):
        notify_many(
            [Notice(s.pk, Event.BULK, f"{key}:{s.pk}", channels=("sms",), body=f"Hello {s.pk}") for s in subscribers]
        )
    return list(Message.objects.filter(channel="sms").order_by("pk"))


def subscribers(make_subscriber, n):
    return [make_subscriber(last_name=f"Петров{i}", phone=f"+7916555{i:04d}") for i in range(n)]


def test_failing_gateway_errors_then_hangs_then_recovers_each_message_sent_once(smsru, make_subscriber):
    messages = queue_sms(subscribers(make_subscriber, 3))

    smsru.mode = "error"
    assert send_at(T0) == {"retry": 3}
    first = Message.objects.get(pk=messages[0].pk)
    assert (first.status, first.attempts, first.error) == (MessageStatus.QUEUED, 1, "provider_error")
    assert first.next_attempt_at == T0 + dt.timedelta(seconds=BACKOFF_S[0])
    assert send_at(T0 + dt.timedelta(seconds=10)) == {}  # not due yet: nothing claimed, nothing sent

    smsru.mode = "hang"  # no answer before the client's deadline, nothing taken
    second_try = T0 + dt.timedelta(seconds=BACKOFF_S[0])
    assert send_at(second_try) == {"retry": 3}
    assert set(Message.objects.values_list("error", "attempts")) == {("timeout", 2)}

    smsru.mode = "ok"
    assert send_at(second_try + dt.timedelta(seconds=BACKOFF_S[1])) == {"sent": 3}
    assert send_at(second_try + dt.timedelta(days=1)) == {}
    assert smsru.counted() == {(m.address[1:], m.body): 1 for m in messages}
    rows = Message.objects.order_by("pk")
    assert [(m.status, m.attempts, m.error) for m in rows] == [(MessageStatus.SENT, 3, "")] * 3
    assert sorted(m.provider_id for m in rows) == ["000000-00000001", "000000-00000002", "000000-00000003"]


def test_gateway_that_never_recovers_ends_failed_after_the_last_attempt(smsru, make_subscriber):
    queue_sms(subscribers(make_subscriber, 1))
    smsru.mode = "error"
    moment = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        counts = send_at(moment)
        assert counts == ({"retry": 1} if attempt < MAX_ATTEMPTS else {"failed": 1})
        if attempt < MAX_ATTEMPTS:
            moment += dt.timedelta(seconds=BACKOFF_S[attempt - 1])
    message = Message.objects.get()
    assert (message.status, message.attempts, message.error) == (MessageStatus.FAILED, MAX_ATTEMPTS, "provider_error")
    assert message.finished_at == moment
    requests = smsru.requests
    assert send_at(moment + dt.timedelta(days=2)) == {}
    assert smsru.requests == requests and smsru.accepted == []


def test_a_number_that_is_not_a_mobile_is_undeliverable_without_asking_the_provider(smsru, make_subscriber):
    landline = make_subscriber(phone="+74822555555")  # a Tver landline
    queue_sms([landline])
    assert send_at(T0) == {"undeliverable": 1}
    message = Message.objects.get()
    assert (message.status, message.error, message.attempts) == (MessageStatus.UNDELIVERABLE, "not_mobile", 1)
    assert send_at(T0 + dt.timedelta(days=1)) == {}
    assert smsru.requests == 0


def test_a_number_the_provider_refuses_is_final_and_the_rest_of_the_batch_goes(smsru, make_subscriber):
    people = subscribers(make_subscriber, 3)
    smsru.codes["79165550001"] = 202
    queue_sms(people)
    assert send_at(T0) == {"sent": 2, "undeliverable": 1}
    refused = Message.objects.get(address="+79165550001")
    assert (refused.status, refused.error) == (MessageStatus.UNDELIVERABLE, "bad_address")
    assert refused.error_detail.startswith("202")
    assert smsru.requests == 1  # one request carried the whole batch


def test_no_money_on_the_account_is_retried_so_the_notices_go_out_once_it_is_topped_up(smsru, make_subscriber):
    queue_sms(subscribers(make_subscriber, 2))
    smsru.top_code = 201
    assert send_at(T0) == {"retry": 2}
    assert set(Message.objects.values_list("error", flat=True)) == {"no_balance"}
    smsru.top_code = None
    assert send_at(T0 + dt.timedelta(minutes=1)) == {"sent": 2}


def test_two_messages_to_one_number_go_in_separate_requests(smsru, make_subscriber):
    person = make_subscriber()
    with clock.travel_to(T0):
        notify_many([Notice(person.pk, Event.BULK, f"k{i}", channels=("sms",), body=f"text {i}") for i in range(2)])
    assert send_at(T0) == {"sent": 2}
    assert smsru.counted() == {("79161234567", "text 0"): 1, ("79161234567", "text 1"): 1}


def test_smsc_sends_a_list_and_after_a_timeout_asks_status_before_sending_again(smsc, make_subscriber):
    messages = queue_sms(subscribers(make_subscriber, 3))
    smsc.mode = "take_then_hang"  # SMSC took them, but the answer never reached us
    assert send_at(T0) == {"retry": 3}
    assert set(Message.objects.values_list("error", "provider_id")) == {("timeout", str(messages[0].pk))}

    smsc.mode = "ok"
    assert send_at(T0 + dt.timedelta(minutes=1)) == {"sent": 3}
    assert smsc.counted() == {(m.address[1:], m.body): 1 for m in messages}  # status.php found them: not resent
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.SENT}


def test_smsc_resends_what_its_status_says_it_never_got(smsc, make_subscriber):
    messages = queue_sms(subscribers(make_subscriber, 2))
    smsc.mode, smsc.lost_after_taking = "take_then_hang", True
    assert send_at(T0) == {"retry": 2}
    smsc.mode, smsc.lost_after_taking = "ok", False
    assert send_at(T0 + dt.timedelta(minutes=1)) == {"sent": 2}
    # The first copies died inside the provider (status -3 "not found"): sent again, as it must be.
    assert smsc.counted() == {(m.address[1:], m.body): 2 for m in messages}


def test_smsc_bad_number_in_a_list_is_found_by_sending_each_alone(smsc, make_subscriber):
    people = subscribers(make_subscriber, 3)
    smsc.bad_numbers.add("79165550002")
    queue_sms(people)
    assert send_at(T0) == {"sent": 2, "undeliverable": 1}
    assert Message.objects.get(address="+79165550002").error == "bad_address"
    assert sorted(phone for phone, _text in smsc.accepted) == ["79165550000", "79165550001"]


def test_smsc_wrong_password_is_retried_not_dropped(smsc, make_subscriber, sms_settings):
    queue_sms(subscribers(make_subscriber, 1))
    sms_settings.ABONENT_SMSC_PASSWORD = "wrong"
    assert send_at(T0) == {"retry": 1}
    assert Message.objects.get().error == "auth_failed"
    assert smsc.accepted == []
