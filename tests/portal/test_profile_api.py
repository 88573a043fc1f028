"""The profile in the portal's API: contacts need the current password, consents and preferences are saved, a
Telegram link is handed out and a chat unlinked; another subscriber's chat is a 404."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.hashers import make_password

from abonent.notifications.models import Message, Preference, TelegramChat
from abonent.portal.models import PortalAccount
from abonent.subscribers.models import ContactPoint

from .conftest import TODAY

pytestmark = pytest.mark.usefixtures("now")

PASSWORD = "верный-пароль-1"


@pytest.fixture
def with_password(subscriber):
    PortalAccount.objects.create(subscriber=subscriber, password=make_password(PASSWORD), created_at=TODAY)
    return subscriber


def _codes(response) -> list:
    return [(f["field"], f["code"]) for f in response.json()["error"]["fields"]]


def _phones(subscriber) -> list:
    return list(ContactPoint.objects.filter(subscriber=subscriber, kind="phone").values_list("value", flat=True))


def test_the_profile_reads_contacts_and_consents(portal_api, subscriber):
    body = portal_api.get("/api/v1/my/profile").json()
    assert body == {
        "account_number": subscriber.account_number,
        "name": "Иванов Иван Петрович",
        "phone": "+79161234567",
        "email": "",
        "other_contacts": [],
        "has_password": False,
        "consent_personal_data": False,
        "consent_personal_data_at": None,
        "consent_marketing": False,
        "consent_marketing_at": None,
        "pending_contacts": [],
    }


def test_a_contact_change_without_the_password_is_refused(portal_api, with_password):
    for password, code in (("", "password_required"), ("неверный", "password_wrong")):
        response = portal_api.put("/api/v1/my/profile", {"phone": "+79035551234", "current_password": password})
        assert response.status_code == 422
        assert _codes(response) == [("current_password", code)]
    assert _phones(with_password) == ["+79161234567"]


def _code_sent_to(address: str) -> str:
    body = Message.objects.filter(event="contact_code", address=address).latest("id").body
    return re.search(r"\b(\d{6})\b", body).group(1)


def test_a_contact_change_with_the_password_and_consent_in_one_request(portal_api, with_password):
    response = portal_api.put(
        "/api/v1/my/profile",
        {"email": "ivanov@example.ru", "consent_marketing": True, "current_password": PASSWORD},
    )
    assert response.status_code == 202
    body = response.json()
    assert (body["confirmation"], body["email"], body["consent_marketing"]) == ("code_sent", "", True)
    assert body["consent_marketing_at"] == "2026-11-20T12:00:00Z"
    assert body["pending_contacts"] == [
        {"kind": "email", "value": "ivanov@example.ru", "expires_at": "2026-11-20T12:10:00Z"}
    ]
    confirmed = portal_api.post("/api/v1/my/profile/confirm", {"code": _code_sent_to("ivanov@example.ru")})
    assert confirmed.status_code == 200
    assert (confirmed.json()["email"], confirmed.json()["pending_contacts"]) == ("ivanov@example.ru", [])


def test_a_refused_contact_change_leaves_the_consent_too(portal_api, with_password):
    response = portal_api.put("/api/v1/my/profile", {"phone": "+79035551234", "consent_marketing": True})
    assert response.status_code == 422
    with_password.refresh_from_db()
    assert (with_password.consent_marketing, _phones(with_password)) == (False, ["+79161234567"])


def test_the_consent_alone_needs_no_password(portal_api, subscriber):
    response = portal_api.put("/api/v1/my/profile", {"consent_marketing": True})
    assert (response.status_code, response.json()["consent_marketing"]) == (200, True)


def test_a_malformed_phone_is_a_422_on_its_field(portal_api, with_password):
    response = portal_api.put("/api/v1/my/profile", {"phone": "12", "current_password": PASSWORD})
    assert response.status_code == 422 and _codes(response)[0][0] == "phone"
    assert _phones(with_password) == ["+79161234567"]


def test_preferences_read_and_saved(portal_api, subscriber):
    assert portal_api.get("/api/v1/my/notifications").json() == {
        "email": True,
        "sms": True,
        "telegram": True,
        "language": "",
        "quiet_from": None,
        "quiet_to": None,
        "telegram_chats": [],
    }
    body = {"email": True, "sms": False, "telegram": True, "language": "ru", "quiet_from": "23:00", "quiet_to": "07:00"}
    response = portal_api.put("/api/v1/my/notifications", body)
    assert response.status_code == 200
    assert response.json() == {**body, "quiet_from": "23:00:00", "quiet_to": "07:00:00", "telegram_chats": []}
    preference = Preference.objects.get(subscriber=subscriber)
    assert (preference.sms, preference.language) == (False, "ru")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"language": "de"}, [("language", "language_invalid")]),
        ({"quiet_from": "23:00"}, [("quiet_to", "quiet_hours_half")]),
        ({"quiet_from": "25:00", "quiet_to": "07:00"}, [("quiet_from", "time_parsing")]),
    ],
)
def test_bad_preferences_are_refused(portal_api, subscriber, body, expected):
    response = portal_api.put("/api/v1/my/notifications", body)
    assert response.status_code == 422 and _codes(response) == expected
    assert not Preference.objects.filter(subscriber=subscriber).exists()


def test_a_telegram_link_and_unlinking_a_chat(portal_api, subscriber, stranger, settings):
    settings.ABONENT_TELEGRAM_BOT_NAME = "abonent_isp_bot"
    response = portal_api.post("/api/v1/my/telegram-link")
    assert response.status_code == 201
    assert re.fullmatch(r"https://t\.me/abonent_isp_bot\?start=[A-Za-z0-9_-]{32}", response.json()["link"])
    assert response.json()["qr_svg"].startswith("<svg")
    assert response.json()["expires_at"] == "2026-11-21T12:00:00Z"
    mine = TelegramChat.objects.create(subscriber=subscriber, chat_id=1001, username="ivanov", linked_at=TODAY)
    theirs = TelegramChat.objects.create(subscriber=stranger, chat_id=2002, linked_at=TODAY)
    assert [c["id"] for c in portal_api.get("/api/v1/my/notifications").json()["telegram_chats"]] == [mine.pk]
    assert portal_api.delete(f"/api/v1/my/telegram-chats/{theirs.pk}").status_code == 404
    assert TelegramChat.objects.filter(pk=theirs.pk).exists()
    assert portal_api.delete(f"/api/v1/my/telegram-chats/{mine.pk}").status_code == 204
    assert not TelegramChat.objects.filter(pk=mine.pk).exists()


def test_without_a_bot_the_link_is_a_409(portal_api, settings):
    settings.ABONENT_TELEGRAM_BOT_NAME = ""
    response = portal_api.post("/api/v1/my/telegram-link")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "telegram_not_configured")
