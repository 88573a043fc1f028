"""The security page (change the password, the live sessions, end one, log out everywhere), the staff card's
"Portal" panel with its two audited buttons, and the demo's portal passwords."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.test import Client

from abonent.core.models import AuditEvent
from abonent.core.seeding import SeedContext
from abonent.notifications.models import Message
from abonent.portal import actions
from abonent.portal.models import OneTimeCode, PortalAccount, PortalSession, SessionKind
from abonent.portal.seeding import DEMO_PASSWORD, seed_portal
from abonent.portal.sessions import COOKIE
from abonent.staff.permissions import Role

from .conftest import api_of, signed_in

PASSWORD = "correct-horse-42"
NEW_PASSWORD = "fresh-meadow-17"


@pytest.fixture
def with_password(subscriber):
    actions.do_set_password(subscriber, PASSWORD, reason="test")
    return subscriber


def browser_of(subscriber, user_agent: str) -> Client:
    client = Client(HTTP_USER_AGENT=user_agent)
    client.post("/my/login/", {"login": subscriber.account_number, "password": PASSWORD})
    return client


ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
)
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


# --- the security page --------------------------------------------------------------------------------------------


def test_the_security_page_lists_live_sessions_and_marks_this_one(with_password, stranger):
    phone, desktop = browser_of(with_password, ANDROID), browser_of(with_password, WINDOWS)
    signed_in(stranger)
    response = phone.get("/my/security/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Chrome, Android" in html and "Firefox, Windows" in html
    assert html.count("this device") == 1
    assert html.count('data-session="') == 2
    assert desktop.get("/my/security/").content.decode().count("this device") == 1


def test_the_security_page_is_closed_to_strangers(subscriber):
    response = Client().get("/my/security/")
    assert (response.status_code, response["Location"]) == (302, "/my/login/?next=%2Fmy%2Fsecurity%2F")


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(with_password):
    here, elsewhere, app = browser_of(with_password, ANDROID), browser_of(with_password, WINDOWS), api_of(with_password)
    wrong = here.post("/my/security/password/", {"current_password": "not-it-at-all", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 422
    assert "The current password is wrong." in wrong.content.decode()
    assert elsewhere.get("/my/").status_code == 200

    weak = here.post("/my/security/password/", {"current_password": PASSWORD, "new_password": "qwerty"})
    assert weak.status_code == 422
    assert elsewhere.get("/my/").status_code == 200

    done = here.post("/my/security/password/", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert (done.status_code, done["Location"]) == (302, "/my/security/")
    assert here.get("/my/").status_code == 200
    assert elsewhere.get("/my/").status_code == 302
    assert app.get("/api/v1/my/me").status_code == 401
    assert AuditEvent.objects.filter(action="portal.password_changed", subscriber_id=with_password.pk).count() == 1
    assert (
        Client().post("/my/login/", {"login": with_password.account_number, "password": NEW_PASSWORD}).status_code
        == 302
    )


def test_guessing_the_current_password_counts_toward_the_lock_out(with_password):
    here = browser_of(with_password, ANDROID)
    stored = PortalAccount.objects.get(subscriber=with_password).password
    for _ in range(5):
        here.post("/my/security/password/", {"current_password": "guess-guess-1", "new_password": NEW_PASSWORD})
    response = here.post("/my/security/password/", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 429
    assert PortalAccount.objects.get(subscriber=with_password).password == stored


def test_ending_another_session_of_mine(with_password):
    here, elsewhere = browser_of(with_password, ANDROID), browser_of(with_password, WINDOWS)
    other = PortalSession.objects.get(user_agent=WINDOWS)
    response = here.post(f"/my/security/sessions/{other.pk}/end/")
    assert (response.status_code, response["Location"]) == (302, "/my/security/")
    assert elsewhere.get("/my/").status_code == 302
    assert here.get("/my/").status_code == 200


def test_ending_this_session_logs_out_here(with_password):
    here = browser_of(with_password, ANDROID)
    mine = PortalSession.objects.get(user_agent=ANDROID)
    response = here.post(f"/my/security/sessions/{mine.pk}/end/")
    assert response["Location"] == "/my/login/"
    assert here.cookies[COOKIE].value == ""


def test_another_subscribers_session_id_is_404_whatever_the_method(with_password, stranger):
    here = browser_of(with_password, ANDROID)
    theirs = signed_in(stranger)
    their_id = PortalSession.objects.get(subscriber=stranger).pk
    for method in (here.get, here.post, here.put, here.delete):
        assert method(f"/my/security/sessions/{their_id}/end/").status_code == 404
    assert theirs.get("/my/").status_code == 200
    assert here.post("/my/security/sessions/999999/end/").status_code == 404


def test_log_out_everywhere_from_the_page(with_password, stranger):
    here, elsewhere, app = browser_of(with_password, ANDROID), browser_of(with_password, WINDOWS), api_of(with_password)
    theirs = signed_in(stranger)
    response = here.post("/my/security/logout-everywhere/")
    assert (response.status_code, response["Location"]) == (302, "/my/login/")
    for client in (here, elsewhere):
        assert client.get("/my/").status_code == 302
    assert app.get("/api/v1/my/me").status_code == 401
    assert theirs.get("/my/").status_code == 200


def test_the_security_page_labels_its_fields_for_password_managers(portal_client):
    html = portal_client.get("/my/security/").content.decode()
    assert 'autocomplete="current-password"' in html
    assert 'autocomplete="new-password"' in html
    assert '<label class="form-label" for="id_current_password">' in html
    assert 'data-confirm="Log out on every device, this one included?"' in html


# --- the staff card's panel ---------------------------------------------------------------------------------------


def test_the_card_shows_the_portal_panel(with_password, operator_client):
    signed_in(with_password)
    api_of(with_password)
    html = operator_client.get(f"/staff/subscribers/{with_password.pk}/").content.decode()
    assert 'id="panel-portal"' in html
    assert "password set" in html
    assert 'data-testid="portal-live-sessions">2<' in html
    assert "Send a login code by SMS" in html and "End all portal sessions" in html


def test_support_sees_the_panel_without_its_buttons(subscriber, make_staff):
    client = Client()
    client.force_login(make_staff(Role.SUPPORT))
    html = client.get(f"/staff/subscribers/{subscriber.pk}/").content.decode()
    assert "no password yet" in html
    assert "Send a login code by SMS" not in html
    assert client.post(f"/staff/portal/subscribers/{subscriber.pk}/send-code/").status_code == 403
    assert client.post(f"/staff/portal/subscribers/{subscriber.pk}/end-sessions/").status_code == 403
    assert Message.objects.count() == 0


def test_staff_send_a_login_code_by_sms_audited(subscriber, operator_client, operator):
    response = operator_client.post(f"/staff/portal/subscribers/{subscriber.pk}/send-code/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "A login code has been sent by SMS." in response.content.decode()
    message = Message.objects.get(subscriber=subscriber, event="login_code")
    assert (message.channel, message.address) == ("sms", "+79161234567")
    event = AuditEvent.objects.get(action="portal.code_sent")
    assert (event.actor, event.subscriber_id) == (operator, subscriber.pk)
    again = operator_client.post(f"/staff/portal/subscribers/{subscriber.pk}/send-code/", HTTP_HX_REQUEST="true")
    assert again.status_code == 422
    assert "a code went out less than a minute ago" in again.content.decode()
    assert OneTimeCode.objects.count() == 1
    assert AuditEvent.objects.filter(action="portal.code_sent").count() == 1


def test_staff_cannot_text_a_subscriber_without_a_phone(make_subscriber, operator_client):
    mute = make_subscriber(phone="", last_name="Сидоров")
    response = operator_client.post(f"/staff/portal/subscribers/{mute.pk}/send-code/")
    assert response.status_code == 302
    assert Message.objects.count() == 0 and OneTimeCode.objects.count() == 0


def test_staff_end_all_portal_sessions_audited(with_password, stranger, operator_client, operator):
    browser, app, theirs = signed_in(with_password), api_of(with_password), signed_in(stranger)
    response = operator_client.post(f"/staff/portal/subscribers/{with_password.pk}/end-sessions/")
    assert response.status_code == 302
    assert response["Location"] == f"/staff/subscribers/{with_password.pk}/#panel-portal"
    assert browser.get("/my/").status_code == 302
    assert app.get("/api/v1/my/me").status_code == 401
    assert theirs.get("/my/").status_code == 200
    event = AuditEvent.objects.get(action="portal.sessions_revoked", actor=operator)
    assert (event.subscriber_id, event.after) == (with_password.pk, {"sessions": 2})


def test_staff_buttons_take_a_post(subscriber, operator_client):
    assert operator_client.get(f"/staff/portal/subscribers/{subscriber.pk}/send-code/").status_code == 405
    assert Message.objects.count() == 0


def test_staff_of_another_branch_cannot_reach_the_subscriber(subscriber, make_staff, other_branch):
    client = Client()
    client.force_login(make_staff(Role.OPERATOR, branches=[other_branch]))
    assert client.post(f"/staff/portal/subscribers/{subscriber.pk}/send-code/").status_code == 404
    assert Message.objects.count() == 0


# --- the demo -----------------------------------------------------------------------------------------------------


def test_the_demo_seed_gives_the_first_subscribers_a_portal_password(subscriber, stranger):
    ctx = SeedContext(subscribers=0, demo=True, out=io.StringIO())
    ctx.facts["featured_phone"] = "+79161110000"  # the stranger plays the featured subscriber here
    seed_portal(ctx)
    assert ctx.facts["portal_logins"] == [
        (stranger.account_number, DEMO_PASSWORD, stranger.display_name),
        (subscriber.account_number, DEMO_PASSWORD, subscriber.display_name),
    ]
    response = Client().post("/my/login/", {"login": stranger.account_number, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    seed_portal(ctx)  # again, as the demo does on every start: nothing changes, the session survives
    assert PortalSession.objects.filter(revoked_at__isnull=True, kind=SessionKind.WEB).count() == 1


def test_the_demo_banner_prints_the_portal_login(subscriber, stranger):
    from abonent.core.management.commands.demo import Command

    ctx = SeedContext(subscribers=0, demo=True, out=io.StringIO())
    seed_portal(ctx)
    out = io.StringIO()
    command = Command(stdout=out)
    command._banner("127.0.0.1", 8000, ctx, None)
    text = out.getvalue()
    assert "Portal          http://127.0.0.1:8000/my/" in text
    assert "Portal logins at /my/ (account number / password):" in text
    assert f"{subscriber.account_number} {DEMO_PASSWORD}" in " ".join(text.split())


def test_the_panel_costs_one_query_and_counts_only_live_sessions(with_password, settings, now):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from abonent.core import clock
    from abonent.portal.auth_data import portal_summary

    settings.ABONENT_PORTAL_SESSION_IDLE_SECONDS = 3600
    idle = signed_in(with_password)
    with clock.travel_to(now + dt.timedelta(hours=2)):
        signed_in(with_password)
        api_of(with_password)
        actions.do_log_out(PortalSession.objects.filter(kind=SessionKind.API).get())
        api_of(with_password)
        with CaptureQueriesContext(connection) as queries:
            summary = portal_summary(with_password.pk)
        assert len(queries) == 1
        assert idle.get("/my/").status_code == 302
    assert (summary.has_password, summary.live_sessions, summary.has_phone) == (True, 2, True)
