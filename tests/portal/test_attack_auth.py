"""Attack review of the portal's login and sessions (issue 15): each test shows a way the login tells a stranger
which accounts exist, lets a session outlive the password change meant to end it, lets one machine past its
allowances, or leaves a code readable; each fails on the code as it stands."""

from __future__ import annotations

import contextlib
import json
import re
import threading

import pytest
from django.contrib.auth.hashers import check_password
from django.core import mail
from django.db import connections
from django.test import Client, RequestFactory

from abonent.notifications import delivery
from abonent.notifications.models import Message, MessageStatus
from abonent.portal import actions
from abonent.portal.models import LoginAttempt, PortalAccount, SessionKind
from abonent.portal.sessions import open_session
from abonent.subscribers.actions import do_add_contact

from .conftest import PortalApi

PASSWORD = "correct-horse-42"
NEW_PASSWORD = "fresh-meadow-17"
# An account number that names nobody (the fixture's subscriber is 100000009).
UNKNOWN = "100000018"


def log_in(client: Client, login: str, password: str = PASSWORD):
    return client.post("/my/login/", {"login": login, "password": password})


def api_post(path: str, data: dict, **extra):
    return Client(**extra).post(path, json.dumps(data), content_type="application/json")


def masks(login: str, **extra) -> list[str]:
    """The masked phone and e-mail the code page shows for ``login``."""
    html = Client(**extra).post("/my/login/code/", {"login": login}).content.decode()
    return re.findall(r"(?:SMS|E-mail) to ([^<\n]+)", html)


# --- which accounts exist -----------------------------------------------------------------------------------------


def test_the_lock_out_tells_which_account_numbers_exist(subscriber):
    """Attack: five wrong passwords for "100 000 009" (spaces, as on a receipt), then one for "100000009". A real
    account's spellings share one count (sub:<id>) and the sixth is refused 429; an unknown number's spellings are
    counted apart ("login:100 000 018" vs "login:100000018") and the sixth is an ordinary 422. Harm: the lock-out,
    which docs/portal-login.md says reads the same whether or not the login exists, is an oracle for which account
    numbers are real (identify.py:81 keys an unknown login by its spelling, not by its digits)."""
    spaced = lambda number: f"{number[:3]} {number[3:6]} {number[6:]}"  # noqa: E731
    outcome = {}
    for number in (subscriber.account_number, UNKNOWN):
        for _ in range(5):
            log_in(Client(REMOTE_ADDR=f"198.51.100.{len(outcome) + 1}"), spaced(number), "wrong-password")
        outcome[number] = log_in(Client(REMOTE_ADDR=f"198.51.100.{len(outcome) + 1}"), number, "wrong-password")
    assert outcome[subscriber.account_number].status_code == 429
    assert outcome[UNKNOWN].status_code == outcome[subscriber.account_number].status_code


def test_the_code_page_masks_tell_which_account_numbers_exist(subscriber):
    """Attack: ask where a code would go for "100000018" and for "100-000-018". A real account shows the same masks
    for every spelling (its own phone); an unknown one gets decoys keyed by the typed spelling
    (codes._decoy uses Identified.key, "login:100-000-018"), so its two spellings show two different phones. Harm:
    comparing two spellings tells whether an account number exists — what the decoys are there to hide."""
    real = [masks(spelling) for spelling in (subscriber.account_number, "100-000-009")]
    assert real[0] == real[1]  # a real account: the same masks whatever the spelling
    unknown = [masks(spelling) for spelling in (UNKNOWN, "100-000-018")]
    assert unknown[0] == unknown[1]


def test_the_code_page_shows_a_real_e_mail_domain_no_decoy_can_show(subscriber, admin):
    """Attack: type account numbers into "send me a code" and read the e-mail mask. Decoys only ever end in one of
    seven public domains (codes.DECOY_DOMAINS) and start with letters from "abdegikmnoprstvz"; a real address is
    shown with its own domain (codes.mask_email, codes.py:96). Harm: "yu***@tver-zavod.ru" can only be a real
    subscriber — the page tells real logins from unknown ones, and leaks the employer's mail domain."""
    do_add_contact(subscriber, kind="email", value="yuri.ivanov@tver-zavod.ru", acting_user=admin)
    page = Client().post("/my/login/code/", {"login": subscriber.account_number}).content.decode()
    assert "tver-zavod" not in page


