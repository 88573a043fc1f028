"""Hardening after the attack review (issue 14): an SMSC status answer we cannot read keeps the ambiguity mark, a
gzip bomb is refused without inflating it, a malformed ABONENT_QUIET_HOURS neither stops queueing nor passes the
system check, a contract closed after queueing is re-checked at send time, a bulk stream keeps its pace through
the quiet hours, and a transport starts no step its worker's claim no longer covers."""

import datetime as dt
import gzip
import json
import logging
import zoneinfo

import httpx
import pytest
from django.core.exceptions import PermissionDenied
from werkzeug import Response

from abonent.core import clock
from abonent.notifications import actions
from abonent.notifications.calculations import pace_past_quiet_hours
from abonent.notifications.channels import transport_for
from abonent.notifications.channels.base import Budget, Result
from abonent.notifications.checks import check_quiet_hours
from abonent.notifications.models import BulkStatus, Event, Message, MessageStatus, TelegramChat
from abonent.notifications.queueing import Notice, notify_many
from abonent.payments import deadline
from abonent.staff.permissions import Role
from abonent.subscribers.actions import do_close_subscriber
from abonent.subscribers.models import SubscriberGroup

from .delivery_servers import SMSRU_KEY, T0, FakeSmsc, FakeSmsRu, FakeTelegram, http_server, send_at  # noqa: F401

MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")
NIGHT = (dt.time(21, 0), dt.time(9, 0))


class OddStatusSmsc(FakeSmsc):
    """SMSC whose ``status.php`` answers a status that is not a number while ``odd`` is set."""

    odd = False

    def status(self, request):
        if self.odd:
            self._enter()
            return Response(json.dumps({"status": "queued?", "last_date": ""}))
        return super().status(request)


@pytest.fixture
def smsc(http_server, settings):  # noqa: F811
    fake = OddStatusSmsc()
    http_server.expect_request("/sys/send.php", method="POST").respond_with_handler(fake.send)
    http_server.expect_request("/sys/status.php", method="GET").respond_with_handler(fake.status)
    settings.ABONENT_NOTIFY_HTTP_DEADLINE = 0.5
    settings.ABONENT_SMS_PROVIDER = "smsc"
    settings.ABONENT_SMSC_URL = http_server.url_for("/sys")
    settings.ABONENT_SMSC_LOGIN, settings.ABONENT_SMSC_PASSWORD = "isp", "secret"
    return fake


@pytest.fixture
def smsru(http_server, settings):  # noqa: F811
    fake = FakeSmsRu()
    http_server.expect_request("/sms/send", method="POST").respond_with_handler(fake.handler)
    settings.ABONENT_NOTIFY_HTTP_DEADLINE = 2
    settings.ABONENT_SMS_PROVIDER = "smsru"
    settings.ABONENT_SMSRU_URL = http_server.url_for("/").rstrip("/")
    settings.ABONENT_SMSRU_API_ID = SMSRU_KEY
    return fake


def queue_sms(person, key="n", event=Event.BULK, **kwargs):
    with clock.travel_to(T0):
        notify_many([Notice(person.pk, event, key, channels=("sms",), body="Завтра работы на сети", **kwargs)])
    return Message.objects.get(dedup_key=f"{key}:sms")


# --- SMSC: an answer of status.php we cannot read --------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unreadable_smsc_status_keeps_the_id_and_the_next_attempt_asks_again_instead_of_resending(
    smsc, make_subscriber
):
    message = queue_sms(make_subscriber())
    smsc.mode = "take_then_hang"  # SMSC took it, the answer never came
    assert send_at(T0) == {"retry": 1}
    smsc.mode, smsc.odd = "ok", True
    assert send_at(T0 + dt.timedelta(minutes=1)) == {"retry": 1}
    message.refresh_from_db()
    assert (message.error, message.provider_id) == ("timeout", str(message.pk))  # still unknown: still marked
    smsc.odd = False
    assert send_at(T0 + dt.timedelta(minutes=5)) == {"sent": 1}
    assert smsc.counted() == {(message.address[1:], message.body): 1}  # found by status.php, never sent twice


# --- a gzip bomb --------------------------------------------------------------------------------------------------


def _gzip_answer(payload: bytes):
    body = gzip.compress(payload, compresslevel=9)
    return lambda request: Response(body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})


