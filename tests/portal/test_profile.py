"""The profile page: contacts (changed only with the current password), notification preferences, Telegram
linking and unlinking, consents; each change made by the owning app's action and audited as the subscriber."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.hashers import make_password

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.notifications.models import Message, Preference, TelegramChat, TelegramLinkToken
from abonent.portal.models import LoginAttempt, PortalAccount
from abonent.subscribers.models import ContactPoint

from .conftest import TODAY, signed_in

pytestmark = pytest.mark.usefixtures("now")

PASSWORD = "верный-пароль-1"


@pytest.fixture
def with_password(subscriber):
    PortalAccount.objects.create(subscriber=subscriber, password=make_password(PASSWORD), created_at=TODAY)
    return subscriber


def _html(response) -> str:
    return response.content.decode()


def _input(html: str, element_id: str) -> str:
    return re.search(rf'<input[^>]*id="{element_id}"[^>]*>', html).group(0)


def _contacts(subscriber) -> list:
    return list(
        ContactPoint.objects.filter(subscriber=subscriber)
        .order_by("kind", "-is_primary", "id")
        .values_list("kind", "value", "is_primary")
    )


def test_the_page_shows_contacts_preferences_consents_and_the_way_to_security(portal_client, subscriber):
    page = portal_client.get("/my/profile/")
    html = _html(page)
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    assert 'value="+7 916 123-45-67"' in _input(html, "contacts-phone")
    assert 'autocomplete="current-password"' in _input(html, "contacts-current_password")
    assert " checked" in _input(html, "notifications-sms")
    assert 'href="/my/security/"' in html
    assert "Consent to the processing of personal data is not on file" in html
    for heading in ("Contacts", "Notifications", "Telegram", "Consents", "Security"):
        assert f">{heading}</h2>" in html


def _code_sent_to(address: str) -> str:
    body = Message.objects.filter(event="contact_code", address=address).latest("id").body
    return re.search(r"\b(\d{6})\b", body).group(1)


def test_a_new_phone_with_the_password_replaces_the_one_codes_go_to(portal_client, with_password):
    response = portal_client.post(
        "/my/profile/contacts/",
        {"phone": "8 (903) 555-12-34", "email": "Ivanov@Example.RU", "current_password": PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == "/my/profile/contacts/confirm/"
    assert _contacts(with_password) == [("phone", "+79161234567", True)]  # nothing changes before the codes
    for address in ("+79035551234", "ivanov@example.ru"):
        confirmed = portal_client.post("/my/profile/contacts/confirm/", {"code": _code_sent_to(address)})
        assert confirmed.status_code == 302 and confirmed["Location"] == "/my/profile/#contacts"
    assert _contacts(with_password) == [("email", "ivanov@example.ru", True), ("phone", "+79035551234", True)]
    labels = set(AuditEvent.objects.filter(subscriber_id=with_password.pk).values_list("action", "actor_label"))
    actor = f"subscriber:{with_password.account_number}"
    assert {("subscriber.contact_added", actor), ("subscriber.contact_removed", actor)} <= labels


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "Enter your current password to change the phone or e-mail."),
        ("неверный", "The current password is wrong."),
    ],
)
def test_a_contact_change_without_the_right_password_is_refused(portal_client, with_password, password, message):
    response = portal_client.post(
        "/my/profile/contacts/", {"phone": "+79035551234", "email": "", "current_password": password}
    )
    assert response.status_code == 422 and message in _html(response)
    assert _contacts(with_password) == [("phone", "+79161234567", True)]
    assert not AuditEvent.objects.filter(action__startswith="subscriber.contact").exists()


def test_without_a_password_set_contacts_cannot_change(portal_client, subscriber):
    response = portal_client.post("/my/profile/contacts/", {"phone": "+79035551234", "current_password": "x"})
    assert response.status_code == 422 and "Set a password first" in _html(response)
    assert _contacts(subscriber) == [("phone", "+79161234567", True)]


def test_wrong_passwords_lock_the_form(portal_client, with_password, settings):
    settings.ABONENT_PORTAL_MAX_FAILURES = 3
    form = {"phone": "+79035551234", "current_password": "неверный"}
    for _ in range(3):
        assert portal_client.post("/my/profile/contacts/", form).status_code == 422
    response = portal_client.post("/my/profile/contacts/", {**form, "current_password": PASSWORD})
    assert response.status_code == 422 and "Too many wrong passwords" in _html(response)
    # The same per-subscriber count as the login's: these guesses leave none for the login form either.
    assert LoginAttempt.objects.filter(identifier=f"sub:{with_password.pk}", succeeded=False).count() == 3
    assert _contacts(with_password) == [("phone", "+79161234567", True)]
    assert not Message.objects.filter(event="contact_code").exists()
    with clock.travel_to(TODAY + dt.timedelta(seconds=settings.ABONENT_PORTAL_LOCKOUT_SECONDS + 1)):
        browser = signed_in(with_password)
        assert browser.post("/my/profile/contacts/", {**form, "current_password": PASSWORD}).status_code == 302
        browser.post("/my/profile/contacts/confirm/", {"code": _code_sent_to("+79035551234")})
    assert _contacts(with_password) == [("phone", "+79035551234", True)]


def test_nothing_changed_needs_no_password_and_writes_nothing(portal_client, with_password):
    response = portal_client.post("/my/profile/contacts/", {"phone": "+7 916 123-45-67", "email": ""})
    assert response.status_code == 302
    assert _contacts(with_password) == [("phone", "+79161234567", True)]
    assert not LoginAttempt.objects.exists()


@pytest.mark.parametrize(
    ("form", "field"),
    [({"phone": "12"}, "phone"), ({"phone": ""}, "phone"), ({"phone": "+79035551234", "email": "не почта"}, "email")],
)
def test_a_malformed_contact_is_refused_on_its_field(portal_client, with_password, form, field):
    response = portal_client.post("/my/profile/contacts/", {**form, "current_password": PASSWORD})
    html = _html(response)
    assert response.status_code == 422
    assert re.search(
        rf'id="contacts-{field}"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="contacts-{field}"', html
    )
    assert _contacts(with_password) == [("phone", "+79161234567", True)]


def test_preferences_are_saved_by_the_notifications_action(portal_client, subscriber):
    response = portal_client.post(
        "/my/profile/notifications/",
        {"email": "on", "telegram": "on", "language": "en", "quiet_from": "22:00", "quiet_to": "08:30"},
    )
    assert response.status_code == 302 and response["Location"] == "/my/profile/#notifications"
    preference = Preference.objects.get(subscriber=subscriber)
    assert (preference.email, preference.sms, preference.telegram, preference.language) == (True, False, True, "en")
    assert (preference.quiet_from, preference.quiet_to) == (dt.time(22, 0), dt.time(8, 30))
    event = AuditEvent.objects.get(action="notifications.preferences_updated")
    assert event.actor_label == f"subscriber:{subscriber.account_number}"
    html = _html(portal_client.get("/my/profile/"))
    assert " checked" not in _input(html, "notifications-sms")
    assert 'value="22:00"' in _input(html, "notifications-quiet_from")


def test_half_quiet_hours_or_an_unknown_language_are_refused(portal_client, subscriber):
    for form in ({"sms": "on", "quiet_from": "22:00"}, {"sms": "on", "language": "de"}):
        assert portal_client.post("/my/profile/notifications/", form).status_code == 422
    assert not Preference.objects.filter(subscriber=subscriber).exists()


def test_marketing_consent_on_and_off_with_its_time(portal_client, subscriber):
    assert portal_client.post("/my/profile/consents/", {"consent_marketing": "on"}).status_code == 302
    subscriber.refresh_from_db()
    assert (subscriber.consent_marketing, subscriber.consent_marketing_at) == (True, TODAY)
    later = TODAY + dt.timedelta(hours=1)
    with clock.travel_to(later):
        portal_client.post("/my/profile/consents/", {})
    subscriber.refresh_from_db()
    assert (subscriber.consent_marketing, subscriber.consent_marketing_at) == (False, later)
    assert AuditEvent.objects.filter(action="subscriber.updated", subscriber_id=subscriber.pk).count() == 2
    assert "Off" in _html(portal_client.get("/my/profile/"))


def test_telegram_link_shows_the_link_and_a_qr_code_once(portal_client, subscriber, settings):
    settings.ABONENT_TELEGRAM_BOT_NAME = "abonent_isp_bot"
    response = portal_client.post("/my/profile/telegram/")
    html = _html(response)
    assert response.status_code == 200
    assert re.search(r'href="https://t\.me/abonent_isp_bot\?start=[A-Za-z0-9_-]{32}"', html)
    assert '<svg viewBox="' in html and "QR code of the Telegram link" in html
    assert TelegramLinkToken.objects.filter(subscriber=subscriber).count() == 1
    assert "t.me/abonent_isp_bot?start" not in _html(portal_client.get("/my/profile/"))


def test_telegram_links_are_limited_and_absent_without_a_bot(portal_client, subscriber, settings):
    settings.ABONENT_TELEGRAM_BOT_NAME = ""
    assert "Link Telegram" not in _html(portal_client.get("/my/profile/"))
    assert "not available" in _html(portal_client.post("/my/profile/telegram/", follow=True))
    settings.ABONENT_TELEGRAM_BOT_NAME = "abonent_isp_bot"
    for _ in range(10):
        portal_client.post("/my/profile/telegram/")
    refused = portal_client.post("/my/profile/telegram/", follow=True)
    assert "Too many links" in _html(refused)
    assert TelegramLinkToken.objects.filter(subscriber=subscriber).count() == 10


def test_a_linked_chat_is_listed_and_unlinked(portal_client, subscriber, stranger):
    mine = TelegramChat.objects.create(subscriber=subscriber, chat_id=1001, username="ivanov", linked_at=TODAY)
    theirs = TelegramChat.objects.create(subscriber=stranger, chat_id=2002, username="petrov", linked_at=TODAY)
    html = _html(portal_client.get("/my/profile/"))
    assert "@ivanov" in html and "@petrov" not in html
    assert portal_client.post(f"/my/profile/telegram/{theirs.pk}/unlink/").status_code == 404
    assert portal_client.get(f"/my/profile/telegram/{theirs.pk}/unlink/").status_code == 404
    assert TelegramChat.objects.filter(pk=theirs.pk).exists()
    assert portal_client.post(f"/my/profile/telegram/{mine.pk}/unlink/").status_code == 302
    assert not TelegramChat.objects.filter(pk=mine.pk).exists()
    event = AuditEvent.objects.get(action="notifications.telegram_unlinked")
    assert (event.subscriber_id, event.actor_label) == (subscriber.pk, f"subscriber:{subscriber.account_number}")
    assert portal_client.post(f"/my/profile/telegram/{mine.pk}/unlink/").status_code == 404


def test_the_forms_want_a_post(portal_client):
    for url in (
        "/my/profile/contacts/",
        "/my/profile/consents/",
        "/my/profile/notifications/",
        "/my/profile/telegram/",
    ):
        assert portal_client.get(url).status_code == 405
    assert portal_client.post("/my/profile/").status_code == 405
