"""E-mail through a local SMTP server, with the unsubscribe link working end to end."""

import datetime as dt
import socket

import pytest
from django.test import Client

from abonent.core import clock
from abonent.notifications.models import Event, Message, MessageStatus, Preference
from abonent.notifications.queueing import Notice, notify_many
from abonent.subscribers.models import ContactKind, ContactPoint

from .delivery_servers import T0, SmtpServer, send_at

pytestmark = pytest.mark.django_db


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


def with_email(make_subscriber, address="ivanov@example.ru", **kwargs):
    subscriber = make_subscriber(**kwargs)
    ContactPoint.objects.create(subscriber=subscriber, kind=ContactKind.EMAIL, value=address)
    return subscriber


def queue(subscriber, key, at=T0):
    with clock.travel_to(at):
        notify_many(
            [
                Notice(
                    subscriber.pk, Event.BULK, key, channels=("email",), subject="Работы на сети", body="Завтра с 2:00"
                )
            ]
        )


def test_an_email_goes_out_with_a_working_unsubscribe_link(smtp, make_subscriber):
    person = with_email(make_subscriber)
    queue(person, "a")
    assert send_at(T0) == {"sent": 1}
    [(recipients, email)] = smtp.messages
    assert recipients == ["ivanov@example.ru"]
    assert email["From"] == "billing@tvernet.example" and email["Subject"] == "Работы на сети"
    message = Message.objects.get()
    assert (message.status, message.provider_id) == (MessageStatus.SENT, email["Message-ID"])
    link = "".join(str(email["List-Unsubscribe"]).split()).strip("<>")
    assert link.startswith("https://billing.tvernet.example/notifications/unsubscribe/")
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in email.get_content() and "Завтра с 2:00" in email.get_content()

    path = link.removeprefix("https://billing.tvernet.example")
    client = Client()
    page = client.get(path)
    assert page.status_code == 200
    assert not Preference.objects.filter(subscriber=person, email=False).exists()  # a GET changes nothing
    assert client.post(path).status_code == 200
    assert Preference.objects.get(subscriber=person).email is False
    assert client.post(path).status_code == 200  # again: still off, no error

    queue(person, "b", at=T0 + dt.timedelta(hours=1))
    assert Message.objects.get(dedup_key="b:email").error == "channel_off"
    assert len(smtp.messages) == 1


def test_a_forged_or_damaged_unsubscribe_token_is_a_400_page(smtp, make_subscriber):
    person = with_email(make_subscriber)
    client = Client()
    assert client.get("/notifications/unsubscribe/not-a-token/").status_code == 400
    assert client.post("/notifications/unsubscribe/eyJzIjoxfQ:1abc:forged/").status_code == 400
    assert not Preference.objects.filter(subscriber=person).exists()


def test_a_recipient_the_server_refuses_is_undeliverable_and_the_next_one_still_goes(smtp, make_subscriber):
    refused = with_email(make_subscriber, "nobody@example.ru")
    fine = with_email(make_subscriber, "petrov@example.ru", last_name="Петров", phone="+79160000002")
    smtp.refuse.add("nobody@example.ru")
    queue(refused, "a")
    queue(fine, "b")
    assert send_at(T0) == {"sent": 1, "undeliverable": 1}
    bad = Message.objects.get(address="nobody@example.ru")
    assert (bad.status, bad.error) == (MessageStatus.UNDELIVERABLE, "bad_address")
    assert [recipients for recipients, _email in smtp.messages] == [["petrov@example.ru"]]


def test_a_mail_server_that_is_down_is_retried(settings, make_subscriber):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 1
    settings.ABONENT_QUIET_HOURS = ""
    queue(with_email(make_subscriber), "a")
    assert send_at(T0) == {"retry": 1}
    message = Message.objects.get()
    assert (message.status, message.error) == (MessageStatus.QUEUED, "unreachable")
