"""Queues, assignees, priority and the NAS or device a ticket is about: changed through one audited action, refused
field by field when wrong; the list filters by queue, assignee and SLA state; the SLA report counts met and missed
by queue and by assignee, and exports them."""

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from openpyxl import load_workbook

from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.helpdesk import actions, escalation, routing
from abonent.helpdesk.models import Queue, Ticket, TicketSource
from abonent.network.actions import do_create_nas
from abonent.staff.permissions import Role
from abonent.subscribers.actions import do_install_equipment

MSK = ZoneInfo("Europe/Moscow")
FRIDAY_15 = dt.datetime(2026, 12, 4, 15, 0, tzinfo=MSK)


@pytest.fixture
def line_one(support):
    queue = Queue.objects.create(name="Line 1", supervisor=support)
    queue.members.add(support)
    return queue


@pytest.fixture
def network_queue():
    return Queue.objects.create(name="Network")


@pytest.fixture
def friday_ticket(customer, settings):
    settings.ABONENT_HELPDESK_TICKETS_PER_DAY = 50

    def make(subject="Нет интернета"):
        data = actions.TicketData(category="no_connection", subject=subject, text="Не работает")
        with clock.travel_to(FRIDAY_15):
            return actions.do_open_ticket(customer, data, source=TicketSource.PORTAL, acting_user=None)

    return make


def test_assigning_and_moving_between_queues_is_audited_with_before_and_after(
    friday_ticket, support, line_one, network_queue, make_staff
):
    engineer = make_staff(Role.ENGINEER, username="engineer")
    ticket = friday_ticket()
    routing.do_route_ticket(ticket, routing.Routing(queue_id=line_one.pk, assignee_id=support.pk), acting_user=support)
    routing.do_route_ticket(
        ticket,
        routing.Routing(queue_id=network_queue.pk, assignee_id=engineer.pk),
        acting_user=support,
        reason="Авария на узле",
    )
    ticket.refresh_from_db()
    assert (ticket.queue, ticket.assignee) == (network_queue, engineer)
    first, second = AuditEvent.objects.filter(action="ticket.routed").order_by("id")
    assert (first.before, first.after) == (
        {"assignee": None, "queue": None},
        {"assignee": support.pk, "queue": line_one.pk},
    )
    assert (second.before, second.after, second.reason) == (
        {"assignee": support.pk, "queue": line_one.pk},
        {"assignee": engineer.pk, "queue": network_queue.pk},
        "Авария на узле",
    )
    # The same again is no change: nothing written.
    routing.do_route_ticket(ticket, routing.Routing(queue_id=network_queue.pk), acting_user=support)
    assert AuditEvent.objects.filter(action="ticket.routed").count() == 2


def test_bad_routing_is_refused_field_by_field_and_nothing_changes(
    friday_ticket, support, make_staff, other_branch, cashier, make_subscriber, admin
):
    ticket = friday_ticket()
    elsewhere = make_staff(Role.SUPPORT, username="klin", branches=[other_branch])
    neighbour = make_subscriber(last_name="Петров", phone="+79161110000")
    with clock.travel_to(FRIDAY_15):
        their_router = do_install_equipment(
            neighbour, serial_or_mac="ZTE123", ownership="rent", kind="ont", vendor="ZTE", acting_user=admin
        ).equipment
    with pytest.raises(ValidationError) as refused:
        routing.do_route_ticket(
            ticket,
            routing.Routing(
                queue_id=999999,
                assignee_id=elsewhere.pk,
                priority="urgent!",
                nas_id=999999,
                equipment_id=their_router.pk,
            ),
            acting_user=support,
        )
    codes = {name: errors[0].code for name, errors in refused.value.error_dict.items()}
    assert codes == {
        "queue": "queue_invalid",
        "assignee": "assignee_invalid",  # another branch's staff cannot see this subscriber
        "priority": "priority_invalid",
        "nas": "nas_invalid",
        "equipment": "equipment_invalid",  # the neighbour's device
    }
    with pytest.raises(ValidationError):
        routing.do_route_ticket(ticket, routing.Routing(assignee_id=cashier.pk), acting_user=support)
    with pytest.raises(PermissionDenied):
        routing.do_route_ticket(ticket, routing.Routing(priority="high"), acting_user=cashier)
    with pytest.raises(PermissionDenied):  # another branch's staff cannot route it either
        routing.do_route_ticket(ticket, routing.Routing(priority="high"), acting_user=elsewhere)
    ticket.refresh_from_db()
    assert (ticket.queue_id, ticket.assignee_id, ticket.priority, ticket.nas_id, ticket.equipment_id) == (
        None,
        None,
        "normal",
        None,
        None,
    )
    assert not AuditEvent.objects.filter(action="ticket.routed").exists()