def test_a_gzip_bomb_is_refused_without_inflating_it_and_a_normal_gzip_answer_is_read(http_server):  # noqa: F811
    bomb = b"{" + b" " * (32 * 1024 * 1024) + b"}"  # 32 MB of JSON, about 32 KB on the wire
    http_server.expect_request("/bomb").respond_with_handler(_gzip_answer(bomb))
    http_server.expect_request("/fine").respond_with_handler(_gzip_answer(b'{"status": "OK"}'))
    with httpx.Client() as client:
        assert len(gzip.compress(bomb)) < deadline.MAX_BODY  # the raw bound alone would let it through
        with pytest.raises(httpx.DecodingError, match="too long"):
            deadline.request(client, "GET", http_server.url_for("/bomb"), deadline=10)
        answer = deadline.request(client, "GET", http_server.url_for("/fine"), deadline=10)
    assert answer.json() == {"status": "OK"}
    assert "content-encoding" not in answer.headers  # decoded once, here


@pytest.mark.django_db
def test_an_sms_gateway_answering_a_gzip_bomb_is_a_retry_not_a_crash(http_server, settings, make_subscriber):  # noqa: F811
    http_server.expect_request("/sms/send", method="POST").respond_with_handler(
        _gzip_answer(b"[" + b"0," * (8 * 1024 * 1024) + b"0]")
    )
    settings.ABONENT_NOTIFY_HTTP_DEADLINE = 5
    settings.ABONENT_SMS_PROVIDER = "smsru"
    settings.ABONENT_SMSRU_URL = http_server.url_for("/").rstrip("/")
    settings.ABONENT_SMSRU_API_ID = SMSRU_KEY
    message = queue_sms(make_subscriber())
    assert send_at(T0) == {"retry": 1}
    message.refresh_from_db()
    assert (message.status, message.error) == (MessageStatus.QUEUED, "provider_error")
    assert "too long" in message.error_detail


# --- a malformed ABONENT_QUIET_HOURS ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_malformed_quiet_hours_setting_fails_the_system_check_and_queueing_goes_on_without_quiet_hours(
    settings, make_subscriber, caplog
):
    settings.ABONENT_QUIET_HOURS = "21-09h"
    assert [error.id for error in check_quiet_hours(None)] == ["notifications.E001"]
    with caplog.at_level(logging.ERROR, logger="abonent.notifications.queueing"):
        message = queue_sms(make_subscriber())
    assert (message.status, message.next_attempt_at) == (MessageStatus.QUEUED, T0)
    assert "ABONENT_QUIET_HOURS" in caplog.text
    settings.ABONENT_QUIET_HOURS = "21:00-09:00"
    assert check_quiet_hours(None) == []
    settings.ABONENT_QUIET_HOURS = ""
    assert check_quiet_hours(None) == []


# --- re-checked at send time ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_contract_closed_after_queueing_gets_only_what_still_goes_to_a_closed_contract(smsru, make_subscriber, admin):
    person = make_subscriber()
    runout = queue_sms(person, "runout", event=Event.RUNOUT_SOON, subject=None)
    paid = queue_sms(person, "paid", event=Event.PAYMENT_RECEIVED, subject=None)
    do_close_subscriber(person, reason="Переезд в другой город", acting_user=admin)
    assert send_at(T0) == {"skipped": 1, "sent": 1}
    runout.refresh_from_db()
    paid.refresh_from_db()
    assert (runout.status, runout.error) == (MessageStatus.SKIPPED, "closed")
    assert paid.status == MessageStatus.SENT
    assert len(smsru.accepted) == 1


# --- a bulk stream through the quiet hours ---------------------------------------------------------------------------


