"""The requests pages: the subscriber's own tickets, a new one, its public thread (never an internal note), a reply,
closing and reopening; another subscriber's ticket is a 404 on every route and nothing is written."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.helpdesk import actions
from abonent.helpdesk.models import Ticket, TicketComment, TicketSource
from abonent.portal.sessions import COOKIE
from abonent.staff.permissions import Role

from .conftest import TODAY, signed_in

pytestmark = pytest.mark.usefixtures("now")

FORM = {"category": "no_connection", "subject": "Нет интернета", "text": "С утра не работает, роутер мигает."}


@pytest.fixture
def support(make_staff):
    return make_staff(Role.SUPPORT, username="support")


def _open(subscriber, subject="Нет интернета", text="Не работает"):
    data = actions.TicketData(category="no_connection", subject=subject, text=text)
    return actions.do_open_ticket(subscriber, data, source=TicketSource.PORTAL, acting_user=None)


def _html(response) -> str:
    return response.content.decode()


def test_the_list_shows_my_requests_with_their_status_and_not_anyone_elses(portal_client, subscriber, stranger):
    mine = _open(subscriber, subject="Медленно грузит")
    _open(stranger, subject="Чужая заявка")
    page = portal_client.get("/my/requests/")
    html = _html(page)
    assert page.status_code == 200
    assert html.count('class="list-group-item request-row"') == 1
    assert f'data-request="{mine.number}"' in html and "Медленно грузит" in html
    assert 'data-status="new">Received</span>' in html
    assert "Чужая заявка" not in html
    assert page["Cache-Control"] == "no-store"


def test_a_new_request_is_opened_from_the_form_and_audited_as_the_subscriber(portal_client, subscriber):
    response = portal_client.post("/my/requests/", FORM)
    ticket = Ticket.objects.get(subscriber=subscriber)
    assert response.status_code == 302 and response["Location"] == f"/my/requests/{ticket.pk}/"
    assert (ticket.source, ticket.subject, ticket.priority, ticket.created_by) == (
        "portal",
        "Нет интернета",
        "normal",
        None,
    )
    assert ticket.comments.get().text == "С утра не работает, роутер мигает."
    event = AuditEvent.objects.get(action="ticket.opened")
    assert (event.actor_label, event.subscriber_id) == (f"subscriber:{subscriber.account_number}", subscriber.pk)
    page = portal_client.get(response["Location"])
    assert "Нет интернета" in _html(page) and f"Request #{ticket.number} is received" in _html(page)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"category": "connection_request"}, "address"),
        ({"text": "ы" * 4001}, "text"),
        ({"subject": "   "}, "subject"),
        ({"category": "free_beer"}, "category"),
    ],
)
def test_bad_input_shows_the_form_again_with_the_error_and_writes_nothing(portal_client, changes, field):
    response = portal_client.post("/my/requests/", {**FORM, **changes})
    html = _html(response)
    assert response.status_code == 422
    assert f'data-field="{field}"' in html and 'class="invalid-feedback d-block" role="alert"' in html
    assert 'aria-invalid="true"' in html
    assert (Ticket.objects.count(), TicketComment.objects.count()) == (0, 0)


def test_a_connection_request_keeps_its_address(portal_client, subscriber):
    form = {**FORM, "category": "connection_request", "subject": "Подключите дачу", "address": "Тверь, ул. Мира, 3"}
    assert portal_client.post("/my/requests/", form).status_code == 302
    assert Ticket.objects.get(subscriber=subscriber).address == "Тверь, ул. Мира, 3"


def test_a_flood_of_requests_is_refused_with_a_message(portal_client, subscriber, settings):
    settings.ABONENT_HELPDESK_TICKETS_PER_DAY = 2
    for i in range(2):
        assert portal_client.post("/my/requests/", {**FORM, "subject": f"Заявка {i}"}).status_code == 302
    response = portal_client.post("/my/requests/", {**FORM, "subject": "Заявка 3"})
    assert response.status_code == 422
    assert "You have opened 2 requests in the last 24 hours" in _html(response)
    assert Ticket.objects.filter(subscriber=subscriber).count() == 2


def test_a_double_submit_opens_one_request(portal_client, subscriber):
    first = portal_client.post("/my/requests/", FORM)
    second = portal_client.post("/my/requests/", FORM)
    assert first["Location"] == second["Location"]
    assert Ticket.objects.filter(subscriber=subscriber).count() == 1


def test_the_thread_shows_public_messages_and_never_an_internal_note(portal_client, subscriber, support):
    ticket = _open(subscriber)
    actions.do_comment_ticket(ticket, text="ВНУТРЕННЕЕ: должник, не спешить", is_public=False, acting_user=support)
    actions.do_comment_ticket(ticket, text="Проверяем линию, ждите звонка.", acting_user=support)
    html = _html(portal_client.get(f"/my/requests/{ticket.pk}/"))
    assert "ВНУТРЕННЕЕ" not in html and "должник" not in html
    assert html.count("data-comment=") == 2
    assert "Проверяем линию, ждите звонка." in html
    assert "Test support" not in html  # staff are "support", not named


def test_a_reply_takes_a_waiting_request_back_to_work(portal_client, subscriber, support):
    ticket = _open(subscriber)
    actions.do_change_ticket_status(ticket, status="waiting_subscriber", acting_user=support)
    response = portal_client.post(f"/my/requests/{ticket.pk}/", {"text": "Перезагрузил роутер — не помогло."})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "in_progress"
    assert ticket.comments.filter(author_kind="subscriber").count() == 2


def test_an_empty_or_too_long_reply_is_refused(portal_client, subscriber):
    ticket = _open(subscriber)
    for text in ("   ", "ы" * 4001):
        response = portal_client.post(f"/my/requests/{ticket.pk}/", {"text": text})
        assert response.status_code == 422
        assert 'aria-invalid="true"' in _html(response)
    assert ticket.comments.count() == 1


def test_close_then_reopen_within_the_window_but_not_after(portal_client, subscriber, settings):
    settings.ABONENT_HELPDESK_REOPEN_DAYS = 7
    ticket = _open(subscriber)
    assert portal_client.post(f"/my/requests/{ticket.pk}/close/").status_code == 302
    ticket.refresh_from_db()
    assert (ticket.status, ticket.closed_at) == ("closed", TODAY)
    page = _html(portal_client.get(f"/my/requests/{ticket.pk}/"))
    assert "Reopen the request" in page and "Reply and reopen the request" in page
    with clock.travel_to(TODAY + dt.timedelta(days=2)):
        client = signed_in(subscriber)
        client.post(f"/my/requests/{ticket.pk}/reopen/")
        ticket.refresh_from_db()
        assert ticket.status == "new"
        client.post(f"/my/requests/{ticket.pk}/close/")
    with clock.travel_to(TODAY + dt.timedelta(days=10)):
        client = signed_in(subscriber)
        response = client.post(f"/my/requests/{ticket.pk}/reopen/", follow=True)
        assert "closed too long ago to reopen" in _html(response)
        assert 'id="request-finished"' in _html(response)
        assert client.post(f"/my/requests/{ticket.pk}/", {"text": "Опять"}).status_code == 422
    ticket.refresh_from_db()
    assert (ticket.status, ticket.comments.count()) == ("closed", 1)


def test_anothers_request_is_404_on_every_route_and_nothing_is_written(portal_client, stranger):
    theirs = _open(stranger)
    before = (TicketComment.objects.count(), AuditEvent.objects.count())
    for method, url, data in [
        ("get", f"/my/requests/{theirs.pk}/", None),
        ("post", f"/my/requests/{theirs.pk}/", {"text": "Чужое"}),
        ("get", f"/my/requests/{theirs.pk}/close/", None),
        ("post", f"/my/requests/{theirs.pk}/close/", {}),
        ("post", f"/my/requests/{theirs.pk}/reopen/", {}),
        ("put", f"/my/requests/{theirs.pk}/", None),
        ("get", "/my/requests/999999999999999999999/", None),
    ]:
        assert getattr(portal_client, method)(url, data).status_code == 404, (method, url)
    theirs.refresh_from_db()
    assert theirs.status == "new"
    assert (TicketComment.objects.count(), AuditEvent.objects.count()) == before


def test_an_expired_session_writes_nothing(subscriber, settings):
    settings.ABONENT_PORTAL_SESSION_IDLE_SECONDS = 60
    client = signed_in(subscriber)
    with clock.travel_to(TODAY + dt.timedelta(minutes=5)):
        response = client.post("/my/requests/", FORM)
    assert response.status_code == 302 and response["Location"] == "/my/login/"
    assert Ticket.objects.count() == 0


def test_without_a_session_nothing_is_shown(subscriber):
    ticket = _open(subscriber)
    response = Client().get(f"/my/requests/{ticket.pk}/")
    assert response.status_code == 302 and response["Location"].startswith("/my/login/")
    client = Client()
    client.cookies[COOKIE] = "forged"
    assert client.post(f"/my/requests/{ticket.pk}/close/").status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "new"