def test_a_ticket_links_to_a_nas_and_to_the_subscribers_device(friday_ticket, support, admin, customer, client_of):
    ticket = friday_ticket()
    nas = do_create_nas(
        acting_user=admin, name="bras-1", ip_address="10.0.0.1", secret="s3cret-s3cret-s3cret", vendor="mikrotik"
    )
    with clock.travel_to(FRIDAY_15):
        device = do_install_equipment(
            customer, serial_or_mac="HW777", ownership="rent", kind="router", vendor="Huawei", acting_user=admin
        ).equipment
    response = client_of(support).post(
        f"/staff/helpdesk/{ticket.pk}/route/",
        {"priority": "high", "nas": nas.pk, "equipment": device.pk, "queue": "", "assignee": ""},
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert (ticket.nas, ticket.equipment, ticket.priority) == (nas, device, "high")
    page = client_of(support).get(f"/staff/helpdesk/{ticket.pk}/").content.decode()
    assert "bras-1" in page and "HW777" in page


def test_the_route_form_shows_a_refusal_as_a_422(friday_ticket, support, client_of):
    ticket = friday_ticket()
    response = client_of(support).post(f"/staff/helpdesk/{ticket.pk}/route/", {"priority": "nonsense"})
    assert response.status_code == 422
    assert Ticket.objects.get(pk=ticket.pk).priority == "normal"


def test_the_list_filters_by_queue_assignee_and_sla_state(friday_ticket, support, line_one, client_of):
    mine, queued, late = friday_ticket("Моя"), friday_ticket("В очереди"), friday_ticket("Просрочена")
    routing.do_route_ticket(mine, routing.Routing(assignee_id=support.pk), acting_user=support)
    routing.do_route_ticket(queued, routing.Routing(queue_id=line_one.pk), acting_user=support)
    with clock.travel_to(dt.datetime(2026, 12, 7, 11, 0, tzinfo=MSK)):
        actions.do_comment_ticket(mine, text="Смотрим", acting_user=support)
        actions.do_comment_ticket(queued, text="Смотрим", acting_user=support)
    client = client_of(support)

    def numbers(**query) -> list[int]:
        with clock.travel_to(dt.datetime(2026, 12, 7, 15, 0, tzinfo=MSK)):
            html = client.get("/staff/helpdesk/", query).content.decode()
        return sorted(t.number for t in (mine, queued, late) if f'data-ticket="{t.number}"' in html)

    assert numbers(assignee="me") == [mine.number]
    assert numbers(assignee="none") == sorted([queued.number, late.number])
    assert numbers(queue=line_one.pk) == [queued.number]
    assert numbers(sla="overdue") == [late.number]  # no answer by Monday 14:00
    assert numbers(sla="on_track") == sorted([mine.number, queued.number])
    assert client.get("/staff/helpdesk/", {"sla": "bogus", "queue": "abc"}).status_code == 200


def test_the_sla_report_counts_met_and_missed_by_queue_and_by_assignee_and_exports(
    friday_ticket, support, line_one, client_of
):
    on_time, late, running = friday_ticket("В срок"), friday_ticket("Поздно"), friday_ticket("Идёт")
    for ticket in (on_time, late):
        routing.do_route_ticket(
            ticket, routing.Routing(queue_id=line_one.pk, assignee_id=support.pk), acting_user=support
        )
    with clock.travel_to(dt.datetime(2026, 12, 7, 10, 0, tzinfo=MSK)):
        actions.do_comment_ticket(on_time, text="Готово", acting_user=support, status="resolved")
    escalation.sweep(dt.datetime(2026, 12, 7, 14, 0, tzinfo=MSK))  # late and running: first response missed
    with clock.travel_to(dt.datetime(2026, 12, 7, 15, 0, tzinfo=MSK)):
        actions.do_comment_ticket(late, text="Готово", acting_user=support, status="resolved")
    client = client_of(support)
    query = {"date_from": "2026-12-01", "date_to": "2026-12-07"}
    with clock.travel_to(dt.datetime(2026, 12, 7, 16, 0, tzinfo=MSK)):
        html = client.get("/staff/helpdesk/sla/", query).content.decode()
        exported = client.get("/staff/helpdesk/sla/", {**query, "format": "csv"})
        rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig")), delimiter=";"))
        by_agent = client.get("/staff/helpdesk/sla/", {**query, "group_by": "assignee", "format": "xlsx"})
    assert 'data-group="Line 1"' in html and 'data-group="(no queue)"' in html
    assert rows[0][:4] == ["Group", "Tickets", "First response met", "First response breached"]
    assert rows[1:] == [
        ["Line 1", "2", "1", "1", "50.0", "2", "0", "100.0"],
        ["(no queue)", "1", "0", "1", "0.0", "0", "0", ""],
        ["Total", "3", "1", "2", "33.3", "2", "0", "100.0"],
    ]
    sheet = load_workbook(io.BytesIO(b"".join(by_agent.streaming_content)), read_only=True).active
    values = [row[:3] for row in sheet.iter_rows(values_only=True)]
    assert values[1:] == [("support", 2, 1), ("(unassigned)", 1, 0), ("Total", 3, 1)]
    assert running.first_response_at is None


def test_the_demo_seeds_queues_with_supervisors_and_the_public_holidays_once(db, now):
    from abonent.core.seeding import SeedContext
    from abonent.helpdesk.models import Holiday
    from abonent.helpdesk.seeding import seed_helpdesk
    from abonent.staff.seeding import seed_staff

    ctx = SeedContext(subscribers=0, demo=True)
    seed_staff(ctx)
    seed_helpdesk(ctx)
    seed_helpdesk(ctx)  # a second demo start reuses its data
    line_one = Queue.objects.get(name="Линия 1")
    assert line_one.supervisor.username == "operator"
    assert sorted(line_one.members.values_list("username", flat=True)) == ["operator", "support"]
    assert Queue.objects.count() == 2
    assert Holiday.objects.filter(date=dt.date(2026, 11, 4)).exists()
    assert Holiday.objects.count() == 2 * 14


def test_the_list_with_timers_queues_and_assignees_costs_the_same_queries_for_3_or_12_tickets(
    friday_ticket, support, line_one, client_of
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_of(support)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/staff/helpdesk/").status_code == 200
        return len(captured)

    for n in range(3):
        ticket = friday_ticket(f"Заявка {n}")
        routing.do_route_ticket(
            ticket, routing.Routing(queue_id=line_one.pk, assignee_id=support.pk), acting_user=support
        )
    few = queries()
    for n in range(3, 12):
        ticket = friday_ticket(f"Заявка {n}")
        routing.do_route_ticket(
            ticket, routing.Routing(queue_id=line_one.pk, assignee_id=support.pk), acting_user=support
        )
    assert queries() == few
