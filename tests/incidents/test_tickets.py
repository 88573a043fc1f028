"""Tickets of the affected about a connection or speed, opened during the incident, are linked: those open when it
is opened, and each new one as it is opened (the ``ticket.created`` event); others are not."""

import datetime as dt

import pytest

from abonent.core import clock
from abonent.helpdesk.actions import TicketData, do_open_ticket
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.models import IncidentTicket
from abonent.helpdesk.models import TicketSource

from .conftest import LENINA_1_12, START

pytestmark = pytest.mark.django_db


def _ticket(subscriber, at, category="no_connection", subject="Нет интернета"):
    with clock.travel_to(at):
        return do_open_ticket(
            subscriber,
            TicketData(category=category, subject=subject, text="С утра не работает"),
            source=TicketSource.PORTAL,
            acting_user=None,
        )


def _linked(incident) -> set[int]:
    return set(IncidentTicket.objects.filter(incident=incident).values_list("ticket__number", flat=True))


def test_tickets_open_when_the_incident_opens_are_linked(customer, open_incident, django_capture_on_commit_callbacks):
    a, outside = customer("5"), customer("40")
    before = _ticket(a, START - dt.timedelta(hours=1))  # before it started
    during = _ticket(a, START + dt.timedelta(minutes=10))
    billing_question = _ticket(a, START + dt.timedelta(minutes=15), category="billing", subject="Счёт")
    not_affected = _ticket(outside, START + dt.timedelta(minutes=20))
    incident = open_incident(areas=[LENINA_1_12])
    assert _linked(incident) == {during.number}
    assert {before.number, billing_question.number, not_affected.number}.isdisjoint(_linked(incident))


def test_a_new_ticket_of_an_affected_subscriber_is_linked_on_open(
    customer, open_incident, admin, django_capture_on_commit_callbacks
):
    a, outside = customer("5"), customer("40")
    incident = open_incident(areas=[LENINA_1_12])
    with django_capture_on_commit_callbacks(execute=True):
        slow = _ticket(a, START + dt.timedelta(hours=1), category="slow_speed", subject="Медленно")
        other = _ticket(outside, START + dt.timedelta(hours=1))
    assert _linked(incident) == {slow.number}
    assert other.number not in _linked(incident)

    # a recomputation links nothing twice
    with clock.travel_to(START + dt.timedelta(hours=2)):
        actions.do_update_incident(incident, _same(incident), acting_user=admin)
    assert IncidentTicket.objects.filter(incident=incident).count() == 1


def test_a_ticket_after_the_incident_ended_is_not_linked(
    customer, open_incident, admin, django_capture_on_commit_callbacks
):
    a = customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    with clock.travel_to(START + dt.timedelta(hours=3)):
        actions.do_resolve_incident(incident, acting_user=admin)
    with django_capture_on_commit_callbacks(execute=True):
        _ticket(a, START + dt.timedelta(hours=4))
    assert _linked(incident) == set()


def _same(incident):
    from .conftest import incident_data

    return incident_data(areas=[LENINA_1_12], title=incident.title)
