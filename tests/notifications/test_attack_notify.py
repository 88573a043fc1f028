"""Attack review of the notifications app (issue 14): each test shows a way a message goes out twice, never, to
someone who said no, or a request crashes, and fails on the code as it stands."""

import datetime as dt
import itertools
import json
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from abonent.core import clock
from abonent.notifications import actions, delivery
from abonent.notifications.bulk import expand_bulk
from abonent.notifications.models import BulkStatus, Event, Message, MessageStatus, TelegramChat
from abonent.notifications.queueing import Notice, notify_many
from abonent.staff.permissions import Role
from abonent.subscribers.models import ContactKind, ContactPoint, Subscriber, SubscriberGroup

from .delivery_servers import SMSRU_KEY, T0, FakeSmsRu, FakeTelegram, SmtpServer, http_server, send_at  # noqa: F401

TOKEN = "123456:TEST"
SECRET = "hook-secret-1"


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


@pytest.fixture
def telegram(http_server, settings):  # noqa: F811
    fake = FakeTelegram()
    http_server.expect_request(f"/bot{TOKEN}/sendMessage", method="POST").respond_with_handler(
        lambda request: fake.handler(request)
    )
    settings.ABONENT_QUIET_HOURS = ""
    settings.ABONENT_NOTIFY_HTTP_DEADLINE = 2
    settings.ABONENT_TELEGRAM_API_URL = http_server.url_for("/").rstrip("/")
    settings.ABONENT_TELEGRAM_BOT_TOKEN = TOKEN
    settings.ABONENT_TELEGRAM_BOT_NAME = "tvernet_bot"
    settings.ABONENT_TELEGRAM_WEBHOOK_SECRET = SECRET
    return fake


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_TIMEOUT = 2
    settings.ABONENT_NOTIFY_EMAIL_FROM = "billing@tvernet.example"
    settings.ABONENT_PUBLIC_URL = "https://billing.tvernet.example"
    settings.ABONENT_QUIET_HOURS = ""
    yield server
    server.stop()


def people(make_subscriber, n, **kwargs):
    return [make_subscriber(last_name=f"Петров{i}", phone=f"+7916555{i:04d}", **kwargs) for i in range(n)]


