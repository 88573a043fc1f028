"""The portal's frame: a session opens /my/, nothing else does; tokens and cookies are not interchangeable;
a staff session or token opens nothing of it."""

from __future__ import annotations

import datetime as dt

from django.test import Client

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.portal.models import PortalSession
from abonent.portal.sessions import COOKIE, revoke_all

from .conftest import TODAY, api_of, signed_in


def test_a_page_without_a_session_sends_to_the_login(subscriber):
    response = Client().get("/my/usage/?period=month")
    assert response.status_code == 302
    assert response["Location"] == "/my/login/?next=%2Fmy%2Fusage%2F%3Fperiod%3Dmonth"


def test_a_session_opens_the_portal_and_names_the_subscriber(portal_client, subscriber):
    response = portal_client.get("/my/")
    assert response.status_code == 200
    assert response.wsgi_request.subscriber == subscriber
    assert response["Cache-Control"] == "no-store"


def test_a_staff_session_is_not_a_portal_session(operator_client, subscriber):
    assert operator_client.get("/my/").status_code == 302


def test_an_app_token_is_not_a_cookie_and_a_cookie_not_a_token(subscriber):
    token_client = api_of(subscriber)
    token = token_client.defaults["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    browser = Client()
    browser.cookies[COOKIE] = token
    assert browser.get("/my/").status_code == 302


def test_a_staff_token_opens_nothing_under_my(api_client, subscriber):
    assert api_client.get("/api/v1/my/me").status_code == 401


def test_a_subscriber_token_opens_no_staff_endpoint(subscriber):
    assert api_of(subscriber).get(f"/api/v1/subscribers/{subscriber.pk}").status_code == 401


def test_an_idle_session_ends(subscriber, settings):
    settings.ABONENT_PORTAL_SESSION_IDLE_SECONDS = 3600
    with clock.travel_to(TODAY):
        client = signed_in(subscriber)
    with clock.travel_to(TODAY + dt.timedelta(minutes=59)):
        assert client.get("/my/").status_code == 200
    with clock.travel_to(TODAY + dt.timedelta(minutes=59 + 61)):
        assert client.get("/my/").status_code == 302


def test_log_out_everywhere_ends_cookies_and_tokens_and_is_audited(subscriber, stranger):
    browser, app, theirs = signed_in(subscriber), api_of(subscriber), signed_in(stranger)
    assert revoke_all(subscriber, reason="test") == 2
    assert browser.get("/my/").status_code == 302
    assert app.get("/api/v1/my/me").status_code == 401
    assert theirs.get("/my/").status_code == 200
    assert PortalSession.objects.filter(subscriber=stranger, revoked_at__isnull=True).count() == 1
    assert AuditEvent.objects.filter(action="portal.sessions_revoked", subscriber_id=subscriber.pk).count() == 1


def test_the_menu_marks_the_section_of_a_deeper_page(portal_client):
    """/my/pay/receipts/ is under Pay, /my/security/ under Profile: one menu item is current, in both menus."""
    html = portal_client.get("/my/pay/receipts/").content.decode()
    assert 'active" aria-current="page" href="/my/pay/"' in html
    assert '<a href="/my/pay/" aria-current="page" class="active">' in html  # the phone's tab bar
    html = portal_client.get("/my/security/").content.decode()
    assert 'active" aria-current="page" href="/my/profile/"' in html
