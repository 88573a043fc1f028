"""Attack review of the SLA clock, its calendar and the SLA report: absurd periods, a pause of years, a target of
years, holidays covering years, a DST gap in the opening hours. Each is a 4xx or a sane clock, never a 500."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from abonent.core import clock
from abonent.helpdesk import actions, sla
from abonent.helpdesk.models import Holiday, SlaPolicy, Ticket, TicketSource, TicketStatus
from abonent.helpdesk.working_time import Calendar, add_working_time, working_time_between

MSK = ZoneInfo("Europe/Moscow")
FRIDAY_15 = dt.datetime(2026, 12, 4, 15, 0, tzinfo=MSK)
OFFICE = dict.fromkeys(range(5), (dt.time(9), dt.time(18)))


def _open(customer, *, priority="normal", by=None, at=FRIDAY_15):
    data = actions.TicketData(category="no_connection", subject="Нет интернета", text="Не работает", priority=priority)
    with clock.travel_to(at):
        return actions.do_open_ticket(
            customer, data, source=TicketSource.CONSOLE if by else TicketSource.PORTAL, acting_user=by
        )


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "0001-01-01", "date_to": "0001-01-01"},
        {"date_from": "9999-12-31", "date_to": "9999-12-31"},
        {"date_from": "0001-01-01", "date_to": "9999-12-31"},
        {"date_from": "9999-12-31", "date_to": "0001-01-01", "format": "csv"},
    ],
)
def test_the_sla_report_of_an_absurd_period_is_no_500(support, client_of, now, query):
    response = client_of(support).get("/staff/helpdesk/sla/", query)
    assert response.status_code in (200, 422)


def test_a_ticket_waiting_for_the_subscriber_for_four_years_takes_their_answer(customer, support):
    ticket = _open(customer)
    with clock.travel_to(FRIDAY_15 + dt.timedelta(hours=1)):
        actions.do_change_ticket_status(ticket, status=TicketStatus.WAITING_SUBSCRIBER, acting_user=support)
    later = FRIDAY_15 + dt.timedelta(days=4 * 365)
    with clock.travel_to(later):
        actions.do_comment_ticket(ticket, text="Я вернулся", acting_user=None)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.IN_PROGRESS
    # The whole wait counts: the clock had run 1 working hour of 27, so 26 are left after the answer.
    cal = sla.office_calendar()
    assert ticket.resolution_due_at > later
    assert working_time_between(cal, later, ticket.resolution_due_at) == dt.timedelta(hours=26)


def test_a_policy_of_years_in_office_hours_opens_a_ticket(customer, db):
    # 1 000 000 working minutes is about 7 years of office hours: a mistake, but not a reason to refuse every ticket.
    SlaPolicy.objects.create(priority="normal", first_response_minutes=60, resolution_minutes=1_000_000)
    ticket = _open(customer)
    assert ticket.resolution_due_at > FRIDAY_15 + dt.timedelta(days=6 * 365)


def test_holidays_covering_years_do_not_make_opening_a_ticket_a_500(customer, db):
    start = dt.date(2026, 12, 1)
    Holiday.objects.bulk_create(Holiday(date=start + dt.timedelta(days=n), name="x") for n in range(4 * 366))
    ticket = _open(customer)
    assert Ticket.objects.filter(pk=ticket.pk).exists()
    assert ticket.first_response_due_at is not None and ticket.resolution_due_at is not None


def test_a_policy_of_the_largest_target_opens_a_ticket(customer, db):
    SlaPolicy.objects.create(priority="normal", first_response_minutes=2**31 - 1, resolution_minutes=2**31 - 1)
    ticket = _open(customer)
    assert Ticket.objects.filter(pk=ticket.pk).exists()


def test_a_window_in_a_dst_gap_is_never_negative_working_time():
    # Berlin springs forward at 02:00 on 2026-03-29 (a Sunday): 02:30 does not exist that day.
    cal = Calendar(time_zone="Europe/Berlin", hours={6: (dt.time(2, 30), dt.time(3, 15))})
    start = dt.datetime(2026, 3, 28, tzinfo=dt.UTC)
    end = dt.datetime(2026, 3, 30, tzinfo=dt.UTC)
    assert working_time_between(cal, start, end) >= dt.timedelta(0)
    due = add_working_time(cal, start, dt.timedelta(minutes=10))
    assert working_time_between(cal, start, due) == dt.timedelta(minutes=10)


def test_a_priority_change_of_a_pre_sla_ticket_waiting_for_the_subscriber_starts_a_paused_clock(customer, support):
    from abonent.helpdesk import escalation, routing

    ticket = _open(customer)
    Ticket.objects.filter(pk=ticket.pk).update(
        first_response_target_minutes=None, resolution_target_minutes=None, first_response_due_at=None,
        first_response_warn_at=None, resolution_due_at=None, resolution_warn_at=None,
    )  # fmt: skip
    ticket.refresh_from_db()
    with clock.travel_to(FRIDAY_15 + dt.timedelta(minutes=5)):
        actions.do_change_ticket_status(ticket, status=TicketStatus.WAITING_SUBSCRIBER, acting_user=support)
    later = FRIDAY_15 + dt.timedelta(days=30)
    with clock.travel_to(later):
        routing.do_route_ticket(ticket, routing.Routing(priority="high"), acting_user=support)
    ticket.refresh_from_db()
    # Waiting for the subscriber: the new clock is paused from now, not running since the opening a month ago.
    assert ticket.resolution_paused_at == later
    escalation.sweep(later + dt.timedelta(minutes=1))
    ticket.refresh_from_db()
    assert ticket.resolution_breached_at is None


def test_defence_holds_the_sla_report_and_its_export_count_only_the_users_branches(
    customer, make_subscriber, other_branch, make_staff, branch, client_of, admin
):
    import csv
    import io

    from abonent.helpdesk import routing
    from abonent.helpdesk.models import Queue
    from abonent.staff.permissions import Role

    klin_agent = make_staff(Role.SUPPORT, username="klin-agent", branches=[other_branch])
    local = make_staff(Role.SUPPORT, username="local", branches=[branch])
    secret_queue = Queue.objects.create(name="Klin only")
    theirs = _open(make_subscriber(last_name="Клинский", phone="+79160000001", branch_obj=other_branch))
    routing.do_route_ticket(
        theirs, routing.Routing(queue_id=secret_queue.pk, assignee_id=klin_agent.pk), acting_user=admin
    )
    _open(customer)
    client = client_of(local)
    query = {"date_from": "2026-12-01", "date_to": "2026-12-31"}
    with clock.travel_to(FRIDAY_15):
        for group_by in ("queue", "assignee"):
            page = client.get("/staff/helpdesk/sla/", {**query, "group_by": group_by}).content.decode()
            assert "Klin only" not in page and "klin-agent" not in page
            exported = client.get("/staff/helpdesk/sla/", {**query, "group_by": group_by, "format": "csv"})
            rows = list(
                csv.reader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig")), delimiter=";")
            )
            assert rows[-1][:2] == ["Total", "1"]


def test_a_policy_tightened_later_does_not_change_the_targets_of_a_ticket_resuming_from_a_wait(customer, support):
    ticket = _open(customer)  # normal: 8 h / 27 h in office hours
    monday = dt.datetime(2026, 12, 7, 10, 0, tzinfo=MSK)
    with clock.travel_to(monday):
        actions.do_change_ticket_status(ticket, status=TicketStatus.WAITING_SUBSCRIBER, acting_user=support)
    # The operator tightens "normal" to 1 h / 2 h: tickets opened from now on, not the ones already running.
    SlaPolicy.objects.create(priority="normal", first_response_minutes=60, resolution_minutes=120)
    with clock.travel_to(monday + dt.timedelta(hours=1)):
        actions.do_comment_ticket(ticket, text="Перезагрузил, не помогло", acting_user=None)
    ticket.refresh_from_db()
    assert (ticket.first_response_target_minutes, ticket.resolution_target_minutes) == (480, 27 * 60)
    assert ticket.first_response_due_at == dt.datetime(2026, 12, 7, 14, 0, tzinfo=MSK)
    # 27 working hours plus the 1 hour waited: Friday 3, Monday 9, Tuesday 9, Wednesday 7.
    assert ticket.resolution_due_at == dt.datetime(2026, 12, 9, 16, 0, tzinfo=MSK)
    assert ticket.resolution_breached_at is None