# --- delivery: sent twice ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two workers with their own connections")
def test_a_slow_provider_makes_the_batch_outlive_its_lease_and_a_second_worker_sends_it_again(
    telegram, make_subscriber, monkeypatch
):
    """Telegram (or an SMTP relay that tarpits) answers slowly: each sendMessage takes a while but within the
    HTTP deadline. A batch of 10 is sent one by one, so the batch as a whole takes longer than the lease (by
    default 10 x up to 15-30 s against a 5 min lease, started as late as 2.5 min in). The lease only guards the
    *start* of a batch; once it runs out, a second worker claims the same rows (the first has not recorded
    anything yet) and sends every one of them again: each subscriber gets the message twice. The lease is
    scaled down here (1 s) with the provider's delay (0.2 s a message) so the test is fast."""
    monkeypatch.setattr(delivery, "LEASE", dt.timedelta(seconds=1))
    subscribers = people(make_subscriber, 10)
    for index, person in enumerate(subscribers):
        TelegramChat.objects.create(subscriber=person, chat_id=9100 + index, linked_at=clock.now())
    notify_many(
        [Notice(p.pk, Event.BULK, f"slow:{p.pk}", channels=("telegram",), body="Работы на сети") for p in subscribers]
    )
    fast_handler = telegram.handler

    def slow(request):
        time.sleep(0.2)
        return fast_handler(request)

    telegram.handler = slow
    errors = []

    def worker(delay):
        try:
            time.sleep(delay)
            delivery.send_due(limit=10)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(delay,)) for delay in (0, 1.2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    for _ in range(30):  # whatever was handed back unsent goes now
        if not delivery.send_due(limit=10):
            break
    connections.close_all()
    counted = telegram.counted()
    assert sum(counted.values()) == 10 and set(counted.values()) == {1}, f"sent twice: {counted}"


@pytest.mark.django_db
def test_one_odd_telegram_answer_in_a_batch_makes_the_messages_already_accepted_go_again(telegram, make_subscriber):
    """Telegram (or a proxy before it) answers one sendMessage of a batch with a JSON body that is not shaped as
    expected (``"result": true``). ``outcome_of`` raises, the transport's exception escapes ``send`` and the
    worker marks the *whole* batch for a retry, including the chats Telegram had already accepted a moment
    before: they get the same message a second time."""
    first, second = people(make_subscriber, 2)
    TelegramChat.objects.create(subscriber=first, chat_id=8001, linked_at=T0)
    TelegramChat.objects.create(subscriber=second, chat_id=8002, linked_at=T0)
    with clock.travel_to(T0):
        notify_many(
            [Notice(p.pk, Event.BULK, f"odd:{p.pk}", channels=("telegram",), body="Новости") for p in (first, second)]
        )
    telegram.answers[8002] = (200, {"ok": True, "result": True})
    send_at(T0)
    telegram.answers.clear()
    send_at(T0 + dt.timedelta(minutes=5))
    assert telegram.counted()[("8001", "Новости")] == 1, "the first chat got the message twice"


# --- delivery: retried forever ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_message_whose_worker_dies_every_time_is_claimed_again_without_end(smsru, make_subscriber):
    """A message that kills its worker (out of memory, the process is killed at a deploy, a hung provider that
    the supervisor restarts) is claimed again each time its lease runs out. Every claim counts an attempt, but
    the claim never looks at the count: after MAX_ATTEMPTS the message is still ``queued`` and claimed again,
    forever, instead of ending ``failed`` as the issue asks ("nothing retried forever")."""
    person = make_subscriber()
    with clock.travel_to(T0):
        notify_many([Notice(person.pk, Event.BULK, "poison", channels=("sms",), body="text")])
    moment, claims = T0, 0
    for _ in range(delivery.MAX_ATTEMPTS + 4):
        with clock.travel_to(moment):
            rows, _lease = delivery._claim_due(10, None)  # the worker claims it, then dies
        claims += len(rows)
        moment += delivery.LEASE + dt.timedelta(seconds=1)
    message = Message.objects.get()
    assert claims <= delivery.MAX_ATTEMPTS, f"claimed {claims} times, attempts={message.attempts}"
    send_at(moment)
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert smsru.requests == 0


# --- e-mail: a line break in the subject ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_line_break_in_an_email_subject_is_retried_for_hours_and_holds_back_the_rest_of_the_batch(
    smtp, make_subscriber
):
    """A bulk e-mail (or a template) whose subject has a line break in it ("Работы\\nBcc: ..." pasted by an
    operator; CharField keeps inner line breaks). Django refuses the header (BadHeaderError): that is not a
    mail-server fault, and the message can never be sent. The transport takes it for a lost connection: the
    message is retried for hours and every later message of the same SMTP batch is put back as
    "connection lost", its attempt burned, instead of going out now."""
    bad, good = people(make_subscriber, 2)
    ContactPoint.objects.create(subscriber=bad, kind=ContactKind.EMAIL, value="bad@example.ru")
    ContactPoint.objects.create(subscriber=good, kind=ContactKind.EMAIL, value="good@example.ru")
    with clock.travel_to(T0):
        notify_many(
            [
                Notice(
                    bad.pk, Event.BULK, "hdr:1", channels=("email",), subject="Работы\nBcc: x@evil.example", body="a"
                ),
                Notice(good.pk, Event.BULK, "hdr:2", channels=("email",), subject="Работы", body="b"),
            ]
        )
    send_at(T0)
    by_address = {m.address: m for m in Message.objects.all()}
    assert by_address["good@example.ru"].status == MessageStatus.SENT, by_address["good@example.ru"].error_detail
    assert by_address["bad@example.ru"].status == MessageStatus.FAILED  # final: retrying cannot help
    assert [recipients for recipients, _m in smtp.messages] == [["good@example.ru"]]


