"""Attack review of where an incident shows: markup in its title and text is shown as text everywhere (the portal's
banner and statement, the card's header and history, the ticket page, the console's pages, the bulk-message list),
and a branch-limited operator's incident page names no subscriber of another branch."""

import datetime as dt
import re

import pytest

from abonent.core import clock
from abonent.helpdesk.actions import TicketData, do_open_ticket
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.compensation import do_compensate_incident
from abonent.helpdesk.incidents.validation import IncidentData
from abonent.staff.permissions import Role

from .conftest import LENINA_1_12, START
from .test_pages import _portal, _staff

pytestmark = pytest.mark.django_db
TITLE = '<script>alert("t")</script><img src=x onerror=alert(1)>'
TEXT = '<b onmouseover="alert(2)">Авария</b>\n<iframe src="javascript:alert(3)"></iframe>'
RAW = ("<script>alert", "<img src=x", "<b onmouseover", "<iframe")


def _raw_markup(html: str) -> list[str]:
    return [r for r in RAW if r in html]


def test_markup_in_the_title_and_text_is_escaped_everywhere(customer, admin, django_capture_on_commit_callbacks):
    affected = customer("5")
    with clock.travel_to(START + dt.timedelta(minutes=30)):
        incident = actions.do_open_incident(
            IncidentData(title=TITLE, description=TEXT, kind="outage", starts_at=START, areas=[LENINA_1_12]),
            acting_user=admin,
        )
        with django_capture_on_commit_callbacks(execute=True):
            ticket = do_open_ticket(
                affected,
                TicketData(category="no_connection", subject="Нет сети", text="Не работает"),
                source="portal",
                acting_user=None,
            )
        actions.do_message_incident(incident, channel="sms", subject="", body="Авария", acting_user=admin)
        home = _portal(affected).get("/my/").content.decode()
        staff = _staff(admin)
        pages = {
            "portal home": home,
            "card": staff.get(f"/staff/subscribers/{affected.pk}/").content.decode(),
            "ticket": staff.get(f"/staff/helpdesk/{ticket.pk}/").content.decode(),
            "incident": staff.get(f"/staff/incidents/{incident.pk}/").content.decode(),
            "list": staff.get("/staff/incidents/").content.decode(),
            "edit": staff.get(f"/staff/incidents/{incident.pk}/edit/").content.decode(),
            "bulk list": staff.get("/staff/notifications/bulk/").content.decode(),
        }
    assert "&lt;script&gt;alert" in home  # the banner is there, as text
    with clock.travel_to(START + dt.timedelta(hours=2)):
        actions.do_resolve_incident(incident, acting_user=admin)
    with clock.travel_to(START + dt.timedelta(days=1)):
        do_compensate_incident(incident, days=1, acting_user=admin)
        pages["portal statement"] = _portal(affected).get("/my/pay/statement/").content.decode()
        pages["card after"] = staff.get(f"/staff/subscribers/{affected.pk}/").content.decode()
    assert {name: _raw_markup(html) for name, html in pages.items() if _raw_markup(html)} == {}


def test_a_branch_limited_operators_incident_page_names_nobody_of_another_branch(
    customer, open_incident, make_staff, branch, other_branch, admin, django_capture_on_commit_callbacks
):
    # Defence that holds: the affected list and the linked requests are their branch's only.
    mine = customer("5", last_name="Своев")
    theirs = customer("6", branch_obj=other_branch, last_name="Чужаков")
    incident = open_incident(areas=[LENINA_1_12])
    with django_capture_on_commit_callbacks(execute=True), clock.travel_to(START + dt.timedelta(hours=1)):
        for who, subject in ((mine, "Своя заявка"), (theirs, "Чужая заявка")):
            do_open_ticket(
                who, TicketData(category="no_connection", subject=subject, text="—"), source="portal", acting_user=None
            )
    html = _staff(make_staff(Role.OPERATOR, branches=[branch])).get(f"/staff/incidents/{incident.pk}/").content.decode()
    assert "Своев" in html and "Своя заявка" in html
    assert "Чужаков" not in html and "Чужая заявка" not in html and theirs.account_number not in html
    assert f'data-subscriber="{theirs.pk}"' not in html and not re.search(rf"/subscribers/{theirs.pk}/", html)


@pytest.mark.django_db(transaction=True)
def test_a_second_press_while_a_long_compensation_runs_is_no_500(customer, open_incident, admin, monkeypatch):
    # A city's compensation runs a minute or more (docs) under the incident's row lock; a second press (a double
    # click, a colleague) waits its lock deadline and must then say so, not answer a 500. Nothing is credited by it.
    import threading

    from django.db import connection, connections, transaction

    from abonent.core import deadlines
    from abonent.helpdesk.incidents import compensation
    from abonent.helpdesk.incidents.models import Compensation, Incident

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL: a row lock held by another connection")
    customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    with clock.travel_to(START + dt.timedelta(hours=2)):
        actions.do_resolve_incident(incident, acting_user=admin)
    # the lock deadline shortened from 30 s, so that the test waits half a second
    monkeypatch.setattr(compensation, "db_deadline", lambda **kw: deadlines.db_deadline(lock=0.5, statement=10))
    locked, release = threading.Event(), threading.Event()

    def hold():  # the first, long compensation: the incident's row locked
        try:
            with transaction.atomic():
                Incident.objects.select_for_update().get(pk=incident.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        response = _staff(admin).post(f"/staff/incidents/{incident.pk}/compensate/", {"days": "3"})
    finally:
        release.set()
        holder.join(10)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert Compensation.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_opening_an_incident_past_the_statement_deadline_is_no_500(customer, admin, monkeypatch):
    # The affected set of a whole city computed past the statement deadline: a page saying nothing was done, not a 500
    from django.db import connection

    from abonent.core import deadlines
    from abonent.helpdesk.incidents import actions as incident_actions
    from abonent.helpdesk.incidents.models import Incident

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL: statement_timeout")
    customer("5")

    def slow_deadline(**kw):  # a statement deadline no statement meets, then one statement that sleeps past it
        deadlines.db_deadline(lock=1, statement=0.05)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.2)")

    monkeypatch.setattr(incident_actions, "db_deadline", slow_deadline)
    with clock.travel_to(START + dt.timedelta(minutes=30)):
        response = _staff(admin).post(
            "/staff/incidents/new/",
            {"title": "Авария", "kind": "outage", "starts_at": "2026-11-20T12:00", "description": "Нет связи",
             "areas": "Тверь; ул. Ленина; 1-12"},
        )  # fmt: skip
    assert response.status_code == 503 and response["Retry-After"]
    assert "nothing was done" in response.content.decode()
    assert Incident.objects.count() == 0
