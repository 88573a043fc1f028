"""The console's helpdesk: the list with filters (branch-scoped), a ticket with its whole thread, a reply that tells
the subscriber and a note that does not, a status change, the card's "Requests" panel, and who may do what."""

import pytest

from abonent.helpdesk import actions
from abonent.helpdesk.models import Ticket, TicketComment
from abonent.notifications.models import Event, Message
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db


def _html(response) -> str:
    return response.content.decode()


def test_the_list_shows_open_tickets_and_filters(open_ticket, support, client_of, now):
    slow = open_ticket(subject="Медленно", category="slow_speed")
    money = open_ticket(subject="Двойное списание", category="billing")
    actions.do_change_ticket_status(money, status="resolved", acting_user=support)
    client = client_of(support)
    html = _html(client.get("/staff/helpdesk/"))
    assert html.count('class="ticket-row"') == 1 and f'data-ticket="{slow.number}"' in html
    assert 'data-status="new">New: <strong>1</strong>' in html
    assert 'data-status="resolved">Resolved: <strong>1</strong>' in html
    everything = _html(client.get("/staff/helpdesk/?status=all"))
    assert everything.count('class="ticket-row"') == 2
    assert _html(client.get("/staff/helpdesk/?status=all&category=billing")).count('class="ticket-row"') == 1
    assert _html(client.get(f"/staff/helpdesk/?status=all&q=%23{money.number}")).count('class="ticket-row"') == 1
    assert _html(client.get("/staff/helpdesk/?status=all&q=списание")).count('class="ticket-row"') == 1


def test_the_list_and_a_ticket_of_another_branch_are_hidden(open_ticket, make_staff, other_branch, client_of):
    ticket = open_ticket()
    elsewhere = client_of(make_staff(Role.SUPPORT, branches=[other_branch]))
    assert 'class="ticket-row"' not in _html(elsewhere.get("/staff/helpdesk/"))
    assert elsewhere.get(f"/staff/helpdesk/{ticket.pk}/").status_code == 404
    assert (
        elsewhere.post(f"/staff/helpdesk/{ticket.pk}/reply/", {"text": "x", "visibility": "public"}).status_code == 404
    )
    assert ticket.comments.count() == 1


def test_the_ticket_page_shows_internal_notes_to_staff(open_ticket, support, client_of):
    ticket = open_ticket()
    actions.do_comment_ticket(ticket, text="Проверить порт на коммутаторе", is_public=False, acting_user=support)
    html = _html(client_of(support).get(f"/staff/helpdesk/{ticket.pk}/"))
    assert "Проверить порт на коммутаторе" in html and "internal note" in html
    assert html.count("data-comment=") == 2


def test_a_public_reply_with_a_status_tells_the_subscriber_once(open_ticket, support, client_of):
    ticket = open_ticket()
    response = client_of(support).post(
        f"/staff/helpdesk/{ticket.pk}/reply/",
        {"text": "Авария на линии, чиним.", "visibility": "public", "status": "in_progress"},
    )
    assert response.status_code == 302 and response["Location"] == f"/staff/helpdesk/{ticket.pk}/"
    ticket.refresh_from_db()
    assert ticket.status == "in_progress"
    [sms] = Message.objects.filter(event=Event.TICKET_UPDATED)
    assert (sms.subscriber_id, sms.channel) == (ticket.subscriber_id, "sms")
    assert f"#{ticket.number}" in sms.body and "We are working on it" in sms.body


def test_an_internal_note_from_the_form_tells_nobody(open_ticket, support, client_of):
    ticket = open_ticket()
    client_of(support).post(f"/staff/helpdesk/{ticket.pk}/reply/", {"text": "Заметка", "visibility": "internal"})
    assert TicketComment.objects.get(ticket=ticket, is_public=False).text == "Заметка"
    assert not Message.objects.filter(event=Event.TICKET_UPDATED).exists()


def test_an_empty_reply_is_refused_on_the_page(open_ticket, support, client_of):
    ticket = open_ticket()
    response = client_of(support).post(f"/staff/helpdesk/{ticket.pk}/reply/", {"text": "", "visibility": "public"})
    assert response.status_code == 422
    assert ticket.comments.count() == 1


def test_the_status_form_changes_it_and_tells_the_subscriber(open_ticket, support, client_of):
    ticket = open_ticket()
    response = client_of(support).post(f"/staff/helpdesk/{ticket.pk}/status/", {"status": "resolved", "reason": ""})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    assert Message.objects.filter(event=Event.TICKET_UPDATED).count() == 1
    bad = client_of(support).post(f"/staff/helpdesk/{ticket.pk}/status/", {"status": "lost"})
    assert bad.status_code == 422


