"""Attack review of ticket linking: an incident narrowed (a wrong street first, a start corrected later) drops the
subscribers no longer affected, and their requests must leave its page with them."""

import datetime as dt

import pytest

from abonent.core import clock
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.models import IncidentTicket
from abonent.helpdesk.incidents.selectors import incidents_of_ticket
from abonent.helpdesk.incidents.validation import AreaData

from .conftest import LENINA_1_12, START, incident_data
from .test_tickets import _linked, _ticket

pytestmark = pytest.mark.django_db


def test_narrowing_the_incident_unlinks_the_requests_of_those_dropped(customer, open_incident, admin):
    # Given an incident typed over houses 1-12 and two requests about the connection, from houses 5 and 9
    five, nine = customer("5"), customer("9")
    t5, t9 = _ticket(five, START + dt.timedelta(minutes=5)), _ticket(nine, START + dt.timedelta(minutes=6))
    incident = open_incident(areas=[LENINA_1_12])
    assert _linked(incident) == {t5.number, t9.number}

    # When the operator corrects it to houses 8-12
    with clock.travel_to(START + dt.timedelta(hours=1)):
        incident = actions.do_update_incident(
            incident, incident_data(areas=[AreaData("Тверь", "ул. Ленина", 8, 12)]), acting_user=admin
        )

    # Then house 5 is no longer affected, and its request is no longer the incident's (nor names it)
    assert incident.affected_count == 1
    assert _linked(incident) == {t9.number}
    assert incidents_of_ticket(t5.pk) == []


def test_a_start_corrected_later_unlinks_the_requests_before_it(customer, open_incident, admin):
    five = customer("5")
    early = _ticket(five, START + dt.timedelta(minutes=5))
    late = _ticket(five, START + dt.timedelta(hours=2))
    incident = open_incident(areas=[LENINA_1_12])
    assert _linked(incident) == {early.number, late.number}
    with clock.travel_to(START + dt.timedelta(hours=3)):
        actions.do_update_incident(
            incident, incident_data(areas=[LENINA_1_12], starts_at=START + dt.timedelta(hours=1)), acting_user=admin
        )
    assert _linked(incident) == {late.number}
    assert IncidentTicket.objects.count() == 1
