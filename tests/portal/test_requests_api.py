"""Requests in the portal's API: the token's own tickets only, the public thread only, limits as 422/429/409, a
retry answered once, another subscriber's id a 404 with nothing written."""

from __future__ import annotations

import datetime as dt

import pytest

from abonent.core import clock
from abonent.helpdesk import actions
from abonent.helpdesk.models import Ticket, TicketComment, TicketSource
from abonent.staff.permissions import Role

from .conftest import TODAY, api_of

pytestmark = pytest.mark.usefixtures("now")

BODY = {"category": "slow_speed", "subject": "Медленно", "text": "Вечером 5 Мбит/с вместо 100."}


def _open(subscriber, subject="Нет интернета"):
    data = actions.TicketData(category="no_connection", subject=subject, text="Не работает")
    return actions.do_open_ticket(subscriber, data, source=TicketSource.PORTAL, acting_user=None)


def _codes(response) -> list:
    return [(f["field"], f["code"]) for f in response.json()["error"]["fields"]]


def test_a_request_is_opened_and_listed(portal_api, subscriber, stranger):
    _open(stranger, subject="Чужая")
    created = portal_api.post("/api/v1/my/requests", BODY)
    assert created.status_code == 201
    body = created.json()
    ticket = Ticket.objects.get(subscriber=subscriber)
    assert (body["id"], body["number"], body["status"], body["status_label"]) == (ticket.pk, 2, "new", "Received")
    assert (ticket.source, body["category"], body["can_reopen"]) == ("api", "slow_speed", False)
    assert [(c["author"], c["text"]) for c in body["comments"]] == [("subscriber", "Вечером 5 Мбит/с вместо 100.")]
    listed = portal_api.get("/api/v1/my/requests").json()["items"]
    assert [item["id"] for item in listed] == [ticket.pk]


def test_a_retry_with_the_same_key_is_answered_once(portal_api, subscriber):
    first = portal_api.post("/api/v1/my/requests", BODY, key="req-1")
    again = portal_api.post("/api/v1/my/requests", BODY, key="req-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    other = portal_api.post("/api/v1/my/requests", {**BODY, "subject": "Другое"}, key="req-1")
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_key_reused")
    assert Ticket.objects.filter(subscriber=subscriber).count() == 1


def test_the_thread_has_no_internal_notes(portal_api, subscriber, make_staff):
    support = make_staff(Role.SUPPORT)
    ticket = _open(subscriber)
    actions.do_comment_ticket(ticket, text="ВНУТРЕННЕЕ: проверить долг", is_public=False, acting_user=support)
    actions.do_comment_ticket(ticket, text="Приедет мастер завтра.", acting_user=support)
    response = portal_api.get(f"/api/v1/my/requests/{ticket.pk}")
    assert response.status_code == 200
    assert [(c["author"], c["text"]) for c in response.json()["comments"]] == [
        ("subscriber", "Не работает"),
        ("staff", "Приедет мастер завтра."),
    ]
    assert "ВНУТРЕННЕЕ" not in response.content.decode()


def test_a_reply_and_closing_and_reopening(portal_api, subscriber):
    ticket = _open(subscriber)
    reply = portal_api.post(f"/api/v1/my/requests/{ticket.pk}/comments", {"text": "Жду"})
    assert (reply.status_code, reply.json()["author"], reply.json()["text"]) == (201, "subscriber", "Жду")
    closed = portal_api.post(f"/api/v1/my/requests/{ticket.pk}/close")
    assert (closed.status_code, closed.json()["status"], closed.json()["can_reopen"]) == (200, "closed", True)
    reopened = portal_api.post(f"/api/v1/my/requests/{ticket.pk}/reopen")
    assert (reopened.status_code, reopened.json()["status"]) == (200, "new")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**BODY, "text": "ы" * 4001}, [("text", "string_too_long")]),
        ({**BODY, "subject": "x" * 201}, [("subject", "string_too_long")]),
        ({**BODY, "text": "   "}, [("text", "required")]),
        ({**BODY, "category": "free_beer"}, [("category", "literal_error")]),
        ({**BODY, "category": "connection_request"}, [("address", "address_required")]),
        ({"category": "other"}, [("subject", "missing"), ("text", "missing")]),
    ],
)
def test_bad_input_is_a_422_with_the_field_and_writes_nothing(portal_api, body, expected):
    response = portal_api.post("/api/v1/my/requests", body)
    assert response.status_code == 422
    assert _codes(response) == expected
    assert Ticket.objects.count() == 0


def test_a_flood_is_a_429(portal_api, subscriber, settings):
    settings.ABONENT_HELPDESK_TICKETS_PER_DAY = 1
    assert portal_api.post("/api/v1/my/requests", BODY).status_code == 201
    response = portal_api.post("/api/v1/my/requests", {**BODY, "subject": "Ещё"})
    assert (response.status_code, response.json()["error"]["code"]) == (429, "too_many_tickets")
    assert Ticket.objects.filter(subscriber=subscriber).count() == 1


def test_a_reply_to_a_request_closed_long_ago_is_a_409(subscriber, settings):
    settings.ABONENT_HELPDESK_REOPEN_DAYS = 3
    ticket = _open(subscriber)
    actions.do_change_ticket_status(ticket, status="closed", acting_user=None)
    with clock.travel_to(TODAY + dt.timedelta(days=4)):
        api = api_of(subscriber)
        reply = api.post(f"/api/v1/my/requests/{ticket.pk}/comments", {"text": "Снова"})
        reopen = api.post(f"/api/v1/my/requests/{ticket.pk}/reopen")
    assert (reply.status_code, reply.json()["error"]["code"]) == (409, "ticket_closed")
    assert (reopen.status_code, reopen.json()["error"]["code"]) == (409, "reopen_expired")
    assert ticket.comments.count() == 1


def test_anothers_request_is_404_and_nothing_is_written(portal_api, stranger):
    theirs = _open(stranger)
    before = TicketComment.objects.count()
    for method, url, body in [
        ("get", f"/api/v1/my/requests/{theirs.pk}", None),
        ("post", f"/api/v1/my/requests/{theirs.pk}/comments", {"text": "Чужое"}),
        ("post", f"/api/v1/my/requests/{theirs.pk}/close", None),
        ("post", f"/api/v1/my/requests/{theirs.pk}/reopen", None),
        ("get", "/api/v1/my/requests/9223372036854775807", None),
    ]:
        response = getattr(portal_api, method)(url, body)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found"), url
    theirs.refresh_from_db()
    assert (theirs.status, TicketComment.objects.count()) == ("new", before)


def test_a_retried_reply_with_the_key_of_anothers_request_stays_404(portal_api, subscriber, stranger):
    theirs = _open(stranger)
    response = portal_api.post(f"/api/v1/my/requests/{theirs.pk}/comments", {"text": "Чужое"}, key="k1")
    again = portal_api.post(f"/api/v1/my/requests/{theirs.pk}/comments", {"text": "Чужое"}, key="k1")
    assert (response.status_code, again.status_code) == (404, 404)
    assert theirs.comments.count() == 1


def test_no_token_no_requests(client, subscriber):
    assert client.get("/api/v1/my/requests").status_code == 401
    assert client.post("/api/v1/my/requests", BODY, content_type="application/json").status_code == 401
    assert Ticket.objects.count() == 0