@pytest.mark.django_db
def test_a_template_subject_with_a_line_break_is_accepted_on_save(admin):
    """Staff save an e-mail template whose subject has a line break (pasted text). It is accepted, and then
    every e-mail of that event fails to build (BadHeaderError) and is retried for hours until it fails: the
    check on save is the place to refuse it."""
    with pytest.raises(ValidationError):
        actions.do_save_template(
            Event.RESTRICTED,
            "email",
            "ru",
            subject="Доступ ограничен\r\nBcc: all@evil.example",
            body="{name}, оплатите {amount_due}",
            acting_user=admin,
        )


# --- advertising after the consent is withdrawn --------------------------------------------------------------------


@pytest.mark.django_db
def test_an_advertising_message_goes_out_after_the_subscriber_withdrew_consent(smsru, make_subscriber):
    """An advertising bulk message at a slow rate is queued for hours ahead (10,000 at 60 a minute: ~3 h). A
    subscriber who agreed withdraws the consent in the meantime (the portal, a call to support). The send-time
    check looks at the channel being turned off and at blocked chats, not at the consent: the advert still goes
    out, against the law on advertising (38-FZ art. 18: on refusal the sending must stop at once)."""
    person = make_subscriber(consent_marketing=True)
    with clock.travel_to(T0):
        notify_many([Notice(person.pk, Event.BULK, "ad:1", channels=("sms",), marketing=True, body="Скидка 50% на ТВ")])
    assert Message.objects.get().status == MessageStatus.QUEUED
    Subscriber.objects.filter(pk=person.pk).update(consent_marketing=False)  # withdrawn
    send_at(T0 + dt.timedelta(hours=1))
    assert smsru.accepted == [], "the advert was sent after the consent was withdrawn"
    assert Message.objects.get().status == MessageStatus.SKIPPED


# --- bulk messages --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_branch_limited_operator_cancels_another_branchs_bulk_message(
    make_staff, make_subscriber, client_of, branch, other_branch
):
    """An operator limited to Тверь opens /staff/notifications/bulk/<id>/cancel/ for a bulk message that the Клин
    operator sent to Клин's subscribers (ids are sequential). ``bulk_cancel`` looks the bulk up without any
    branch check and cancels it: Клин's outage notice is never sent, by someone who cannot even see those
    subscribers."""
    tver = make_staff(Role.OPERATOR, branches=[branch])
    klin = make_staff(Role.OPERATOR, branches=[other_branch])
    group = SubscriberGroup.objects.create(name="Клин, ул. Мира 1")
    for index in range(3):
        make_subscriber(branch_obj=other_branch, phone=f"+7916444000{index}").groups.add(group)
    bulk = actions.do_create_bulk(
        actions.BulkData("group", group.pk, "sms", "", "Авария на сети", False, 1), recipients=3, acting_user=klin
    )
    expand_bulk(bulk.pk)
    assert Message.objects.filter(bulk=bulk, status=MessageStatus.QUEUED).count() == 3
    client_of(tver).post(f"/staff/notifications/bulk/{bulk.pk}/cancel/")
    bulk.refresh_from_db()
    assert bulk.status != BulkStatus.CANCELLED
    assert Message.objects.filter(bulk=bulk, status=MessageStatus.QUEUED).count() == 3


@pytest.mark.django_db
def test_a_bulk_message_confirmed_in_the_quiet_hours_loses_its_throttle(settings, operator, make_subscriber):
    """An operator sends an outage notice at 22:00 at 1 SMS a minute (the call centre can take that many calls
    back). Each message is given its slot, then the quiet hours move every slot to 09:00 exactly: at 09:00 the
    whole audience is due at once, the throttle gone (with 10,000 recipients: 10,000 SMS in the same second)."""
    settings.ABONENT_QUIET_HOURS = "21:00-09:00"
    settings.TIME_ZONE = "Europe/Moscow"
    group = SubscriberGroup.objects.create(name="Дом")
    for person in people(make_subscriber, 4):
        person.groups.add(group)
    evening = dt.datetime(2026, 12, 7, 19, 0, tzinfo=dt.UTC)  # 22:00 in Moscow
    with clock.travel_to(evening):
        bulk = actions.do_create_bulk(
            actions.BulkData("group", group.pk, "sms", "", "Работы на сети", False, 1),
            recipients=4,
            acting_user=operator,
        )
        expand_bulk(bulk.pk)
    due = sorted(Message.objects.filter(bulk=bulk).values_list("next_attempt_at", flat=True))
    assert len(due) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(due)]
    assert all(gap >= dt.timedelta(minutes=1) for gap in gaps), f"due at {due}"


