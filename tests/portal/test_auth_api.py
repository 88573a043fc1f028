"""The app's login under ``/api/v1/my/``: a token for a login and password or for a one-time code, the same
lock-out as the page, 202 for every code request, the token's sessions, logging out."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.test import Client

from abonent.core import clock
from abonent.notifications.models import Message
from abonent.portal import actions
from abonent.portal.models import PortalSession, SessionKind

from .conftest import PortalApi, api_of, signed_in

PASSWORD = "correct-horse-42"
NEW_PASSWORD = "fresh-meadow-17"


@pytest.fixture
def with_password(subscriber):
    actions.do_set_password(subscriber, PASSWORD, reason="test")
    return subscriber


def post(path: str, data: dict, **extra):
    return Client().post(path, json.dumps(data), content_type="application/json", **extra)


def sent_code(subscriber) -> str:
    body = Message.objects.filter(subscriber=subscriber, event="login_code").latest("id").body
    return re.search(r"(?<!\d)(\d{6})(?!\d)", body).group(1)


def test_a_login_and_password_give_a_token_that_opens_me(with_password, now):
    response = post("/api/v1/my/login", {"login": "8 916 123-45-67", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token"].startswith("abm_")
    assert dt.datetime.fromisoformat(body["expires_at"]) == now + dt.timedelta(days=180)
    me = PortalApi(headers={"Authorization": f"Bearer {body['token']}"}).get("/api/v1/my/me")
    assert me.status_code == 200
    assert me.json()["account_number"] == with_password.account_number
    assert PortalSession.objects.get(subscriber=with_password).kind == SessionKind.API


def test_a_token_is_not_a_browser_cookie(with_password):
    token = post("/api/v1/my/login", {"login": with_password.account_number, "password": PASSWORD}).json()["token"]
    browser = Client()
    browser.cookies["abonent_my"] = token
    assert browser.get("/my/").status_code == 302


def test_a_wrong_token_is_401(with_password):
    for header in ["Bearer abm_not-a-token", "Bearer ", "Basic abc", "Bearer " + "x" * 500]:
        response = Client(headers={"Authorization": header}).get("/api/v1/my/me")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"


def test_wrong_credentials_are_one_code_whatever_was_wrong(with_password):
    wrong = post("/api/v1/my/login", {"login": with_password.account_number, "password": "nope-nope-nope"})
    unknown = post("/api/v1/my/login", {"login": "100000018", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 422
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    assert PortalSession.objects.count() == 0


def test_the_api_login_shares_the_lock_out_with_the_page(with_password, now):
    for _ in range(3):
        Client().post("/my/login/", {"login": with_password.account_number, "password": "wrong-one"})
    for _ in range(2):
        post("/api/v1/my/login", {"login": with_password.account_number, "password": "wrong-one"})
    response = post("/api/v1/my/login", {"login": with_password.account_number, "password": PASSWORD})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "locked_out"
    assert response["Retry-After"] == "900"
    assert PortalSession.objects.count() == 0


def test_absurd_bodies_are_422_not_500(subscriber):
    for body in [{}, {"login": "x"}, {"login": "", "password": "x"}, {"login": "x" * 5000, "password": "x"}]:
        assert post("/api/v1/my/login", body).status_code == 422
    assert Client().post("/api/v1/my/login", "{not json", content_type="application/json").status_code == 400
    assert post("/api/v1/my/codes", {"login": "x", "channel": "pigeon"}).status_code == 422


def test_asking_for_a_code_is_202_for_every_login(subscriber):
    real = post("/api/v1/my/codes", {"login": subscriber.account_number, "channel": "sms"})
    unknown = post("/api/v1/my/codes", {"login": "100000018", "channel": "sms"})
    no_email = post("/api/v1/my/codes", {"login": subscriber.account_number, "channel": "email"})
    assert real.status_code == unknown.status_code == no_email.status_code == 202
    assert real.json() == unknown.json() == no_email.json()
    assert Message.objects.filter(event="login_code").count() == 1


def test_a_code_and_a_new_password_give_a_token_and_end_the_other_sessions(subscriber):
    browser = signed_in(subscriber)
    post("/api/v1/my/codes", {"login": subscriber.account_number})
    response = post(
        "/api/v1/my/password/reset",
        {"login": subscriber.account_number, "code": sent_code(subscriber), "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 200
    token = response.json()["token"]
    assert PortalApi(headers={"Authorization": f"Bearer {token}"}).get("/api/v1/my/me").status_code == 200
    assert browser.get("/my/").status_code == 302
    assert post("/api/v1/my/login", {"login": subscriber.account_number, "password": NEW_PASSWORD}).status_code == 200


@pytest.mark.parametrize(
    ("case", "code"),
    [("wrong", "code_invalid"), ("expired", "code_expired"), ("used", "code_used"), ("weak", "password_too_weak")],
)
def test_a_reset_refused_says_why_with_a_stable_code(subscriber, now, case, code):
    post("/api/v1/my/codes", {"login": subscriber.account_number})
    right = sent_code(subscriber)
    data = {"login": subscriber.account_number, "code": right, "new_password": NEW_PASSWORD}
    if case == "wrong":
        data["code"] = f"{(int(right) + 1) % 1_000_000:06d}"
    if case == "used":
        assert post("/api/v1/my/password/reset", data).status_code == 200
    if case == "weak":
        data["new_password"] = "12345"
    moment = now + dt.timedelta(minutes=11) if case == "expired" else now
    with clock.travel_to(moment):
        response = post("/api/v1/my/password/reset", data)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    if case == "weak":
        assert response.json()["error"]["fields"][0] == {
            "field": "new_password",
            "code": "password_too_short",
            "message": "This password is too short. It must contain at least 10 characters.",
        }


def test_the_sessions_list_marks_this_token_and_hides_others_subscribers(subscriber, stranger):
    signed_in(subscriber)
    signed_in(stranger)
    app = api_of(subscriber)
    rows = app.get("/api/v1/my/sessions").json()
    assert sorted((r["kind"], r["current"]) for r in rows) == [("api", True), ("web", False)]
    own_ids = set(PortalSession.objects.filter(subscriber=subscriber).values_list("pk", flat=True))
    assert {r["id"] for r in rows} == own_ids


def test_ending_one_session_by_id_and_another_subscribers_id_is_404(subscriber, stranger):
    browser, app = signed_in(subscriber), api_of(subscriber)
    theirs = signed_in(stranger)
    their_id = PortalSession.objects.get(subscriber=stranger).pk
    assert app.delete(f"/api/v1/my/sessions/{their_id}").status_code == 404
    assert theirs.get("/my/").status_code == 200
    mine = PortalSession.objects.get(subscriber=subscriber, kind=SessionKind.WEB).pk
    assert app.delete(f"/api/v1/my/sessions/{mine}").status_code == 204
    assert browser.get("/my/").status_code == 302
    assert app.delete(f"/api/v1/my/sessions/{mine}").status_code == 404
    assert app.delete("/api/v1/my/sessions/99999999999999999999").status_code in (404, 422)


def test_logout_ends_this_token_only(subscriber):
    browser, app = signed_in(subscriber), api_of(subscriber)
    assert app.post("/api/v1/my/logout").status_code == 204
    assert app.get("/api/v1/my/me").status_code == 401
    assert browser.get("/my/").status_code == 200


def test_logout_everywhere_ends_every_session_and_token(subscriber, stranger):
    browser, other_app, app, theirs = signed_in(subscriber), api_of(subscriber), api_of(subscriber), api_of(stranger)
    response = app.post("/api/v1/my/logout-everywhere")
    assert response.json() == {"sessions": 3}
    for client, path in [(browser, "/my/"), (other_app, "/api/v1/my/me"), (app, "/api/v1/my/me")]:
        assert client.get(path).status_code in (302, 401)
    assert theirs.get("/api/v1/my/me").status_code == 200


def test_changing_the_password_keeps_this_token_and_ends_the_rest(with_password):
    browser, app = signed_in(with_password), api_of(with_password)
    wrong = app.put("/api/v1/my/password", {"current_password": "not-it-at-all", "new_password": NEW_PASSWORD})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "password_wrong")
    assert browser.get("/my/").status_code == 200
    response = app.put("/api/v1/my/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 204
    assert app.get("/api/v1/my/me").status_code == 200
    assert browser.get("/my/").status_code == 302
    assert (
        post("/api/v1/my/login", {"login": with_password.account_number, "password": NEW_PASSWORD}).status_code == 200
    )


def test_the_routes_that_hand_out_tokens_need_none_and_the_rest_need_one(subscriber):
    for path in ["/api/v1/my/sessions", "/api/v1/my/me"]:
        assert Client().get(path).status_code == 401
    for path in ["/api/v1/my/logout", "/api/v1/my/logout-everywhere"]:
        assert post(path, {}).status_code == 401
    assert Client().put("/api/v1/my/password", "{}", content_type="application/json").status_code == 401


def test_the_schema_documents_the_login_routes(client):
    schema = client.get("/api/v1/openapi.json").json()
    paths = schema["paths"]
    for path in [
        "/api/v1/my/login",
        "/api/v1/my/codes",
        "/api/v1/my/password/reset",
        "/api/v1/my/password",
        "/api/v1/my/logout",
        "/api/v1/my/logout-everywhere",
        "/api/v1/my/sessions",
        "/api/v1/my/sessions/{session_id}",
    ]:
        assert path in paths
    assert "security" not in paths["/api/v1/my/login"]["post"]
    assert paths["/api/v1/my/sessions"]["get"]["security"]