def test_the_code_page_shows_a_landline_no_decoy_can_show(make_subscriber):
    """Attack: type account numbers into "send me a code" and read the SMS mask. A decoy is always a Russian mobile,
    "+7 9xx ***-xx-xx" (codes._decoy, codes.py:110), but a contract whose phone is a landline or a foreign number
    is shown as it is: "+7 482 ***-34-56". Harm: any mask that is not "+7 9…" proves the account exists — the page
    is meant to look the same for real and unknown logins — and tells the subscriber's city."""
    landline = make_subscriber(last_name="Сидоров", phone="+74822123456")
    sms_mask = masks(landline.account_number)[0]
    assert "482" not in sms_mask, sms_mask


# --- a session that outlives the password change ------------------------------------------------------------------


def test_a_login_racing_a_password_change_keeps_a_session_the_change_should_have_ended(subscriber, monkeypatch):
    """Attack: the subscriber learns the password leaked and changes it ("every other session and app token ends").
    The thief keeps sending logins with the old password (successful logins are never rate-limited); one whose
    password check passed just before the change commits opens its session just after the change's revoke_all.
    Harm: the thief holds a live token after the change meant to end all of them (actions.do_log_in checks the
    password at actions.py:81, then opens the session at :84 without re-checking under a lock that the password is
    still the one checked)."""
    actions.do_set_password(subscriber, PASSWORD, reason="test")
    owner_session, _secret = open_session(subscriber, kind=SessionKind.API)
    real_check = actions.check_password
    raced = []

    def check_then_owner_changes_the_password(raw, encoded, *args, **kwargs):
        ok = real_check(raw, encoded, *args, **kwargs)
        if not raced:
            raced.append(True)
            # The subscriber's own change, between the thief's password check and the thief's new session.
            actions.do_change_password(owner_session, current_password=PASSWORD, new_password=NEW_PASSWORD)
        return ok

    monkeypatch.setattr(actions, "check_password", check_then_owner_changes_the_password)
    thief = api_post("/api/v1/my/login", {"login": subscriber.account_number, "password": PASSWORD})
    monkeypatch.setattr(actions, "check_password", real_check)
    assert raced, "the owner's change ran"
    token = thief.json().get("token") if thief.status_code == 200 else None
    if token is not None:
        me = PortalApi(headers={"Authorization": f"Bearer {token}"}).get("/api/v1/my/me")
        assert me.status_code == 401, "the thief's token outlived the password change"


def test_a_password_change_checked_against_the_old_password_undoes_the_owners_reset(subscriber, monkeypatch):
    """Attack: the thief who set the password keeps sending "change password" from his app token. The owner resets
    it with a code from their phone ("every other session and app token ends"). A change whose current password was
    checked just before the reset committed is stored just after it: do_change_password checks the current
    password at actions.py:253 outside any lock, and _store_password (:257) never looks again. Harm: the thief's
    password replaces the owner's fresh one and the owner's new session ends — the code reset cannot evict him."""
    actions.do_set_password(subscriber, PASSWORD, reason="test")
    _session, thief_token = open_session(subscriber, kind=SessionKind.API)
    assert api_post("/api/v1/my/codes", {"login": subscriber.account_number}).status_code == 202
    body = Message.objects.filter(subscriber=subscriber, event="login_code").latest("id").body
    code = re.search(r"(?<!\d)(\d{6})(?!\d)", body).group(1)
    real_check = actions.check_new_password
    raced = []

    def owner_resets_meanwhile(who, password):
        real_check(who, password)
        if not raced:
            raced.append(True)
            actions.do_reset_password(
                RequestFactory().post("/api/v1/my/password/reset"),
                login=subscriber.account_number,
                code=code,
                new_password="owner-reclaims-99",
                kind=SessionKind.API,
            )

    monkeypatch.setattr(actions, "check_new_password", owner_resets_meanwhile)
    thief = PortalApi(headers={"Authorization": f"Bearer {thief_token}"}).put(
        "/api/v1/my/password", {"current_password": PASSWORD, "new_password": "thief-keeps-it-77"}
    )
    assert raced, "the owner's reset ran"
    stored = PortalAccount.objects.get(subscriber=subscriber).password
    assert check_password("owner-reclaims-99", stored), f"the thief's change won ({thief.status_code})"
    assert thief.status_code != 204


