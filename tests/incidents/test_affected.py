"""Who an incident affects: by NAS (sessions open or recent), by address (city, street, range of houses), stored as
rows, recomputed on a change; closed accounts and other places are not."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.affected import affected_subscriber_ids
from abonent.helpdesk.incidents.models import Incident, IncidentStatus, IncidentSubscriber
from abonent.helpdesk.incidents.validation import AreaData
from abonent.staff.permissions import Role
from abonent.subscribers.actions import do_close_subscriber

from .conftest import LENINA_1_12, START, incident_data, online

pytestmark = pytest.mark.django_db


def _affected(incident) -> set[int]:
    return set(IncidentSubscriber.objects.filter(incident=incident).values_list("subscriber_id", flat=True))


def test_by_nas_open_and_recent_sessions_count_old_and_other_nas_do_not(customer, nas, other_nas, open_incident):
    # Given one subscriber online on the NAS, one whose session there closed an hour before the start, one last seen
    # there a month ago, and one online on another NAS
    on_now, recent, long_ago, elsewhere = (customer(str(n), street="ул. Мира") for n in (1, 2, 3, 4))
    online(on_now, nas)
    online(recent, nas, open_=False)
    online(long_ago, nas, at=START - dt.timedelta(days=30), open_=False)
    online(elsewhere, other_nas)

    # When an incident is opened on the NAS
    incident = open_incident(nas=[nas])

    # Then the two who use it are affected, stored and counted
    assert _affected(incident) == {on_now.pk, recent.pk}
    assert incident.affected_count == 2
    assert Incident.objects.get(pk=incident.pk).affected_count == 2


def test_by_address_range_city_and_street(customer, open_incident):
    # Given houses 5, "12/1", "12к2", 13 and "4а" on ул. Ленина, house 5 on another street, and Ленина 5 in Клин
    h5, h12_1, h12k2, h13, h4a = (customer(h) for h in ("5", "12/1", "12к2", "13", "4а"))
    other_street = customer("5", street="ул. Мира")
    other_city = customer("5", city="Клин")

    # When an incident covers houses 1 to 12 of ул. Ленина, Тверь (the street typed in lower case)
    incident = open_incident(areas=[AreaData("Тверь", "ул. ленина", 1, 12)])

    # Then the houses numbered 1..12 are affected, 13 and the other street and city are not
    assert _affected(incident) == {h5.pk, h12_1.pk, h12k2.pk, h4a.pk}
    assert other_street.pk not in _affected(incident) and other_city.pk not in _affected(incident)
    assert h13.pk not in _affected(incident)


def test_a_whole_street_and_a_whole_city(customer, open_incident):
    lenina, mira, klin = customer("40"), customer("7", street="ул. Мира"), customer("1", city="Клин")
    street = open_incident(areas=[AreaData("Тверь", "ул. Ленина")])
    city = open_incident(areas=[AreaData("Клин")], title="Клин без связи")
    assert _affected(street) == {lenina.pk}
    assert _affected(city) == {klin.pk}
    assert mira.pk not in _affected(street) | _affected(city)


def test_a_closed_account_is_not_affected(customer, open_incident, admin):
    gone = customer("5", subscribe=False)
    do_close_subscriber(gone, reason="переезд", acting_user=admin)
    stays = customer("6")
    incident = open_incident(areas=[LENINA_1_12])
    assert _affected(incident) == {stays.pk}


def test_an_update_recomputes_the_set_dropping_and_adding(customer, nas, open_incident, admin):
    # Given an incident over houses 1..12 with house 5 affected
    h5, h20 = customer("5"), customer("20")
    online(h20, nas)
    incident = open_incident(areas=[LENINA_1_12])
    assert _affected(incident) == {h5.pk}

    # When it is changed to the NAS only
    with clock.travel_to(START + dt.timedelta(hours=1)):
        incident = actions.do_update_incident(incident, incident_data(nas=[nas]), acting_user=admin)

    # Then house 5 is dropped, the NAS's subscriber added, and the change audited with the old and new scope
    assert _affected(incident) == {h20.pk}
    assert incident.affected_count == 1
    event = AuditEvent.objects.get(action="incident.updated")
    assert event.before["areas"] == ["Тверь, ул. Ленина, 1–12"] and event.after["nas"] == [nas.pk]


def test_the_affected_set_is_one_query(customer, nas, open_incident, django_assert_num_queries):
    for house in ("1", "2", "3"):
        online(customer(house), nas)
    incident = open_incident(nas=[nas], areas=[LENINA_1_12])
    # the NAS ids and the areas are read first; then the set is one statement, however many subscribers match
    ids = affected_subscriber_ids(incident)
    with django_assert_num_queries(1):
        assert len(list(ids)) == 3


def test_resolve_keeps_the_set_and_refuses_a_change(customer, open_incident, admin):
    h5 = customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    with clock.travel_to(START + dt.timedelta(hours=5)):
        incident = actions.do_resolve_incident(incident, acting_user=admin)
        again = actions.do_resolve_incident(incident, acting_user=admin)
    assert (incident.status, incident.ends_at) == (IncidentStatus.RESOLVED, START + dt.timedelta(hours=5))
    assert again.ends_at == incident.ends_at
    assert AuditEvent.objects.filter(action="incident.resolved").count() == 1
    assert _affected(incident) == {h5.pk}
    with pytest.raises(ValidationError) as refused:
        actions.do_update_incident(incident, incident_data(areas=[LENINA_1_12]), acting_user=admin)
    assert refused.value.code == "incident_resolved"


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        (incident_data(), "areas", "scope_required"),
        (incident_data(areas=[AreaData("Тверь", "", 1, 5)]), "areas", "area_range_street"),
        (incident_data(areas=[AreaData("Тверь", "ул. Ленина", 9, 3)]), "areas", "area_range_invalid"),
        (incident_data(areas=[AreaData("Тверь", "ул. Ленина", 0, 10**9)]), "areas", "area_range_invalid"),
        (incident_data(areas=[AreaData("  ")]), "areas", "area_city_required"),
        (incident_data(areas=[LENINA_1_12], title="   "), "title", "required"),
        (incident_data(areas=[LENINA_1_12], starts_at=None), "starts_at", "required"),
        (
            incident_data(areas=[LENINA_1_12], starts_at=dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
            "starts_at",
            "starts_at_out_of_range",
        ),
        (
            incident_data(areas=[LENINA_1_12], starts_at=dt.datetime(9999, 1, 1, tzinfo=dt.UTC)),
            "starts_at",
            "starts_at_out_of_range",
        ),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(admin, data, field, code):
    with pytest.raises(ValidationError) as refused, clock.travel_to(START):
        actions.do_open_incident(data, acting_user=admin)
    assert [e.code for e in refused.value.error_dict[field]] == [code]
    assert Incident.objects.count() == 0


def test_an_unknown_nas_is_refused(admin):
    data = incident_data()
    data.nas_ids = [999_999]
    with pytest.raises(ValidationError) as refused:
        actions.do_open_incident(data, acting_user=admin)
    assert refused.value.error_dict["nas"][0].code == "nas_invalid"


def test_a_cashier_may_not_open_one(make_staff):
    with pytest.raises(PermissionDenied):
        actions.do_open_incident(incident_data(areas=[LENINA_1_12]), acting_user=make_staff(Role.CASHIER))
    assert Incident.objects.count() == 0


def test_the_periodic_refresh_adds_who_connected_later_and_links_their_tickets(customer, nas, open_incident, admin):
    from abonent.helpdesk.actions import TicketData, do_open_ticket
    from abonent.helpdesk.incidents.models import IncidentTicket
    from abonent.helpdesk.incidents.tasks import refresh_affected

    early = customer("1", street="ул. Мира")
    online(early, nas)
    incident = open_incident(nas=[nas])
    resolved = open_incident(nas=[nas], title="Старая")
    with clock.travel_to(START + dt.timedelta(hours=1)):
        actions.do_resolve_incident(resolved, acting_user=admin)

    # Given a subscriber who connected to the NAS after the incident was opened, and complained
    late = customer("2", street="ул. Мира")
    online(late, nas, at=START + dt.timedelta(hours=2))
    with clock.travel_to(START + dt.timedelta(hours=2)):
        ticket = do_open_ticket(
            late,
            TicketData(category="no_connection", subject="Нет сети", text="..."),
            source="portal",
            acting_user=None,
        )

    # When the periodic job runs (twice)
    with clock.travel_to(START + dt.timedelta(hours=3)):
        assert refresh_affected.call() == 1
        assert refresh_affected.call() == 1

    # Then the open incident has them and their ticket; the resolved one is as it was; one audit row for the change
    assert _affected(incident) == {early.pk, late.pk}
    assert list(IncidentTicket.objects.filter(incident=incident).values_list("ticket_id", flat=True)) == [ticket.pk]
    assert _affected(resolved) == {early.pk}
    assert AuditEvent.objects.filter(action="incident.refreshed").count() == 1
