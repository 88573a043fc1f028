"""The helpdesk's actions: opening a ticket within the subscriber's limits, the thread, statuses, and the subscriber
told of a staff reply or status change (once, in their language), never of an internal note."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import translation

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.helpdesk import actions, rules
from abonent.helpdesk.models import Ticket, TicketComment, TicketSource, TicketStatus
from abonent.notifications.actions import PreferenceData, do_update_preferences
from abonent.notifications.models import Event, Message
from abonent.staff.permissions import Role

from .conftest import T0

pytestmark = pytest.mark.django_db


def _codes(exc: ValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {name: [e.code for e in errors] for name, errors in exc.error_dict.items()}
    return {None: [e.code for e in exc.error_list]}


def _told(ticket) -> list[Message]:
    return list(Message.objects.filter(subscriber=ticket.subscriber, event=Event.TICKET_UPDATED).order_by("id"))


def test_a_subscriber_opens_a_ticket_whose_text_is_the_first_comment(open_ticket, customer, now):
    ticket = open_ticket(subject="  Нет   интернета\n", priority="critical")
    ticket.refresh_from_db()
    assert (ticket.number, ticket.subject, ticket.status, ticket.priority) == (1, "Нет интернета", "new", "normal")
    assert (ticket.source, ticket.created_by, ticket.created_at, ticket.closed_at) == ("portal", None, T0, None)
    [comment] = TicketComment.objects.filter(ticket=ticket)
    assert (comment.author_kind, comment.author, comment.text, comment.is_public) == (
        "subscriber", None, "Со вчерашнего вечера не работает.", True,
    )  # fmt: skip
    assert open_ticket(subject="И телефон не звонит").number == 2
    event = AuditEvent.objects.get(action="ticket.opened", object_id=str(ticket.pk))
    assert (event.subscriber_id, event.after["number"], event.after["source"]) == (customer.pk, 1, "portal")
    assert _told(ticket) == []  # nothing to tell the subscriber of their own request


@pytest.mark.parametrize(
    ("fields", "codes"),
    [
        ({"subject": ""}, {"subject": ["required"]}),
        ({"subject": "x" * 201}, {"subject": ["subject_too_long"]}),
        ({"text": "   "}, {"text": ["required"]}),
        ({"text": "ы" * 4001}, {"text": ["text_too_long"]}),
        ({"text": "a\x00b"}, {"text": ["text_invalid"]}),
        ({"category": "free_beer"}, {"category": ["category_invalid"]}),
        ({"category": "connection_request"}, {"address": ["address_required"]}),
        ({"category": "connection_request", "address": "д" * 301}, {"address": ["address_too_long"]}),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(open_ticket, fields, codes):
    with pytest.raises(ValidationError) as refused:
        open_ticket(**fields)
    assert _codes(refused.value) == codes
    assert (Ticket.objects.count(), TicketComment.objects.count()) == (0, 0)


def test_a_text_of_exactly_the_limit_is_taken(open_ticket):
    assert open_ticket(text="ы" * 4000).comments.get().text == "ы" * 4000


def test_a_connection_request_keeps_its_address(open_ticket):
    ticket = open_ticket(category="connection_request", subject="Подключите", address="Тверь, ул. Ленина, д. 7, кв. 3")
    assert (ticket.category, ticket.address) == ("connection_request", "Тверь, ул. Ленина, д. 7, кв. 3")


def test_a_flood_of_tickets_is_refused_and_a_day_later_taken_again(open_ticket, customer, settings):
    settings.ABONENT_HELPDESK_TICKETS_PER_DAY = 3
    for i in range(3):
        open_ticket(subject=f"Нет интернета {i}")
    with pytest.raises(ValidationError) as refused:
        open_ticket(subject="Нет интернета 3")
    assert _codes(refused.value) == {None: ["too_many_tickets"]}
    assert Ticket.objects.filter(subscriber=customer).count() == 3
    with clock.travel_to(T0 + dt.timedelta(hours=23, minutes=59)), pytest.raises(ValidationError):
        open_ticket()
    with clock.travel_to(T0 + dt.timedelta(days=1, seconds=1)):
        assert open_ticket(subject="Нет интернета 3").number == 4


def test_tickets_staff_open_for_the_subscriber_are_not_limited(customer, support, now, settings, open_ticket):
    settings.ABONENT_HELPDESK_TICKETS_PER_DAY = 1
    data = actions.TicketData(category="billing", subject="Звонок", text="Спрашивает о счёте", priority="high")
    for _ in range(2):
        ticket = actions.do_open_ticket(customer, data, source=TicketSource.CONSOLE, acting_user=support)
    assert (ticket.priority, ticket.created_by, ticket.comments.get().author_kind) == ("high", support, "staff")
    assert open_ticket().number == 3  # the subscriber's own one still fits their limit


def test_a_staff_public_reply_tells_the_subscriber_once_and_counts_as_the_first_response(open_ticket, support, now):
    ticket = open_ticket()
    with clock.travel_to(T0 + dt.timedelta(minutes=40)):
        comment = actions.do_comment_ticket(
            ticket, text="Проверяем линию.", is_public=True, status="in_progress", acting_user=support
        )
    ticket.refresh_from_db()
    assert (ticket.status, ticket.first_response_at) == ("in_progress", T0 + dt.timedelta(minutes=40))
    assert (comment.author, comment.author_kind, comment.is_public) == (support, "staff", True)
    [sms] = _told(ticket)
    assert (sms.channel, sms.dedup_key) == ("sms", f"ticket:{ticket.pk}:comment:{comment.pk}:sms")
    assert "#1" in sms.body and "“We are working on it”" in sms.body


def test_an_internal_note_tells_the_subscriber_nothing(open_ticket, support, now):
    ticket = open_ticket()
    actions.do_comment_ticket(ticket, text="Абонент грубит, осторожно.", is_public=False, acting_user=support)
    ticket.refresh_from_db()
    assert (ticket.first_response_at, ticket.status) == (None, "new")
    assert _told(ticket) == []
    assert TicketComment.objects.filter(ticket=ticket, is_public=False).count() == 1


def test_a_status_change_tells_the_subscriber_in_their_language(open_ticket, customer, support, now, settings):
    settings.ABONENT_PUBLIC_URL = "https://isp.example.ru"
    do_update_preferences(customer, PreferenceData(language="ru"), acting_user=None)
    ticket = open_ticket()
    actions.do_change_ticket_status(ticket, status="resolved", acting_user=support)
    [sms] = _told(ticket)
    with translation.override("ru"):
        label = rules.subscriber_status_label("resolved")
    assert sms.language == "ru"
    assert f"«{label}»" in sms.body or f"“{label}”" in sms.body
    assert f"https://isp.example.ru/my/requests/{ticket.pk}/" in sms.body
    ticket.refresh_from_db()
    assert (ticket.status, ticket.closed_at) == ("resolved", T0)


def test_the_same_status_again_writes_nothing(open_ticket, support, now):
    ticket = open_ticket()
    actions.do_change_ticket_status(ticket, status="in_progress", acting_user=support)
    actions.do_change_ticket_status(ticket, status="in_progress", acting_user=support)
    assert AuditEvent.objects.filter(action="ticket.status_changed").count() == 1
    assert len(_told(ticket)) == 1


def test_the_subscribers_reply_takes_a_waiting_ticket_back_to_work(open_ticket, support, now):
    ticket = open_ticket()
    actions.do_change_ticket_status(ticket, status="waiting_subscriber", acting_user=support)
    actions.do_comment_ticket(ticket, text="Роутер перезагрузил, не помогло.", acting_user=None)
    ticket.refresh_from_db()
    assert ticket.status == "in_progress"
    assert len(_told(ticket)) == 1  # the staff's status change only


def test_the_subscriber_closes_and_reopens_within_the_window_but_not_after(open_ticket, settings):
    settings.ABONENT_HELPDESK_REOPEN_DAYS = 7
    ticket = open_ticket()
    actions.do_change_ticket_status(ticket, status=TicketStatus.CLOSED, acting_user=None)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.closed_at) == ("closed", T0)
    with clock.travel_to(T0 + dt.timedelta(days=6, hours=23)):
        actions.do_change_ticket_status(ticket, status=actions.REOPENED_STATUS, acting_user=None)
        ticket.refresh_from_db()
        assert (ticket.status, ticket.closed_at) == ("new", None)
        actions.do_change_ticket_status(ticket, status=TicketStatus.CLOSED, acting_user=None)
    with clock.travel_to(T0 + dt.timedelta(days=14)):
        with pytest.raises(ValidationError) as refused:
            actions.do_change_ticket_status(ticket, status=actions.REOPENED_STATUS, acting_user=None)
        assert _codes(refused.value) == {None: ["reopen_expired"]}
        with pytest.raises(ValidationError) as refused:
            actions.do_comment_ticket(ticket, text="Опять не работает", acting_user=None)
        assert _codes(refused.value) == {None: ["ticket_closed"]}
    ticket.refresh_from_db()
    assert ticket.status == "closed"
    assert ticket.comments.count() == 1


def test_a_reply_to_a_resolved_ticket_reopens_it(open_ticket, support, now):
    ticket = open_ticket()
    actions.do_change_ticket_status(ticket, status="resolved", acting_user=support)
    actions.do_comment_ticket(ticket, text="Нет, снова пропало.", acting_user=None)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.closed_at) == ("new", None)


@pytest.mark.parametrize("status", ["in_progress", "resolved", "waiting_subscriber"])
def test_the_subscriber_cannot_set_a_staff_status(open_ticket, status):
    ticket = open_ticket()
    with pytest.raises(ValidationError) as refused:
        actions.do_change_ticket_status(ticket, status=status, acting_user=None)
    assert _codes(refused.value) == {None: ["status_not_allowed"]}
    ticket.refresh_from_db()
    assert ticket.status == "new"


def test_a_flood_of_replies_is_refused(open_ticket, settings):
    settings.ABONENT_HELPDESK_COMMENTS_PER_DAY = 3
    ticket = open_ticket()  # its text is the first of the three
    actions.do_comment_ticket(ticket, text="Ещё", acting_user=None)
    actions.do_comment_ticket(ticket, text="И ещё", acting_user=None)
    assert actions.do_comment_ticket(ticket, text="И ещё", acting_user=None).text == "И ещё"  # a repeat: not counted
    with pytest.raises(ValidationError) as refused:
        actions.do_comment_ticket(ticket, text="И снова", acting_user=None)
    assert _codes(refused.value) == {None: ["too_many_comments"]}
    assert ticket.comments.count() == 3


def test_staff_without_the_permission_or_the_branch_are_refused(open_ticket, cashier, make_staff, other_branch):
    ticket = open_ticket()
    elsewhere = make_staff(Role.SUPPORT, branches=[other_branch])
    for user in (cashier, elsewhere):
        with pytest.raises(PermissionDenied):
            actions.do_comment_ticket(ticket, text="Ответ", acting_user=user)
        with pytest.raises(PermissionDenied):
            actions.do_change_ticket_status(ticket, status="closed", acting_user=user)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.comments.count()) == ("new", 1)


def test_a_double_submit_returns_the_first_ticket_and_writes_nothing(open_ticket, customer):
    first = open_ticket()
    with clock.travel_to(T0 + dt.timedelta(seconds=5)):
        assert open_ticket() == first
    with clock.travel_to(T0 + dt.timedelta(seconds=10)):
        assert open_ticket(text="Другой текст") != first
    with clock.travel_to(T0 + dt.timedelta(minutes=3)):
        assert open_ticket() != first  # the same words later: a new request
    assert Ticket.objects.filter(subscriber=customer).count() == 3
    assert AuditEvent.objects.filter(action="ticket.opened").count() == 3