# --- one machine past its allowances ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_parallel_code_requests_from_one_address_all_pass_its_hourly_allowance(settings, monkeypatch):
    """Attack: one address sends its code requests all at once. actions.do_request_code reads the address's count
    (lockout.sends_remaining, actions.py:113) and only afterwards writes its own row (record_send, :117) — unlike the
    password lock-out, which writes first. Harm: a burst gets any number of code requests (SMS to every subscriber,
    paid by the provider) or masked-phone lookups past ABONENT_PORTAL_MAX_FAILURES_PER_IP."""
    settings.ABONENT_PORTAL_MAX_FAILURES_PER_IP = 3
    burst = 6
    barrier = threading.Barrier(burst)
    real_identify = actions.identify

    def identify_when_all_have_been_let_in(raw):
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)
        return real_identify(raw)

    monkeypatch.setattr(actions, "identify", identify_when_all_have_been_let_in)
    statuses, errors = [], []

    def ask(n):
        try:
            response = api_post(
                "/api/v1/my/codes", {"login": f"10000{n:04d}", "channel": "sms"}, REMOTE_ADDR="203.0.113.50"
            )
            statuses.append(response.status_code)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(burst)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert statuses.count(202) <= 3
    assert LoginAttempt.objects.filter(ip_address="203.0.113.50", kind="send").count() <= 3


def test_one_ipv6_network_rotating_its_addresses_is_never_held_back(subscriber, settings):
    """Attack: a home IPv6 connection gets a whole /64; every request comes from another address in it. The
    per-address allowances (lockout.py: failures, sends and lookups are counted by the exact address) never fill.
    Harm: one machine guesses passwords across every account, texts every subscriber a code and collects every
    masked phone without ever meeting ABONENT_PORTAL_MAX_FAILURES_PER_IP."""
    settings.ABONENT_PORTAL_MAX_FAILURES_PER_IP = 3
    answers = [
        api_post("/api/v1/my/codes", {"login": f"10000{n:04d}"}, REMOTE_ADDR=f"2001:db8:7:9::{n + 1:x}").status_code
        for n in range(6)
    ]
    assert 429 in answers, answers


# --- the code readable where it should not be ---------------------------------------------------------------------


def test_a_delivered_login_code_stays_readable_in_the_outbox_table(subscriber, admin, settings):
    """Attack: read the database (a backup, a read replica, a reporting user) — docs/portal-login.md says only an
    HMAC of the code is kept "so a copy of the database alone cannot be searched for the code". Harm: the outbox row
    keeps the whole text with the code in clear (queueing renders {code} into Message.body), even after the message
    went out; whoever reads notifications_message within the code's 10 minutes sets the subscriber's password."""
    settings.ABONENT_QUIET_HOURS = ""
    do_add_contact(subscriber, kind="email", value="ivanov@example.ru", acting_user=admin)
    assert Client().post("/my/login/code/send/", {"login": subscriber.account_number, "channel": "email"}).status_code
    delivery.send_due(channel="email")
    message = Message.objects.get(subscriber=subscriber, event="login_code")
    assert message.status == MessageStatus.SENT
    (code,) = re.findall(r"(?<!\d)(\d{6})(?!\d)", mail.outbox[-1].body)
    assert code not in message.body and code not in message.subject


# --- the demo's published password ---------------------------------------------------------------------------------


def test_the_demo_gives_a_real_subscriber_the_published_password_in_production(
    subscriber, stranger, settings, monkeypatch
):
    """Attack: `abonent demo` run with ABONENT_ENV=production against the real database (a wrong shell, an old
    alias). Nothing refuses: portal/seeding.py gives the subscriber with the phone +7 916 123-45-67 and the first
    subscriber in the table the password "portal-demo-2026", published in docs/portal-login.md and the banner, and
    resets it if the owner changed it. Harm: anyone logs in to real customers' accounts with a published password."""
    from django.core.management import call_command

    from abonent.core.management.commands import demo
    from abonent.portal.seeding import DEMO_PASSWORD

    settings.ENV = "production"

    class Stop(Exception):
        pass

    class NoChild:
        def __init__(self, *args, **kwargs):
            self.name, self.process, self.restarts, self.required = "x", None, 0, False

        def start(self):
            pass

        def stop(self, *args):
            pass

    def no_sleep(_seconds):
        raise Stop

    monkeypatch.setattr(demo, "Child", NoChild)
    monkeypatch.setattr(demo.time, "sleep", no_sleep)
    monkeypatch.setattr(demo.signal, "signal", lambda *a: None)
    with contextlib.suppress(Exception):  # a refusal is what this test wants
        call_command("demo", "--subscribers", "0", "--no-worker", "--no-radius")
    for customer in (subscriber, stranger):
        response = log_in(Client(), customer.account_number, DEMO_PASSWORD)
        assert response.status_code != 302, f"{customer.account_number} opens with the published demo password"
