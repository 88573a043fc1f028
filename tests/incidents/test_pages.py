"""Where incidents show: the portal's home of an affected subscriber (not of others, not after it is resolved), the
subscriber card's header, the ticket page; and the console's pages (list, detail with keyset paging, form, resolve,
message, compensate with field errors)."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.helpdesk.actions import TicketData, do_open_ticket
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.models import Compensation, Incident
from abonent.portal.models import SessionKind
from abonent.portal.sessions import COOKIE, open_session
from abonent.staff.permissions import Role

from .conftest import LENINA_1_12, START

pytestmark = pytest.mark.django_db


def _portal(subscriber) -> Client:
    _session, secret = open_session(subscriber, kind=SessionKind.WEB)
    client = Client()
    client.cookies[COOKIE] = secret
    return client


def _staff(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _banners(html: str) -> list[str]:
    return re.findall(r'data-testid="incident-banner" data-incident="(\d+)"', html)


def test_the_portal_banner_shows_only_to_the_affected_while_open(customer, open_incident, admin):
    affected, outside = customer("5"), customer("40")
    incident = open_incident(areas=[LENINA_1_12])
    with clock.travel_to(START + dt.timedelta(hours=1)):
        home = _portal(affected).get("/my/")
        other = _portal(outside).get("/my/")
    assert home.status_code == 200 and other.status_code == 200
    assert _banners(home.content.decode()) == [str(incident.pk)]
    assert "Не работает интернет в домах 1–12" in home.content.decode()
    assert _banners(other.content.decode()) == []

    with clock.travel_to(START + dt.timedelta(hours=2)):
        actions.do_resolve_incident(incident, acting_user=admin)
        assert _banners(_portal(affected).get("/my/").content.decode()) == []


def test_the_card_header_and_the_ticket_page_show_the_incident(
    customer, open_incident, admin, django_capture_on_commit_callbacks
):
    affected, outside = customer("5"), customer("40")
    incident = open_incident(areas=[LENINA_1_12])
    with django_capture_on_commit_callbacks(execute=True), clock.travel_to(START + dt.timedelta(hours=1)):
        ticket = do_open_ticket(
            affected,
            TicketData(category="no_connection", subject="Нет сети", text="Не работает"),
            source="portal",
            acting_user=None,
        )
    client = _staff(admin)
    card = client.get(f"/staff/subscribers/{affected.pk}/").content.decode()
    assert 'id="header-incidents"' in card and f'data-incident="{incident.pk}"' in card
    assert 'id="header-incidents"' not in client.get(f"/staff/subscribers/{outside.pk}/").content.decode()
    page = client.get(f"/staff/helpdesk/{ticket.pk}/").content.decode()
    assert 'id="ticket-incidents"' in page and f"/staff/incidents/{incident.pk}/" in page


def test_the_console_opens_an_incident_from_the_form(customer, admin):
    a = customer("5")
    client = _staff(admin)
    assert client.get("/staff/incidents/new/").status_code == 200
    with clock.travel_to(START + dt.timedelta(minutes=30)):
        response = client.post(
            "/staff/incidents/new/",
            {
                "title": "Авария",
                "kind": "outage",
                "starts_at": "2026-11-20T12:00",
                "description": "Чиним",
                "areas": "Тверь; ул. Ленина; 1-12\nКлин",
            },
        )
    incident = Incident.objects.get()
    assert response.status_code == 302 and response.url == f"/staff/incidents/{incident.pk}/"
    assert [str(area) for area in incident.areas.all()] == ["Тверь, ул. Ленина, 1–12", "Клин"]
    assert incident.affected_count == 1
    detail = client.get(response.url).content.decode()
    assert f'data-subscriber="{a.pk}"' in detail and 'id="affected-count">1<' in detail
    assert f'data-incident="{incident.pk}"' in client.get("/staff/incidents/").content.decode()


@pytest.mark.parametrize(
    ("areas", "code_text"),
    [("Тверь; ул. Ленина; 12-x", "houses are a number or a range"), ("", "Name the NAS or the addresses")],
)
def test_the_form_refuses_bad_areas_with_422(admin, areas, code_text):
    response = _staff(admin).post(
        "/staff/incidents/new/",
        {"title": "Авария", "kind": "outage", "starts_at": "2026-11-20T12:00", "description": "Чиним", "areas": areas},
    )
    assert response.status_code == 422
    assert code_text in response.content.decode()
    assert Incident.objects.count() == 0


def test_the_affected_list_pages_by_keyset_and_a_branch_sees_its_own(
    customer, open_incident, make_staff, branch, other_branch
):
    mine = [customer(str(h)) for h in range(1, 4)]
    theirs = customer("4", branch_obj=other_branch)
    incident = open_incident(areas=[LENINA_1_12])
    limited = _staff(make_staff(Role.OPERATOR, branches=[branch]))
    html = limited.get(f"/staff/incidents/{incident.pk}/").content.decode()
    listed = re.findall(r'data-subscriber="(\d+)"', html)
    assert listed == [str(s.pk) for s in mine]
    assert str(theirs.pk) not in listed


def test_the_page_cursor_walks_the_affected(customer, open_incident, admin, monkeypatch):
    from abonent.helpdesk.incidents import views

    monkeypatch.setattr(views, "AFFECTED_PAGE", 2)
    subscribers = [customer(str(h)) for h in range(1, 6)]
    incident = open_incident(areas=[LENINA_1_12])
    client, seen, url = _staff(admin), [], f"/staff/incidents/{incident.pk}/"
    while url:
        html = client.get(url).content.decode()
        seen += re.findall(r'data-subscriber="(\d+)"', html)
        found = re.search(r'rel="next" href="\?([^"]*)"', html)
        url = f"/staff/incidents/{incident.pk}/?{found.group(1).replace('&amp;', '&')}" if found else None
    assert seen == [str(s.pk) for s in subscribers]


def test_compensate_from_the_page_refuses_absurd_days_then_credits_once(customer, open_incident, admin):
    a = customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    client = _staff(admin)
    with clock.travel_to(START + dt.timedelta(hours=3)):
        assert client.post(f"/staff/incidents/{incident.pk}/resolve/").status_code == 302
    url = f"/staff/incidents/{incident.pk}/compensate/"
    with clock.travel_to(START + dt.timedelta(days=1)):
        for absurd in ("0", "-1", "1000000", "abc"):
            refused = client.post(url, {"days": absurd})
            assert refused.status_code == 422 and "invalid-feedback" in refused.content.decode()
        assert Compensation.objects.count() == 0
        assert client.post(url, {"days": "3"}).status_code == 302
        assert client.post(url, {"days": "3"}).status_code == 302
    assert get_balance(a).balance == Decimal("460.00")
    assert 'id="compensation-done"' in client.get(f"/staff/incidents/{incident.pk}/").content.decode()


def test_an_operator_may_not_compensate_and_a_cashier_may_not_open(customer, open_incident, admin, make_staff):
    customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    with clock.travel_to(START + dt.timedelta(hours=3)):
        actions.do_resolve_incident(incident, acting_user=admin)
    operator = _staff(make_staff(Role.OPERATOR))
    assert operator.post(f"/staff/incidents/{incident.pk}/compensate/", {"days": "3"}).status_code == 403
    assert 'id="incident-compensate"' not in operator.get(f"/staff/incidents/{incident.pk}/").content.decode()
    assert _staff(make_staff(Role.CASHIER)).get("/staff/incidents/new/").status_code == 403
    assert Compensation.objects.count() == 0


def test_message_from_the_page_twice_is_one(customer, open_incident, admin):
    customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    client = _staff(admin)
    data = {"channel": "sms", "subject": "", "body": "Чиним, к 18:00"}
    assert client.post(f"/staff/incidents/{incident.pk}/message/", data).status_code == 302
    assert client.post(f"/staff/incidents/{incident.pk}/message/", data).status_code == 302
    assert incident.messages.count() == 1
    refused = client.post(f"/staff/incidents/{incident.pk}/message/", {**data, "channel": "pigeon"})
    assert refused.status_code == 422 and incident.messages.count() == 1


def test_the_banner_costs_one_query_however_many_incidents(customer, open_incident):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    affected, outside = customer("5"), customer("40")
    open_incident(areas=[LENINA_1_12])
    open_incident(areas=[LENINA_1_12], title="Вторая авария")

    def queries(subscriber):
        client = _portal(subscriber)
        with clock.travel_to(START + dt.timedelta(hours=1)), CaptureQueriesContext(connection) as captured:
            html = client.get("/my/").content.decode()
        return len(captured.captured_queries), len(_banners(html))

    assert queries(affected)[1] == 2 and queries(outside)[1] == 0
    assert queries(affected)[0] == queries(outside)[0]


def test_the_edit_form_round_trips_the_areas_and_recomputes(customer, open_incident, admin, nas):
    from .conftest import online

    h5, h30 = customer("5"), customer("30")
    online(h30, nas)
    incident = open_incident(areas=[LENINA_1_12])
    client = _staff(admin)
    form = client.get(f"/staff/incidents/{incident.pk}/edit/").content.decode()
    assert "Тверь; ул. Ленина; 1-12" in form
    with clock.travel_to(START + dt.timedelta(hours=1)):
        response = client.post(
            f"/staff/incidents/{incident.pk}/edit/",
            {
                "title": "Авария шире",
                "kind": "degraded",
                "starts_at": "2026-11-20T12:00",
                "description": "Чиним",
                "areas": "Тверь; ул. Ленина; 1-12",
                "nas": [str(nas.pk)],
            },
        )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.title, incident.kind, incident.affected_count) == ("Авария шире", "degraded", 2)
    assert set(incident.affected.values_list("subscriber_id", flat=True)) == {h5.pk, h30.pk}