def test_a_stream_paused_by_the_quiet_hours_resumes_at_its_pace_where_it_stopped():
    evening = dt.datetime(2026, 12, 7, 20, 0, tzinfo=MOSCOW)
    minute = dt.timedelta(minutes=1)
    # 20:00 + 59 min is before the quiet hours; + 60 min is 21:00 (quiet): 09:00 the next morning, then on.
    assert pace_past_quiet_hours(evening, 59 * minute, MOSCOW, NIGHT) == evening + 59 * minute
    morning = dt.datetime(2026, 12, 8, 9, 0, tzinfo=MOSCOW)
    assert pace_past_quiet_hours(evening, 60 * minute, MOSCOW, NIGHT) == morning
    assert pace_past_quiet_hours(evening, 75 * minute, MOSCOW, NIGHT) == morning + 15 * minute
    # Twelve waking hours on from 09:00 reach 21:00 again: the next night is skipped too.
    assert pace_past_quiet_hours(evening, (60 + 12 * 60) * minute, MOSCOW, NIGHT) == morning + dt.timedelta(days=1)
    # Started inside the quiet hours: from their end.
    late = dt.datetime(2026, 12, 7, 23, 30, tzinfo=MOSCOW)
    assert pace_past_quiet_hours(late, 2 * minute, MOSCOW, NIGHT) == morning + 2 * minute
    assert pace_past_quiet_hours(late, 2 * minute, MOSCOW, None) == late + 2 * minute


# --- bulk messages of another branch ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_branchs_bulk_cancel_is_a_404_and_the_action_refuses_it(
    make_staff, make_subscriber, client_of, branch, other_branch
):
    tver = make_staff(Role.OPERATOR, branches=[branch])
    klin = make_staff(Role.OPERATOR, branches=[other_branch])
    group = SubscriberGroup.objects.create(name="Клин, ул. Мира 1")
    make_subscriber(branch_obj=other_branch).groups.add(group)
    bulk = actions.do_create_bulk(
        actions.BulkData("group", group.pk, "sms", "", "Авария на сети", False, 60), recipients=1, acting_user=klin
    )
    assert client_of(tver).post(f"/staff/notifications/bulk/{bulk.pk}/cancel/").status_code == 404
    with pytest.raises(PermissionDenied):
        actions.do_cancel_bulk(bulk, acting_user=tver)
    page = client_of(klin).get("/staff/notifications/bulk/").content.decode()
    assert f'data-bulk="{bulk.pk}"' in page  # its author still sees it
    assert actions.do_cancel_bulk(bulk, acting_user=klin) == 0
    bulk.refresh_from_db()
    assert bulk.status == BulkStatus.CANCELLED


# --- a transport starts no step its claim does not cover -------------------------------------------------------------


@pytest.mark.django_db
def test_a_telegram_batch_stops_between_messages_once_its_budget_is_spent(http_server, settings, make_subscriber):  # noqa: F811
    fake = FakeTelegram()
    http_server.expect_request("/bot1:T/sendMessage", method="POST").respond_with_handler(fake.handler)
    settings.ABONENT_TELEGRAM_API_URL = http_server.url_for("/").rstrip("/")
    settings.ABONENT_TELEGRAM_BOT_TOKEN = "1:T"
    people = [make_subscriber(last_name=f"Петров{i}", phone=f"+7916555{i:04d}") for i in range(3)]
    for index, person in enumerate(people):
        TelegramChat.objects.create(subscriber=person, chat_id=9300 + index, linked_at=T0)
    with clock.travel_to(T0):
        notify_many([Notice(p.pk, Event.BULK, f"b:{p.pk}", channels=("telegram",), body="Новости") for p in people])
    messages = list(Message.objects.order_by("pk"))

    class OneStep(Budget):  # the worker's claim covers the first step only (found taken, or its time is up)
        steps = 0

        def allows(self):
            self.steps += 1
            return self.steps == 1

    outcomes = transport_for("telegram").send(messages, OneStep())
    assert [o.result for o in outcomes] == [Result.SENT, Result.NOT_TRIED, Result.NOT_TRIED]
    assert fake.requests == 1


def test_the_send_time_quiet_check_reads_no_field_per_subscriber(make_subscriber, django_assert_num_queries):
    """The worker reads subscribers with ``.only("pk", "branch")`` for the quiet hours at send time; reading
    any other field of each would be one query per message (the 100,000-message benchmark fell to 369/s)."""
    from abonent.notifications.queueing import quiet_hours_default, quiet_window_of
    from abonent.subscribers.models import Subscriber

    make_subscriber()
    subscriber = Subscriber.objects.select_related("branch").only("pk", "branch").get()
    with django_assert_num_queries(0):
        zone, quiet = quiet_window_of(subscriber, None, quiet_hours_default())
    assert zone is not None and quiet == quiet_hours_default()
