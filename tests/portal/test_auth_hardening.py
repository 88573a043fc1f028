"""What the attack review of the login (test_attack_auth.py) led to beyond its own tests: a stranger's wrong
passwords do not keep the owner from a code reset, "log out everywhere" and the staff's button end a login being
opened, masks show nothing a made-up one cannot, the address allowances count an IPv6 client by its /64, and a
login code leaves the outbox text once it is no use."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from abonent.core import clock
from abonent.core.seeding import DemoInProduction, SeedContext, run_seed
from abonent.notifications import delivery
from abonent.notifications.actions import do_retry_message
from abonent.notifications.models import Message, MessageStatus
from abonent.portal import actions, codes, lockout
from abonent.portal.identify import identify
from abonent.portal.models import LoginAttempt
from abonent.staff.models import StaffUser
from abonent.subscribers.actions import do_add_contact

from .conftest import api_of

PASSWORD = "correct-horse-42"
NEW_PASSWORD = "fresh-meadow-17"


def sent_code(subscriber) -> str:
    body = Message.objects.filter(subscriber=subscriber, event="login_code").latest("id").body
    return re.search(r"(?<!\d)(\d{6})(?!\d)", body).group(1)


def log_in(client: Client, login: str, password: str = PASSWORD):
    return client.post("/my/login/", {"login": login, "password": password})


# --- the lock-out as a denial of service ----------------------------------------------------------------------------


def test_a_strangers_wrong_passwords_do_not_keep_the_owner_from_a_code_reset(subscriber):
    actions.do_set_password(subscriber, PASSWORD, reason="test")
    for n in range(5):
        log_in(Client(REMOTE_ADDR=f"198.51.100.{n + 1}"), subscriber.account_number, "wrong-password")
    assert log_in(Client(), subscriber.account_number).status_code == 429
    # The owner proves the phone with a code: the password login's lock-out does not hold it back.
    Client().post("/my/login/code/send/", {"login": subscriber.account_number, "channel": "sms"})
    code = sent_code(subscriber)
    response = Client().post(
        "/my/login/code/enter/", {"login": subscriber.account_number, "code": code, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 302
    # The success starts the login's count afresh: the new password works at once.
    assert log_in(Client(), subscriber.account_number, NEW_PASSWORD).status_code == 302


def test_wrong_codes_still_lock_the_password_login(subscriber):
    actions.do_set_password(subscriber, PASSWORD, reason="test")
    for _ in range(5):
        Client().post(
            "/my/login/code/enter/",
            {"login": subscriber.account_number, "code": "000000", "new_password": NEW_PASSWORD},
        )
    assert log_in(Client(), subscriber.account_number).status_code == 429


# --- sessions ending while a login opens one -----------------------------------------------------------------------


def test_log_out_everywhere_and_the_staff_button_take_the_account_lock(subscriber, admin, monkeypatch):
    from abonent.portal import sessions

    locked = []
    real = sessions.lock_account
    monkeypatch.setattr(sessions, "lock_account", lambda pk: locked.append(pk) or real(pk))
    actions.do_set_password(subscriber, PASSWORD, reason="test")
    locked.clear()
    actions.do_log_out_everywhere(subscriber)
    actions.do_end_portal_sessions(subscriber, acting_user=admin)
    assert locked == [subscriber.pk, subscriber.pk]


def test_a_password_change_from_a_session_ended_meanwhile_is_refused(subscriber, monkeypatch):
    actions.do_set_password(subscriber, PASSWORD, reason="test")
    app = api_of(subscriber)
    real_check = actions.check_new_password

    def elsewhere_logs_out_everywhere(who, password):
        real_check(who, password)
        actions.do_log_out_everywhere(who)

    monkeypatch.setattr(actions, "check_new_password", elsewhere_logs_out_everywhere)
    response = app.put("/api/v1/my/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert (response.status_code, response.json()["error"]["code"]) == (401, "session_ended")
    assert log_in(Client(), subscriber.account_number).status_code == 302  # the old password stands


# --- masks ---------------------------------------------------------------------------------------------------------


def test_masks_show_two_digits_of_a_phone_and_first_letters_of_an_e_mail(subscriber, admin):
    do_add_contact(subscriber, kind="email", value="Yuri.Ivanov@Tver-Zavod.RU", acting_user=admin)
    rows = codes.masked_destinations(identify(subscriber.account_number))
    assert [mask for _channel, _label, mask in rows] == ["*** ***-**-67", "y***@t***.ru"]
    assert codes.mask_email("юрий@почта.рф") == "****@****.рф"
    assert codes.mask_email("x@corp.example.de") == "x***@c***.***"


def test_made_up_masks_are_the_same_for_every_spelling_and_keyed_by_the_secret(subscriber, settings):
    spellings = ["100000018", "100 000 018", "100-000-018"]
    masks = {tuple(codes.masked_destinations(identify(s))) for s in spellings}
    assert len(masks) == 1
    (mask,) = masks
    assert re.fullmatch(r"\*\*\* \*\*\*-\*\*-\d\d", mask[0][2]), mask
    assert len({tuple(codes.masked_destinations(identify(f"1000{n:05d}"))) for n in range(20)}) > 1
    # Keyed by SECRET_KEY: without it, nobody can work out which masks a made-up login gets.
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert tuple(codes.masked_destinations(identify("100000018"))) != mask


def test_unknown_logins_are_counted_by_one_canonical_key(db):
    assert identify("100 000 018").key == identify("100-000-018").key == "number:100000018"
    assert identify("8 (903) 555-12-34").key == identify("+79035551234").key == "phone:+79035551234"
    assert identify("Nobody").key == identify("NOBODY").key == "login:nobody"
    # The attempts table keeps 100 characters: two long logins differing at the end are not one count.
    one, other = identify("x" * 99 + "a").key, identify("x" * 99 + "b").key
    assert len(one) <= 100 and one != other


# --- the address allowances ----------------------------------------------------------------------------------------


def test_an_ipv6_address_counts_by_its_64_and_ipv4_by_itself():
    assert lockout.network_of("2001:db8:7:9::5") == lockout.network_of("2001:db8:7:9:ffff::1") == "2001:db8:7:9::/64"
    assert lockout.network_of("2001:db8:7:a::5") != lockout.network_of("2001:db8:7:9::5")
    assert lockout.network_of("::ffff:203.0.113.5") == lockout.network_of("203.0.113.5") == "203.0.113.5"
    assert lockout.network_of("203.0.113.6") != "203.0.113.5"
    assert lockout.network_of(None) == lockout.network_of("garbage") == ""


def test_wrong_passwords_across_one_ipv6_network_lock_it(subscriber, stranger, settings):
    settings.ABONENT_PORTAL_MAX_FAILURES_PER_IP = 3
    actions.do_set_password(stranger, PASSWORD, reason="test")
    for n in range(3):
        log_in(Client(REMOTE_ADDR=f"2001:db8:7:9::{n + 1:x}"), f"guess-{n}", "wrong-password")
    assert log_in(Client(REMOTE_ADDR="2001:db8:7:9::99"), stranger.account_number).status_code == 429
    assert log_in(Client(REMOTE_ADDR="2001:db8:7:a::1"), stranger.account_number).status_code == 302


def test_a_refused_code_request_is_not_counted(subscriber, settings):
    settings.ABONENT_PORTAL_MAX_FAILURES_PER_IP = 2
    for _ in range(4):
        Client().post("/my/login/code/", {"login": "100000018"})
    assert LoginAttempt.objects.filter(kind="lookup").count() == 2


# --- the code in the outbox ------------------------------------------------------------------------------------------


def test_a_code_not_sent_within_its_lifetime_is_cancelled_and_redacted(subscriber, settings, now):
    settings.ABONENT_QUIET_HOURS = ""
    Client().post("/my/login/code/send/", {"login": subscriber.account_number, "channel": "sms"})
    code = sent_code(subscriber)
    with clock.travel_to(now + dt.timedelta(seconds=settings.ABONENT_PORTAL_CODE_SECONDS + 1)):
        delivery.send_due(channel="sms")
    message = Message.objects.get(subscriber=subscriber, event="login_code")
    assert (message.status, message.error) == (MessageStatus.CANCELLED, "expired")
    assert code not in message.body and "••••••" in message.body


def test_a_failed_code_is_redacted_and_not_sent_again(subscriber, admin, settings):
    settings.ABONENT_QUIET_HOURS = ""
    Client().post("/my/login/code/send/", {"login": subscriber.account_number, "channel": "sms"})
    code = sent_code(subscriber)
    message = Message.objects.get(subscriber=subscriber, event="login_code")
    Message.objects.filter(pk=message.pk).update(attempts=delivery.MAX_ATTEMPTS)
    delivery.send_due(channel="sms")  # claimed once too often: failed (interrupted)
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED and code not in message.body
    with pytest.raises(Exception, match="login code is not sent again"):
        do_retry_message(message, acting_user=admin)


# --- the demo ---------------------------------------------------------------------------------------------------------


def test_the_demo_refuses_production_before_touching_the_database(db, settings):
    settings.ENV = "production"
    with pytest.raises(CommandError, match="ABONENT_ENV=production"):
        call_command("demo", "--subscribers", "0", "--no-worker", "--no-radius")
    with pytest.raises(DemoInProduction):
        run_seed(SeedContext(subscribers=0, demo=True))
    assert not StaffUser.objects.filter(username="cashier").exists()
