"""A new phone or e-mail in the profile is proven with a code sent to it (after the current password); the
notification settings change only where asked; Telegram links end with the sessions."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.hashers import make_password

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.notifications.models import Message, Preference, TelegramLinkToken
from abonent.notifications.telegram_link import LinkRefused, consume
from abonent.portal import actions
from abonent.portal.identify import identify
from abonent.portal.models import OneTimeCode, PortalAccount
from abonent.subscribers.actions import do_add_contact
from abonent.subscribers.models import ContactPoint

from .conftest import TODAY, api_of, signed_in

pytestmark = pytest.mark.usefixtures("now")

PASSWORD = "верный-пароль-1"
NEW_PHONE = "+79035551234"
STRANGER_PHONE = "+79161110000"


@pytest.fixture
def with_password(subscriber):
    PortalAccount.objects.create(subscriber=subscriber, password=make_password(PASSWORD), created_at=TODAY)
    return subscriber


def _contacts(subscriber) -> list:
    return list(
        ContactPoint.objects.filter(subscriber=subscriber)
        .order_by("kind", "-is_primary", "id")
        .values_list("kind", "value", "is_primary")
    )


def _messages(address: str) -> list[Message]:
    return list(Message.objects.filter(event="contact_code", address=address).order_by("id"))


def _code_sent_to(address: str) -> str:
    return re.search(r"\b(\d{6})\b", _messages(address)[-1].body).group(1)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def _error(response) -> tuple:
    body = response.json()["error"]
    return response.status_code, body["code"], [(f["field"], f["code"]) for f in body["fields"]]


# --- the page ----------------------------------------------------------------------------------------------------


def test_the_page_sends_a_code_to_the_new_phone_and_changes_it_only_with_that_code(portal_client, with_password):
    sent = portal_client.post(
        "/my/profile/contacts/", {"phone": "8 (903) 555-12-34", "email": "", "current_password": PASSWORD}
    )
    assert (sent.status_code, sent["Location"]) == (302, "/my/profile/contacts/confirm/")
    [message] = _messages(NEW_PHONE)
    assert (message.subscriber_id, message.channel, message.status) == (with_password.pk, "sms", "queued")
    # The code tells nothing of the account: the new number may be a stranger's.
    assert with_password.account_number not in message.body and "confirm this phone or e-mail" in message.body
    assert not Message.objects.filter(event="contact_code", address="+79161234567").exists()
    assert _contacts(with_password) == [("phone", "+79161234567", True)]

    page = portal_client.get("/my/profile/contacts/confirm/")
    html = page.content.decode()
    assert page.status_code == 200 and "We sent a code by SMS to +7 903 555-12-34." in html
    assert 'autocomplete="one-time-code"' in html
    assert '<label class="form-label" for="confirm-code">Code</label>' in html
    assert "+7 903 555-12-34 waits for the code we sent to it." in portal_client.get("/my/profile/").content.decode()

    wrong = portal_client.post("/my/profile/contacts/confirm/", {"code": _wrong(_code_sent_to(NEW_PHONE))})
    assert wrong.status_code == 422 and "Wrong code." in wrong.content.decode()
    assert _contacts(with_password) == [("phone", "+79161234567", True)]

    done = portal_client.post("/my/profile/contacts/confirm/", {"code": _code_sent_to(NEW_PHONE)})
    assert (done.status_code, done["Location"]) == (302, "/my/profile/#contacts")
    assert _contacts(with_password) == [("phone", NEW_PHONE, True)]
    actor = f"subscriber:{with_password.account_number}"
    actions_by = set(AuditEvent.objects.filter(subscriber_id=with_password.pk).values_list("action", "actor_label"))
    assert {("subscriber.contact_added", actor), ("subscriber.contact_removed", actor)} <= actions_by
    # Nothing is waiting any more: the confirmation page goes back to the profile.
    assert portal_client.get("/my/profile/contacts/confirm/")["Location"] == "/my/profile/#contacts"


def test_the_same_code_twice_changes_once(portal_client, with_password):
    portal_client.post("/my/profile/contacts/", {"phone": NEW_PHONE, "current_password": PASSWORD})
    code = _code_sent_to(NEW_PHONE)
    assert portal_client.post("/my/profile/contacts/confirm/", {"code": code}).status_code == 302
    again = portal_client.post("/my/profile/contacts/confirm/", {"code": code})
    assert again.status_code == 422 and "No code is waiting" in again.content.decode()
    assert AuditEvent.objects.filter(action="subscriber.contact_added").count() == 1


def test_emptying_the_e_mail_needs_the_password_only(portal_client, with_password):
    do_add_contact(with_password, kind="email", value="old@example.ru", is_primary=True, acting_user=None)
    response = portal_client.post("/my/profile/contacts/", {"phone": "+79161234567", "current_password": PASSWORD})
    assert (response.status_code, response["Location"]) == (302, "/my/profile/#contacts")
    assert _contacts(with_password) == [("phone", "+79161234567", True)]
    assert not Message.objects.filter(event="contact_code").exists()


def test_a_contact_the_staff_keep_becomes_the_main_one_without_a_code(portal_client, with_password, admin):
    do_add_contact(with_password, kind="phone", value=NEW_PHONE, comment="жена", acting_user=admin)
    response = portal_client.post("/my/profile/contacts/", {"phone": NEW_PHONE, "current_password": PASSWORD})
    assert response["Location"] == "/my/profile/#contacts"
    assert _contacts(with_password) == [("phone", NEW_PHONE, True)]
    assert not Message.objects.filter(event="contact_code").exists()


# --- the API -----------------------------------------------------------------------------------------------------


def test_the_api_answers_202_and_confirms_with_the_code(with_password):
    api = api_of(with_password)
    response = api.put("/api/v1/my/profile", {"phone": NEW_PHONE, "current_password": PASSWORD})
    body = response.json()
    assert (response.status_code, body["confirmation"], body["phone"]) == (202, "code_sent", "+79161234567")
    assert body["pending_contacts"] == [{"kind": "phone", "value": NEW_PHONE, "expires_at": "2026-11-20T12:10:00Z"}]
    assert api.get("/api/v1/my/profile").json()["pending_contacts"] == body["pending_contacts"]

    wrong = api.post("/api/v1/my/profile/confirm", {"code": _wrong(_code_sent_to(NEW_PHONE))})
    assert _error(wrong) == (422, "validation_error", [("code", "code_invalid")])
    malformed = api.post("/api/v1/my/profile/confirm", {"code": "12ab"})
    assert _error(malformed) == (422, "validation_error", [("code", "code_invalid")])

    done = api.post("/api/v1/my/profile/confirm", {"code": _code_sent_to(NEW_PHONE)})
    assert (done.status_code, done.json()["phone"], done.json()["pending_contacts"]) == (200, NEW_PHONE, [])
    assert identify(NEW_PHONE).subscriber == with_password


def test_another_subscribers_phone_stays_theirs_until_its_code_is_entered(with_password, stranger):
    api_of(with_password).put("/api/v1/my/profile", {"phone": STRANGER_PHONE, "current_password": PASSWORD})
    assert identify(STRANGER_PHONE).subscriber == stranger
    [message] = _messages(STRANGER_PHONE)
    assert message.subscriber_id == with_password.pk  # the card of the one who asked shows where it went


def test_a_code_works_five_tries_and_ten_minutes(with_password):
    api = api_of(with_password)
    api.put("/api/v1/my/profile", {"phone": NEW_PHONE, "current_password": PASSWORD})
    code = _code_sent_to(NEW_PHONE)
    for _ in range(5):
        assert _error(api.post("/api/v1/my/profile/confirm", {"code": _wrong(code)}))[2] == [("code", "code_invalid")]
    assert _error(api.post("/api/v1/my/profile/confirm", {"code": code}))[2] == [("code", "code_expired")]
    assert _contacts(with_password) == [("phone", "+79161234567", True)]

    with clock.travel_to(TODAY + dt.timedelta(minutes=2)):
        api.put("/api/v1/my/profile", {"phone": NEW_PHONE, "current_password": PASSWORD})
        code = _code_sent_to(NEW_PHONE)
    with clock.travel_to(TODAY + dt.timedelta(minutes=12, seconds=1)):
        assert _error(api.post("/api/v1/my/profile/confirm", {"code": code}))[2] == [("code", "code_expired")]
    assert _contacts(with_password) == [("phone", "+79161234567", True)]


def test_codes_for_new_contacts_are_rate_limited(with_password, settings):
    settings.ABONENT_PORTAL_CODES_PER_HOUR = 2
    api = api_of(with_password)
    change = {"phone": NEW_PHONE, "current_password": PASSWORD}
    assert api.put("/api/v1/my/profile", change).status_code == 202
    assert _error(api.put("/api/v1/my/profile", change)) == (429, "too_many_codes", [("phone", "too_many_codes")])
    with clock.travel_to(TODAY + dt.timedelta(minutes=2)):
        assert api.put("/api/v1/my/profile", change).status_code == 202
    with clock.travel_to(TODAY + dt.timedelta(minutes=4)):
        assert _error(api.put("/api/v1/my/profile", change))[0] == 429
    assert len(_messages(NEW_PHONE)) == 2
    # The login codes keep their own allowance.
    assert OneTimeCode.objects.filter(purpose="set_password").count() == 0


def test_a_new_phone_and_e_mail_each_wait_for_their_own_code(with_password):
    api = api_of(with_password)
    response = api.put(
        "/api/v1/my/profile", {"phone": NEW_PHONE, "email": "Ivan@Example.ru", "current_password": PASSWORD}
    )
    assert [p["kind"] for p in response.json()["pending_contacts"]] == ["phone", "email"]
    api.post("/api/v1/my/profile/confirm", {"code": _code_sent_to("ivan@example.ru")})
    assert _contacts(with_password) == [("email", "ivan@example.ru", True), ("phone", "+79161234567", True)]
    assert [p["kind"] for p in api.get("/api/v1/my/profile").json()["pending_contacts"]] == ["phone"]


def test_confirming_with_nothing_waiting_is_refused(portal_api, subscriber):
    response = portal_api.post("/api/v1/my/profile/confirm", {"code": "123456"})
    assert _error(response) == (422, "validation_error", [("code", "code_expired")])


# --- notification settings -----------------------------------------------------------------------------------------


def test_quiet_hours_with_a_utc_offset_are_refused(portal_api, subscriber):
    response = portal_api.put("/api/v1/my/notifications", {"quiet_from": "22:00+03:00", "quiet_to": "08:00"})
    assert _error(response) == (422, "validation_error", [("quiet_from", "time_zone_aware")])
    assert not Preference.objects.filter(subscriber=subscriber).exists()


def test_quiet_hours_sent_as_null_go_back_to_the_default(portal_api, subscriber):
    portal_api.put("/api/v1/my/notifications", {"sms": False, "quiet_from": "22:00", "quiet_to": "08:00"})
    body = portal_api.put("/api/v1/my/notifications", {"quiet_from": None, "quiet_to": None}).json()
    assert (body["sms"], body["quiet_from"], body["quiet_to"]) == (False, None, None)
    half = portal_api.put("/api/v1/my/notifications", {"quiet_from": "23:00"})
    assert _error(half)[2] == [("quiet_to", "quiet_hours_half")]


# --- Telegram links end with the sessions ------------------------------------------------------------------------


def _links(subscriber, settings, count: int) -> list[str]:
    settings.ABONENT_TELEGRAM_BOT_NAME = "abonent_isp_bot"
    api = api_of(subscriber)
    return [api.post("/api/v1/my/telegram-link").json()["link"].rpartition("=")[2] for _ in range(count)]


def test_log_out_everywhere_ends_the_unused_telegram_links(with_password, settings):
    used, unused = _links(with_password, settings, 2)
    consume(used, 1001)
    assert signed_in(with_password).post("/my/security/logout-everywhere/").status_code == 302
    with pytest.raises(LinkRefused, match="expired"):
        consume(unused, 2002)
    assert consume(used, 1001).chat_id == 1001  # the linked chat stays linked
    # Still counted toward the hourly limit of links.
    assert TelegramLinkToken.objects.filter(subscriber=with_password).count() == 2


def test_a_new_password_ends_the_unused_telegram_links(subscriber, settings):
    [token] = _links(subscriber, settings, 1)
    actions.do_set_password(subscriber, "fresh-meadow-17", reason="test")
    with pytest.raises(LinkRefused, match="expired"):
        consume(token, 2002)