def test_a_cashier_reads_but_cannot_reply(open_ticket, cashier, client_of):
    ticket = open_ticket()
    client = client_of(cashier)
    page = client.get(f"/staff/helpdesk/{ticket.pk}/")
    assert page.status_code == 200 and "reply-text" not in _html(page)
    assert client.post(f"/staff/helpdesk/{ticket.pk}/reply/", {"text": "x", "visibility": "public"}).status_code == 403
    assert client.post(f"/staff/helpdesk/{ticket.pk}/status/", {"status": "closed"}).status_code == 403
    ticket.refresh_from_db()
    assert (ticket.status, ticket.comments.count()) == ("new", 1)


def test_an_engineer_without_tickets_of_his_own_sees_the_menu_item(make_staff, client_of, customer):
    html = _html(client_of(make_staff(Role.ENGINEER)).get(f"/staff/subscribers/{customer.pk}/"))
    assert 'href="/staff/helpdesk/"' in html and 'id="panel-tickets"' in html


def test_the_card_panel_lists_tickets_and_opens_one_for_the_subscriber(open_ticket, customer, support, client_of):
    open_ticket(subject="Роутер не раздаёт Wi-Fi", category="equipment")
    client = client_of(support)
    card = _html(client.get(f"/staff/subscribers/{customer.pk}/"))
    assert 'id="panel-tickets"' in card and "Роутер не раздаёт Wi-Fi" in card and "1 open request" in card
    response = client.post(
        f"/staff/helpdesk/subscribers/{customer.pk}/open/",
        {"category": "billing", "priority": "high", "subject": "Звонил про счёт", "text": "Просит акт сверки"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "Звонил про счёт" in _html(response)
    ticket = Ticket.objects.get(subject="Звонил про счёт")
    assert (ticket.source, ticket.priority, ticket.created_by) == ("console", "high", support)
    refused = client.post(
        f"/staff/helpdesk/subscribers/{customer.pk}/open/",
        {"category": "connection_request", "priority": "normal", "subject": "Подключение", "text": "Хочет"},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422 and "Give the address to connect." in _html(refused)
    assert Ticket.objects.count() == 2


def test_a_cashier_sees_the_panel_without_the_form(open_ticket, customer, cashier, client_of):
    open_ticket()
    card = _html(client_of(cashier).get(f"/staff/subscribers/{customer.pk}/"))
    assert 'id="panel-tickets"' in card and "ticket-subject" not in card
    response = client_of(cashier).post(
        f"/staff/helpdesk/subscribers/{customer.pk}/open/",
        {"category": "billing", "priority": "high", "subject": "x", "text": "y"},
    )
    assert response.status_code == 403


def test_the_list_pages_sorts_and_exports_the_filtered_tickets(open_ticket, support, client_of, monkeypatch):
    import csv
    import io
    import re

    from openpyxl import load_workbook

    from abonent.helpdesk import views

    tickets = [open_ticket(subject=f"Заявка {i}") for i in range(3)]
    Ticket.objects.filter(pk=tickets[0].pk).update(updated_at=tickets[0].updated_at.replace(year=2027))
    monkeypatch.setattr(views, "PAGE", 2)
    client = client_of(support)
    first = _html(client.get("/staff/helpdesk/"))
    # The most recently touched first: the first ticket (touched later), then the newest.
    assert re.findall(r'data-ticket="(\d+)"', first) == [str(tickets[0].number), str(tickets[2].number)]
    cursor = re.search(r'rel="next" href="\?cursor=([^"]+)"', first).group(1)
    second = _html(client.get("/staff/helpdesk/", {"cursor": cursor}))
    assert re.findall(r'data-ticket="(\d+)"', second) == [str(tickets[1].number)]
    by_number = _html(client.get("/staff/helpdesk/", {"sort": "number"}))
    assert re.findall(r'data-ticket="(\d+)"', by_number) == [str(tickets[0].number), str(tickets[1].number)]

    body = b"".join(client.get("/staff/helpdesk/export/", {"format": "csv", "sort": "number"}).streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["No.", "Subject", "Category", "Status"]
    assert [r[1] for r in rows[1:]] == ["Заявка 0", "Заявка 1", "Заявка 2"]  # every match, not one page
    assert rows[1][5] == tickets[0].subscriber.account_number and rows[1][3] == "New"
    response = client.get("/staff/helpdesk/export/", {"format": "xlsx", "q": "Заявка 1", "status": "all"})
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 2 and values[1][0] == tickets[1].number and values[1][8].year == 2026


def test_the_export_keeps_to_the_users_branches_and_wants_a_login(open_ticket, make_staff, other_branch, client_of):
    open_ticket()
    elsewhere = client_of(make_staff(Role.SUPPORT, branches=[other_branch]))
    body = b"".join(elsewhere.get("/staff/helpdesk/export/", {"format": "csv"}).streaming_content).decode()
    assert len(body.strip().splitlines()) == 1  # the header only
    from django.test import Client

    assert Client().get("/staff/helpdesk/export/", {"format": "csv"}).status_code == 302  # to the login page
