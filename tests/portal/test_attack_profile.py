"""Attack review of the helpdesk (console and portal requests), the portal's profile and its frame.

Each test here fails on the code it was written against because of a real defect; its docstring says the attack
and the harm."""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.helpdesk import actions as helpdesk
from abonent.helpdesk.models import Ticket, TicketSource
from abonent.notifications.models import TelegramLinkToken
from abonent.portal import profile_changes, profile_data
from abonent.portal.identify import identify
from abonent.portal.models import PortalAccount
from abonent.staff.permissions import Role

from .conftest import TODAY, api_of

PASSWORD = "верный-пароль-1"
STRANGER_PHONE = "+79161110000"  # the ``stranger`` fixture's phone


def _password(subscriber, raw: str = PASSWORD) -> None:
    PortalAccount.objects.create(subscriber=subscriber, password=make_password(raw), created_at=TODAY)


def _open(subscriber) -> Ticket:
    data = helpdesk.TicketData(category="no_connection", subject="Нет интернета", text="С утра не работает")
    return helpdesk.do_open_ticket(subscriber, data, source=TicketSource.PORTAL, acting_user=None)


def _support(make_staff) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(make_staff(Role.SUPPORT, username="support"))
    return client


def _race(count: int, work) -> list:
    """``work(i)`` in ``count`` threads released at once, each on its own database connection, the clock on
    ``TODAY``; what each returned (or raised), in no particular order."""
    barrier = threading.Barrier(count)
    results: list = []

    def run(i):
        try:
            with clock.travel_to(TODAY):
                barrier.wait()
                results.append(work(i))
        except Exception as exc:  # the outcome is what the test looks at
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# --- the staff console -------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("now")
@pytest.mark.parametrize("query", ["²", "#³", "№ ¹²"])
def test_console_search_with_a_superscript_digit_is_not_a_500(subscriber, make_staff, query):
    """Support types "²" (or pastes "#12" with a superscript from a document) into the requests search. The
    selector takes ``str.isdigit()`` as "a ticket number" and calls ``int()`` on it, which refuses superscripts:
    the Requests page is a 500 for that query (helpdesk/selectors.py filtered_tickets)."""
    _open(subscriber)
    response = _support(make_staff).get("/staff/helpdesk/", {"q": query, "status": "all"})
    assert response.status_code == 200


@pytest.mark.usefixtures("now")
def test_console_list_filtered_by_a_superscript_subscriber_id_is_not_a_500(subscriber, make_staff):
    """``/staff/helpdesk/?subscriber=²``: the view checks ``isdigit()`` and then ``int()``s it, a ValueError: a 500
    instead of the unfiltered list or a 404 (helpdesk/views.py ticket_list)."""
    _open(subscriber)
    response = _support(make_staff).get("/staff/helpdesk/", {"subscriber": "²"})
    assert response.status_code in (200, 404)


# --- requests in the portal ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("now")
def test_close_and_reopen_in_a_loop_is_not_unlimited(subscriber, settings):
    """A script closes and reopens its own request over and over through the API. Opening requests and writing
    messages are limited per day, closing and reopening are not: every round trip puts the request back to "new" at
    the top of the console's list, writes two audit rows and emits two ``ticket.updated`` events (the CRM webhooks of
    issue 18), without end (helpdesk/actions.py do_change_ticket_status, by_subscriber: no limit)."""
    settings.ABONENT_HELPDESK_TICKETS_PER_DAY = 5
    settings.ABONENT_HELPDESK_COMMENTS_PER_DAY = 5
    ticket = _open(subscriber)
    api = api_of(subscriber)
    reopened = 0
    for _ in range(40):
        if api.post(f"/api/v1/my/requests/{ticket.pk}/close").status_code != 200:
            break
        if api.post(f"/api/v1/my/requests/{ticket.pk}/reopen").status_code != 200:
            break
        reopened += 1
    changes = AuditEvent.objects.filter(action="ticket.status_changed", object_id=str(ticket.pk)).count()
    assert reopened < 40, f"{reopened} reopenings, {changes} status changes written, no limit met"