# --- the Telegram webhook ---------------------------------------------------------------------------------------------


def _webhook(body):
    return Client(raise_request_exception=False).post(
        reverse("notifications_public:telegram_webhook"),
        json.dumps(body),
        content_type="application/json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 1, "message": {"chat": 7001, "text": "/start abcdefghijklmnop"}},
        {"update_id": 2, "message": {"chat": {"id": 7001}, "from": "ivan", "text": "/start abcdefghijklmnopq"}},
        {"update_id": 3, "my_chat_member": {"chat": [7001], "new_chat_member": {"status": "kicked"}}},
    ],
)
def test_a_malformed_update_to_the_webhook_is_a_500(telegram, update):
    """An update with a valid secret but a field of the wrong JSON type (``chat`` a number, ``from`` a string):
    ``handle_update`` calls ``.get`` on it and the webhook answers 500 (and Telegram, seeing an error, sends the
    same update again and again). Invariant 6: a malformed webhook gets a clear error, not a crash."""
    answer = _webhook(update)
    assert answer.status_code in (200, 400), answer.status_code


@pytest.mark.django_db
def test_a_retry_after_a_gateway_fault_is_sent_in_the_subscribers_quiet_hours(settings, smsru, make_subscriber):
    """Quiet hours 21:00-09:00 (Moscow). A notice queued at 20:59 is due at once; the SMS gateway is down for that
    first attempt. The retry is due after the backoff (30 s, 2 min, 10 min, 30 min, 2 h) and the backoff never
    looks at the quiet hours: the gateway recovers and the SMS goes out at 21:00:30, and later retries at 23:00 or
    at night just the same."""
    settings.ABONENT_QUIET_HOURS = "21:00-09:00"
    settings.TIME_ZONE = "Europe/Moscow"
    person = make_subscriber()
    before = dt.datetime(2026, 12, 7, 17, 59, tzinfo=dt.UTC)  # 20:59 in Moscow
    with clock.travel_to(before):
        notify_many([Notice(person.pk, Event.BULK, "night:1", channels=("sms",), body="Завтра работы на сети")])
    smsru.mode = "error"
    assert send_at(before) == {"retry": 1}
    smsru.mode = "ok"
    night = before + dt.timedelta(minutes=1, seconds=30)  # 21:00:30 in Moscow, inside the quiet hours
    send_at(night)
    assert smsru.accepted == [], "an SMS went out at 21:00:30 local time, inside the quiet hours"
    message = Message.objects.get()
    assert message.next_attempt_at >= dt.datetime(2026, 12, 8, 6, 0, tzinfo=dt.UTC)  # 09:00 the next morning


@pytest.mark.django_db
def test_a_branch_limited_operator_sees_another_branchs_bulk_messages(
    make_staff, make_subscriber, client_of, branch, other_branch
):
    """The Тверь operator opens the bulk list: it shows every branch's bulk messages, with their text, the
    audience's name and the counts of sent and failed (Клин's "Долг за ноябрь: отключение 10.12" to a group
    named after a street). The outbox itself is branch-scoped; this page is not."""
    tver = make_staff(Role.OPERATOR, branches=[branch])
    klin = make_staff(Role.OPERATOR, branches=[other_branch])
    group = SubscriberGroup.objects.create(name="Клин, ул. Мира 1")
    make_subscriber(branch_obj=other_branch).groups.add(group)
    bulk = actions.do_create_bulk(
        actions.BulkData("group", group.pk, "sms", "", "Клин: отключение за долг 10.12", False, 60),
        recipients=1,
        acting_user=klin,
    )
    page = client_of(tver).get("/staff/notifications/bulk/").content.decode()
    assert f'data-bulk="{bulk.pk}"' not in page and "Клин, ул. Мира 1" not in page
