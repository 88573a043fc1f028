"""Telegram: delivery through a local server speaking the Bot API's sendMessage, linking a chat by a deep link,
the webhook."""

import datetime as dt
import json

import pytest
from django.test import Client
from django.urls import reverse

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.notifications.models import Event, Message, MessageStatus, TelegramChat, TelegramLinkToken
from abonent.notifications.queueing import Notice, notify_many
from abonent.notifications.telegram_link import LinkRefused, consume, issue_link
from abonent.staff.permissions import Role

from .delivery_servers import T0, FakeTelegram, http_server, send_at  # noqa: F401

pytestmark = pytest.mark.django_db

TOKEN = "123456:TEST"
SECRET = "hook-secret-1"
BLOCKED = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}


@pytest.fixture
def telegram(http_server, settings):  # noqa: F811
    fake = FakeTelegram()
    http_server.expect_request(f"/bot{TOKEN}/sendMessage", method="POST").respond_with_handler(fake.handler)
    settings.ABONENT_QUIET_HOURS = ""
    settings.ABONENT_NOTIFY_HTTP_DEADLINE = 2
    settings.ABONENT_TELEGRAM_API_URL = http_server.url_for("/").rstrip("/")
    settings.ABONENT_TELEGRAM_BOT_TOKEN = TOKEN
    settings.ABONENT_TELEGRAM_BOT_NAME = "tvernet_bot"
    settings.ABONENT_TELEGRAM_WEBHOOK_SECRET = SECRET
    return fake


def linked(subscriber, chat_id):
    return TelegramChat.objects.create(subscriber=subscriber, chat_id=chat_id, linked_at=T0)


def queue(subscriber, key, at=T0):
    with clock.travel_to(at):
        notify_many([Notice(subscriber.pk, Event.BULK, key, channels=("telegram",), body=f"news {key}")])


def test_a_message_goes_to_the_linked_chat(telegram, make_subscriber):
    person = make_subscriber()
    linked(person, 555001)
    queue(person, "a")
    assert send_at(T0) == {"sent": 1}
    message = Message.objects.get()
    assert (message.status, message.provider_id) == (MessageStatus.SENT, "1")
    assert telegram.accepted == [("555001", "news a")]


def test_a_chat_that_blocked_the_bot_is_undeliverable_marked_and_not_written_to_again(telegram, make_subscriber):
    person = make_subscriber()
    chat = linked(person, 555002)
    telegram.answers[555002] = (403, BLOCKED)
    queue(person, "a")
    queue(person, "b")
    assert send_at(T0) == {"undeliverable": 2}
    assert set(Message.objects.values_list("status", "error")) == {(MessageStatus.UNDELIVERABLE, "bot_blocked")}
    chat.refresh_from_db()
    assert chat.blocked_at == T0
    requests = telegram.requests
    later = T0 + dt.timedelta(hours=1)
    queue(person, "c", at=later)
    # A blocked chat is no address any more: the notice is recorded as reaching nobody.
    assert not Message.objects.filter(dedup_key="c:telegram").exists()
    assert Message.objects.get(dedup_key="c:none").error == "no_address"
    assert send_at(later + dt.timedelta(days=1)) == {}
    assert telegram.requests == requests


def test_a_message_queued_before_the_block_is_not_sent_after_it(telegram, make_subscriber):
    person = make_subscriber()
    chat = linked(person, 555003)
    queue(person, "a")
    TelegramChat.objects.filter(pk=chat.pk).update(blocked_at=T0)
    assert send_at(T0) == {"undeliverable": 1}
    assert telegram.requests == 0