# --- the profile ---------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("now")
def test_my_phone_set_to_another_subscribers_phone_does_not_lock_them_out(subscriber, stranger):
    """Subscriber A, with their own password, sets "their" phone to B's number: nothing checks that A holds that
    phone (no code sent to it) nor that it is another subscriber's. B's phone now names two subscribers, so the
    login calls it ambiguous: B can no longer sign in (or get a code) by their phone, and A's SMS go to B
    (portal/profile_changes.py change_contacts / _replace; portal/identify.py)."""
    _password(subscriber)
    _password(stranger, "пароль-петрова-2")
    assert identify(STRANGER_PHONE).subscriber == stranger

    api_of(subscriber).put("/api/v1/my/profile", {"phone": STRANGER_PHONE, "current_password": PASSWORD})

    assert identify(STRANGER_PHONE).subscriber == stranger
    login = Client().post(
        "/api/v1/my/login",
        {"login": STRANGER_PHONE, "password": "пароль-петрова-2"},
        content_type="application/json",
    )
    assert login.status_code == 200


@pytest.mark.usefixtures("now")
def test_a_put_of_one_notification_setting_keeps_the_others(subscriber):
    """The API's module says "A PUT changes only the fields it carries (null or absent: as they are)". A subscriber
    turned SMS and e-mail off and set quiet hours and English; the app then sends ``{"telegram": false}``: SMS and
    e-mail are silently switched back on (messages the subscriber refused are sent again), the quiet hours and the
    language are erased — the schema's defaults overwrite what was absent (portal/api/profile.py
    MyNotificationsIn, put_notifications)."""
    api = api_of(subscriber)
    first = api.put(
        "/api/v1/my/notifications",
        {"email": False, "sms": False, "telegram": True, "language": "en", "quiet_from": "22:00", "quiet_to": "08:00"},
    )
    assert first.status_code == 200
    body = api.put("/api/v1/my/notifications", {"telegram": False}).json()
    assert (body["email"], body["sms"], body["telegram"]) == (False, False, False)
    assert (body["language"], body["quiet_from"], body["quiet_to"]) == ("en", "22:00:00", "08:00:00")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_profile_password_guesses_sent_at_once_are_not_all_checked(subscriber, settings, monkeypatch):
    """Someone at a computer where the subscriber left the portal open guesses the password in the contacts form,
    twenty guesses at once. The form counts earlier failures, then checks the password, then writes the failure:
    every guess that arrives before the first failure is written passes the count and is checked (the login's
    lockout writes first for exactly this reason: portal/lockout.py). The password check costs Argon2's time in
    production; the test gives MD5 that time. (portal/profile_changes.py check_current_password)"""
    settings.ABONENT_PORTAL_MAX_FAILURES = 3
    with clock.travel_to(TODAY):
        _password(subscriber)
    real_check = profile_changes.check_password

    def argon2_speed(raw, encoded):
        time.sleep(0.2)
        return real_check(raw, encoded)

    monkeypatch.setattr(profile_changes, "check_password", argon2_speed)

    def guess(i):
        try:
            profile_changes.change_contacts(
                subscriber, phone=STRANGER_PHONE.replace("0000", "0001"), email="", password=f"guess-{i}"
            )
        except ValidationError as exc:
            return exc.error_dict["current_password"][0].code
        return "changed"

    outcomes = _race(15, guess)
    checked = [o for o in outcomes if o == "password_wrong"]
    assert len(checked) <= settings.ABONENT_PORTAL_MAX_FAILURES, outcomes


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_telegram_links_asked_for_at_once_stay_within_the_hourly_limit(subscriber, settings, monkeypatch):
    """Telegram links: "at most 10 an hour per subscriber" (docs/portal-profile.md). The count of the last hour's
    links and the new link are not under one lock, so links asked for at once all pass the count, and a script gets
    as many one-time links (audit rows, token rows) as it sends requests at once (portal/profile_changes.py
    telegram_link)."""
    settings.ABONENT_TELEGRAM_BOT_NAME = "abonent_isp_bot"
    real_count = profile_data.telegram_links_in_the_last_hour

    def count_then_pause(who):
        counted = real_count(who)
        time.sleep(0.1)  # a busy database between the count and the insert
        return counted

    monkeypatch.setattr(profile_data, "telegram_links_in_the_last_hour", count_then_pause)

    def ask(_i):
        try:
            return profile_changes.telegram_link(subscriber)
        except ValidationError as exc:
            return exc.error_list[0].code

    outcomes = _race(20, ask)
    issued = TelegramLinkToken.objects.filter(subscriber=subscriber).count()
    assert issued <= profile_data.TELEGRAM_LINKS_PER_HOUR, outcomes
