"""Signing in to the portal by password: who a login names, the lock-out by login and by address, a new session
on every sign-in, ``next`` that never leaves the portal, logging out."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from abonent.core import clock
from abonent.network.actions import do_create_login
from abonent.portal import actions
from abonent.portal.identify import identify
from abonent.portal.models import LoginAttempt, PortalAccount, PortalSession
from abonent.portal.sessions import COOKIE
from abonent.subscribers.actions import do_add_contact, do_close_subscriber

from .conftest import signed_in

PASSWORD = "correct-horse-42"


@pytest.fixture
def with_password(subscriber):
    actions.do_set_password(subscriber, PASSWORD, reason="test")
    return subscriber


def log_in(client: Client, login: str, password: str = PASSWORD, **extra):
    return client.post("/my/login/", {"login": login, "password": password, **extra.pop("data", {})}, **extra)


# --- who a login names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["+79161234567", "89161234567", "8 (916) 123-45-67", "+7 916 123 45 67", "9161234567", "7-916-123-4567"]
)
def test_every_common_spelling_of_the_phone_names_the_subscriber(subscriber, typed):
    assert identify(typed).subscriber == subscriber
    assert identify(typed).key == f"sub:{subscriber.pk}"


def test_the_account_number_names_the_subscriber_with_spaces_too(subscriber):
    number = subscriber.account_number
    assert identify(number).subscriber == subscriber
    assert identify(f" {number[:3]} {number[3:6]} {number[6:]} ").subscriber == subscriber


def test_a_pppoe_or_hotspot_login_names_its_subscriber_and_an_ipoe_mac_does_not(subscriber, admin):
    do_create_login(subscriber, acting_user=admin, kind="pppoe", username="ivanov", password="radius-pass")
    do_create_login(subscriber, acting_user=admin, kind="ipoe_mac", username="00:1e:73:aa:bb:cc")
    assert identify("ivanov").subscriber == subscriber
    assert identify("Ivanov").subscriber == subscriber  # a phone's keyboard capitalises the first letter
    assert identify("00:1e:73:aa:bb:cc").subscriber is None


def test_a_phone_on_two_contracts_names_neither_and_asks_for_the_account_number(subscriber, stranger, admin):
    do_add_contact(stranger, kind="phone", value="+79161234567", acting_user=admin)
    found = identify("8 916 123-45-67")
    assert (found.subscriber, found.ambiguous) == (None, True)
    response = log_in(Client(), "89161234567")
    assert response.status_code == 422
    assert "Enter your account number instead" in response.content.decode()
    assert PortalSession.objects.count() == 0


def test_unknown_and_garbage_logins_name_nobody(subscriber):
    for typed in ["", "   ", "nobody", "100000000", "+7 999 000-00-00", "x" * 500, "' OR 1=1 --", "\u0000abc"]:
        assert identify(typed).subscriber is None


# --- the password -------------------------------------------------------------------------------------------------


def test_the_right_password_signs_in_by_account_number_phone_and_login(with_password, admin):
    do_create_login(with_password, acting_user=admin, kind="pppoe", username="ivanov", password="radius-pass")
    for login in [with_password.account_number, "8 (916) 123-45-67", "ivanov"]:
        client = Client()
        response = log_in(client, login)
        assert response.status_code == 302
        assert response["Location"] == "/my/"
        assert client.get("/my/").wsgi_request.subscriber == with_password
    assert PortalSession.objects.filter(subscriber=with_password, revoked_at__isnull=True).count() == 3
    assert PortalAccount.objects.get(subscriber=with_password).last_login_at is not None


def test_a_wrong_password_and_an_unknown_login_read_the_same(with_password):
    wrong = log_in(Client(), with_password.account_number, "wrong-password")
    unknown = log_in(Client(), "100000018", "wrong-password")
    assert wrong.status_code == unknown.status_code == 422
    assert "Wrong login or password." in wrong.content.decode()
    assert "Wrong login or password." in unknown.content.decode()
    assert PortalSession.objects.count() == 0
    assert LoginAttempt.objects.filter(succeeded=False, kind="password").count() == 2


def test_no_password_yet_is_a_wrong_password_not_a_hint(subscriber):
    response = log_in(Client(), subscriber.account_number, "")
    assert response.status_code == 422
    response = log_in(Client(), subscriber.account_number, "anything-at-all")
    assert "Wrong login or password." in response.content.decode()
    assert PortalSession.objects.count() == 0


def test_an_unknown_login_costs_a_password_hash_as_a_known_one_does(with_password, monkeypatch):
    hashed = []
    real_make, real_check = actions.make_password, actions.check_password
    monkeypatch.setattr(actions, "make_password", lambda *a, **k: hashed.append("make") or real_make(*a, **k))
    monkeypatch.setattr(actions, "check_password", lambda *a, **k: hashed.append("check") or real_check(*a, **k))
    log_in(Client(), "100000018", "wrong-password")
    log_in(Client(), with_password.account_number, "wrong-password")
    assert hashed == ["make", "check"]


def test_a_closed_subscriber_still_signs_in_to_see_and_pay_the_debt(with_password, admin):
    do_close_subscriber(with_password, reason="moved away", acting_user=admin)
    assert log_in(Client(), with_password.account_number).status_code == 302


# --- the lock-out -------------------------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_login_even_against_the_right_one(with_password, now):
    for _ in range(5):
        assert log_in(Client(), with_password.account_number, "wrong-password").status_code == 422
    response = log_in(Client(), with_password.account_number)
    assert response.status_code == 429
    assert "Try again in 15 minutes." in response.content.decode()
    assert PortalSession.objects.count() == 0
    with clock.travel_to(now + dt.timedelta(minutes=15, seconds=1)):
        assert log_in(Client(), with_password.account_number).status_code == 302


def test_spellings_of_one_subscriber_share_one_count(with_password):
    for login in ["+79161234567", "89161234567", "8 (916) 123-45-67", "9161234567", with_password.account_number]:
        log_in(Client(), login, "wrong-password")
    assert log_in(Client(), "+7 916 123-45-67").status_code == 429


def test_an_unknown_login_is_locked_out_with_the_same_words(subscriber, now):
    for _ in range(5):
        log_in(Client(), "100000018", "wrong-password")
    known = [log_in(Client(), subscriber.account_number, "x") for _ in range(5)][-1]
    unknown = log_in(Client(), "100000018", "wrong-password")
    assert unknown.status_code == 429
    assert known.status_code == 422  # its own count is only 5 now: the next one is refused
    assert log_in(Client(), subscriber.account_number, "x").status_code == 429
    assert "Too many failed attempts. Try again in 15 minutes." in unknown.content.decode()


def test_one_address_cycling_logins_is_locked_out(subscriber, stranger, settings):
    settings.ABONENT_PORTAL_MAX_FAILURES_PER_IP = 6
    actions.do_set_password(stranger, PASSWORD, reason="test")
    for n in range(6):
        log_in(Client(), f"guess-{n}", "wrong-password")
    assert log_in(Client(), stranger.account_number).status_code == 429
    # Another address is not held back by this one's guesses.
    assert log_in(Client(REMOTE_ADDR="203.0.113.9"), stranger.account_number).status_code == 302


def test_a_success_starts_the_count_afresh(with_password):
    for _ in range(4):
        log_in(Client(), with_password.account_number, "wrong-password")
    assert log_in(Client(), with_password.account_number).status_code == 302
    for _ in range(4):
        log_in(Client(), with_password.account_number, "wrong-password")
    assert log_in(Client(), with_password.account_number).status_code == 302


def test_a_refused_attempt_does_not_lengthen_the_lock_out(with_password, now):
    for _ in range(5):
        log_in(Client(), with_password.account_number, "wrong-password")
    with clock.travel_to(now + dt.timedelta(minutes=10)):
        for _ in range(3):
            assert log_in(Client(), with_password.account_number, "wrong-password").status_code == 429
    with clock.travel_to(now + dt.timedelta(minutes=15, seconds=1)):
        assert log_in(Client(), with_password.account_number).status_code == 302
    assert LoginAttempt.objects.filter(kind="password", succeeded=False).count() == 5


def test_a_forged_forwarded_address_is_not_trusted_and_never_a_500(with_password):
    client = Client(HTTP_X_FORWARDED_FOR="not-an-address", REMOTE_ADDR="garbage")
    assert log_in(client, with_password.account_number).status_code == 302
    assert LoginAttempt.objects.get(succeeded=True).ip_address is None


# --- sessions -----------------------------------------------------------------------------------------------------


def test_a_cookie_brought_along_is_never_the_signed_in_one(with_password, stranger):
    planted = "attacker-chosen-cookie-value"
    client = Client()
    client.cookies[COOKIE] = planted
    log_in(client, with_password.account_number)
    assert client.cookies[COOKIE].value not in ("", planted)
    assert client.cookies[COOKIE]["httponly"]
    assert client.cookies[COOKIE]["path"] == "/my/"


def test_signing_in_again_ends_the_session_the_browser_had(with_password, stranger):
    actions.do_set_password(stranger, PASSWORD, reason="test")
    client = signed_in(stranger)
    old = client.cookies[COOKIE].value
    response = client.post("/my/login/", {"login": with_password.account_number, "password": PASSWORD})
    assert response.status_code == 302
    assert client.cookies[COOKIE].value != old
    assert client.get("/my/").wsgi_request.subscriber == with_password
    assert PortalSession.objects.get(subscriber=stranger).revoked_at is not None


@pytest.mark.parametrize(
    ("target", "lands"),
    [
        ("/my/usage/?period=month", "/my/usage/?period=month"),
        ("https://evil.example/", "/my/"),
        ("//evil.example/my/", "/my/"),
        ("/\\evil.example", "/my/"),
        ("/my/../staff/", "/my/"),
        ("/my/%2e%2e/staff/", "/my/"),
        ("/staff/subscribers/", "/my/"),
        ("javascript:alert(1)", "/my/"),
        ("/my/login/", "/my/"),
        ("", "/my/"),
    ],
)
def test_next_leads_only_to_a_portal_page(with_password, target, lands):
    response = Client().post(f"/my/login/?next={target}", {"login": with_password.account_number, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == lands


def test_the_login_page_keeps_next_and_says_what_each_field_is_for(subscriber):
    response = Client().get("/my/login/?next=/my/pay/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="next" value="/my/pay/"' in html
    assert 'autocomplete="username"' in html
    assert 'autocomplete="current-password"' in html
    assert '<label class="form-label" for="id_login">' in html
    assert '<label class="form-label" for="id_password">' in html
    assert "<script>" not in html and " onclick=" not in html


def test_errors_are_announced_to_screen_readers(with_password):
    html = log_in(Client(), with_password.account_number, "wrong-password").content.decode()
    assert 'role="alert"' in html


def test_a_signed_in_subscriber_opening_the_login_page_goes_home(portal_client):
    response = portal_client.get("/my/login/")
    assert (response.status_code, response["Location"]) == (302, "/my/")


def test_logging_out_ends_the_session_and_the_cookie(portal_client, subscriber):
    response = portal_client.post("/my/logout/")
    assert (response.status_code, response["Location"]) == (302, "/my/login/")
    assert portal_client.cookies[COOKIE].value == ""
    assert PortalSession.objects.get(subscriber=subscriber).revoked_at is not None
    assert portal_client.get("/my/").status_code == 302


def test_logging_out_takes_a_post_not_a_link(portal_client, subscriber):
    assert portal_client.get("/my/logout/").status_code == 405
    assert PortalSession.objects.get(subscriber=subscriber).revoked_at is None


def test_a_csrf_less_login_post_is_refused(with_password):
    client = Client(enforce_csrf_checks=True)
    response = log_in(client, with_password.account_number)
    assert response.status_code == 403
    assert PortalSession.objects.count() == 0