def test_too_many_requests_waits_what_telegram_asks_and_unknown_chat_is_final(telegram, make_subscriber):
    busy, gone = make_subscriber(), make_subscriber(last_name="Смирнов", phone="+79160000001")
    linked(busy, 1001)
    linked(gone, 1002)
    too_many = "Too Many Requests: retry after 400"
    telegram.answers[1001] = (
        429,
        {"ok": False, "error_code": 429, "description": too_many, "parameters": {"retry_after": 400}},
    )
    telegram.answers[1002] = (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
    queue(gone, "b")
    queue(busy, "a")
    assert send_at(T0) == {"retry": 1, "undeliverable": 1}
    waiting = Message.objects.get(address="1001")
    assert (waiting.status, waiting.error) == (MessageStatus.QUEUED, "rate_limited")
    assert waiting.next_attempt_at == T0 + dt.timedelta(seconds=400)
    assert Message.objects.get(address="1002").error == "chat_not_found"
    del telegram.answers[1001]
    assert send_at(T0 + dt.timedelta(seconds=399)) == {}
    assert send_at(T0 + dt.timedelta(seconds=400)) == {"sent": 1}


def webhook(body, secret=SECRET):
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    data = body if isinstance(body, str) else json.dumps(body)
    return Client().post(
        reverse("notifications_public:telegram_webhook"), data, content_type="application/json", headers=headers
    )


def start(token, chat_id=7001, update_id=1):
    return {
        "update_id": update_id,
        "message": {
            "message_id": 10,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Иван", "username": "ivan"},
            "chat": {"id": chat_id, "type": "private"},
            "date": 1765000000,
            "text": f"/start {token}",
        },
    }


def test_the_deep_link_links_the_chat_once_and_a_repeated_update_is_harmless(telegram, make_subscriber):
    person = make_subscriber()
    link = issue_link(person)
    assert link.startswith("https://t.me/tvernet_bot?start=")
    token = link.partition("start=")[2]
    assert not TelegramLinkToken.objects.filter(token_hash=token).exists()  # only the hash is stored

    answer = webhook(start(token))
    assert answer.status_code == 200
    assert answer.json()["method"] == "sendMessage" and answer.json()["chat_id"] == 7001
    chat = TelegramChat.objects.get()
    assert (chat.subscriber_id, chat.chat_id, chat.username) == (person.pk, 7001, "ivan")
    assert webhook(start(token)).status_code == 200  # Telegram redelivers
    assert TelegramChat.objects.count() == 1
    assert AuditEvent.objects.filter(action="notifications.telegram_linked").count() == 1

    with pytest.raises(LinkRefused):
        consume(token, 7002)  # someone else with the same link
    assert TelegramChat.objects.count() == 1


def test_an_expired_link_is_refused(telegram, make_subscriber):
    person = make_subscriber()
    with clock.travel_to(T0):
        token = issue_link(person).partition("start=")[2]
    with clock.travel_to(T0 + dt.timedelta(hours=25)):
        answer = webhook(start(token))
    assert answer.status_code == 200
    assert "not valid" in answer.json()["text"]
    assert not TelegramChat.objects.exists()


def test_the_webhook_refuses_a_wrong_secret_and_malformed_updates(telegram, make_subscriber):
    person = make_subscriber()
    token = issue_link(person).partition("start=")[2]
    assert webhook(start(token), secret="guess").status_code == 403
    assert webhook(start(token), secret=None).status_code == 403
    assert not TelegramChat.objects.exists()
    assert webhook("{not json").status_code == 400
    assert webhook({"message": {}}).status_code == 400  # no update_id
    assert webhook({"update_id": 5, "edited_message": {}}).status_code == 200


def test_the_webhook_is_off_without_a_secret(telegram, settings):
    settings.ABONENT_TELEGRAM_WEBHOOK_SECRET = ""
    assert webhook({"update_id": 1}, secret="").status_code == 403


def test_a_block_seen_by_the_webhook_marks_the_chat(telegram, make_subscriber):
    chat = linked(make_subscriber(), 7003)
    update = {
        "update_id": 9,
        "my_chat_member": {
            "chat": {"id": 7003, "type": "private"},
            "from": {"id": 7003},
            "date": 1765000000,
            "old_chat_member": {"status": "member", "user": {"id": 1}},
            "new_chat_member": {"status": "kicked", "user": {"id": 1}, "until_date": 0},
        },
    }
    assert webhook(update).status_code == 200
    chat.refresh_from_db()
    assert chat.blocked_at is not None


def test_staff_issue_a_link_from_the_card(telegram, make_subscriber, operator_client, make_staff):
    person = make_subscriber()
    url = reverse("notifications:telegram_link", args=[person.pk])
    answer = operator_client.post(url)
    assert answer.status_code == 200
    assert b"https://t.me/tvernet_bot?start=" in answer.content
    assert TelegramLinkToken.objects.filter(subscriber=person).count() == 1
    assert AuditEvent.objects.filter(action="notifications.telegram_link_issued", subscriber_id=person.pk).exists()
    assert operator_client.get(url).status_code == 405
    cashier = Client()
    cashier.force_login(make_staff(Role.CASHIER))
    assert cashier.post(url).status_code == 403
    assert TelegramLinkToken.objects.count() == 1
