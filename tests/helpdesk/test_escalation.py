"""Escalation to the queue's supervisor at 80 % of a target, and breaches, recorded once: a second sweep, the worker's
job run twice and two sweeps at the same moment all leave one escalation, one audit row and one notice."""

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from abonent.core import clock, scheduler
from abonent.core.models import AuditEvent
from abonent.helpdesk import actions, escalation, routing, tasks
from abonent.helpdesk.models import Queue, SlaEvent, SlaEventKind, Ticket, TicketSource, TicketStatus
from abonent.staff.permissions import Role

MSK = ZoneInfo("Europe/Moscow")
FRIDAY_15 = dt.datetime(2026, 12, 4, 15, 0, tzinfo=MSK)
MONDAY = dt.datetime(2026, 12, 7, tzinfo=MSK)


def at(hour: int, minute: int = 0) -> dt.datetime:
    return MONDAY.replace(hour=hour, minute=minute)


@pytest.fixture
def boss(make_staff):
    return make_staff(Role.SUPPORT, username="boss")


@pytest.fixture
def line_one(boss, support):
    queue = Queue.objects.create(name="Line 1", supervisor=boss)
    queue.members.add(support)
    return queue


@pytest.fixture
def queued_ticket(customer, line_one, support):
    def make(subject="Нет интернета"):
        data = actions.TicketData(category="no_connection", subject=subject, text="Не работает")
        with clock.travel_to(FRIDAY_15):
            ticket = actions.do_open_ticket(customer, data, source=TicketSource.PORTAL, acting_user=None)
            return routing.do_route_ticket(ticket, routing.Routing(queue_id=line_one.pk), acting_user=support)

    return make


def _escalations(ticket) -> tuple[int, int]:
    events = SlaEvent.objects.filter(ticket=ticket, kind=SlaEventKind.ESCALATED).count()
    audits = AuditEvent.objects.filter(object_id=str(ticket.pk), action="ticket.sla_escalated").count()
    return events, audits


def test_nothing_happens_before_80_percent_of_the_target(queued_ticket):
    ticket = queued_ticket()
    assert escalation.sweep(at(12, 23)) == {"escalated": 0, "first_response_breached": 0, "resolution_breached": 0}
    assert _escalations(ticket) == (0, 0)


def test_at_80_percent_the_supervisor_is_told_once_however_often_the_sweep_runs(queued_ticket, boss, client_of):
    ticket = queued_ticket()
    assert escalation.sweep(at(12, 24))["escalated"] == 1
    assert escalation.sweep(at(12, 25))["escalated"] == 0
    assert escalation.sweep(at(13, 0))["escalated"] == 0
    assert _escalations(ticket) == (1, 1)
    event = SlaEvent.objects.get(ticket=ticket)
    assert (event.recipient, event.created_at) == (boss, at(12, 24))
    assert Ticket.objects.get(pk=ticket.pk).escalated_at == at(12, 24)
    audit = AuditEvent.objects.get(action="ticket.sla_escalated")
    assert audit.after["supervisor"] == boss.pk
    # The supervisor's console shows it; the queue's member does not get the notice.
    with clock.travel_to(at(12, 30)):
        page = client_of(boss).get("/staff/helpdesk/").content.decode()
    assert 'id="sla-alerts"' in page and f'href="/staff/helpdesk/{ticket.pk}/"' in page


def test_the_worker_job_run_twice_escalates_once(queued_ticket):
    ticket = queued_ticket()
    assert "helpdesk.sla_sweep" in scheduler.registered_jobs()
    with clock.travel_to(at(12, 30)):
        first, second = tasks.sla_sweep.call(), tasks.sla_sweep.call()
    assert (first["escalated"], second["escalated"]) == (1, 0)
    assert _escalations(ticket) == (1, 1)


def test_a_breach_is_recorded_when_it_happens_and_once(queued_ticket):
    ticket = queued_ticket()
    escalation.sweep(at(13, 59))
    assert Ticket.objects.get(pk=ticket.pk).first_response_breached_at is None
    assert escalation.sweep(at(14, 0))["first_response_breached"] == 1
    assert escalation.sweep(at(14, 1))["first_response_breached"] == 0
    ticket.refresh_from_db()
    assert ticket.first_response_breached_at == at(14, 0)
    assert SlaEvent.objects.filter(ticket=ticket).count() == 2  # the escalation and the breach
    assert AuditEvent.objects.filter(action="ticket.sla_first_response_breached").count() == 1


def test_a_ticket_answered_or_waiting_is_not_escalated_for_that_clock(queued_ticket, support):
    answered, waiting = queued_ticket("Отвечен"), queued_ticket("Ждём абонента")
    with clock.travel_to(at(10, 0)):
        actions.do_comment_ticket(answered, text="Смотрим", acting_user=support)
        actions.do_comment_ticket(
            waiting, text="Перезагрузите", acting_user=support, status=TicketStatus.WAITING_SUBSCRIBER
        )
    # Both answered in time; their resolution is due Wednesday, its 80 % mark is Tuesday afternoon.
    assert escalation.sweep(at(18, 0))["escalated"] == 0
    assert escalation.sweep(dt.datetime(2026, 12, 9, 16, 0, tzinfo=MSK)) == {
        "escalated": 1,  # the answered one, its resolution running; the waiting one is paused
        "first_response_breached": 0,
        "resolution_breached": 1,
    }
    assert _escalations(waiting) == (0, 0)


def test_a_ticket_without_a_queue_is_escalated_to_nobody_but_still_once_and_audited(customer):
    data = actions.TicketData(category="no_connection", subject="Нет интернета", text="Не работает")
    with clock.travel_to(FRIDAY_15):
        ticket = actions.do_open_ticket(customer, data, source=TicketSource.PORTAL, acting_user=None)
    escalation.sweep(at(13, 0))
    escalation.sweep(at(13, 0))
    assert _escalations(ticket) == (1, 1)
    assert SlaEvent.objects.get(ticket=ticket).recipient is None


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_the_same_moment_escalate_each_ticket_once(queued_ticket, settings):
    if connection.vendor != "postgresql":
        pytest.skip("two transactions at once need PostgreSQL")
    settings.ABONENT_HELPDESK_TICKETS_PER_DAY = 100
    tickets = [queued_ticket(f"Заявка {n}") for n in range(15)]
    start = threading.Barrier(2)
    results = []

    def run():
        try:
            start.wait()
            results.append(escalation.sweep(at(12, 30)))
        except Exception as exc:  # a failure to see, not a missing result
            results.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(r["escalated"] for r in results) == 15, results
    assert SlaEvent.objects.filter(kind=SlaEventKind.ESCALATED).count() == 15
    assert AuditEvent.objects.filter(action="ticket.sla_escalated").count() == 15
    assert all(_escalations(t) == (1, 1) for t in tickets)


def test_a_ticket_answered_after_the_sweep_chose_it_is_not_escalated(queued_ticket, support):
    ticket = queued_ticket()
    with clock.travel_to(at(12, 29)):
        actions.do_comment_ticket(ticket, text="Смотрим", acting_user=support)
    # As if the sweep had read its list before the reply committed: the row, read again under lock, says no.
    assert escalation._once(ticket.pk, SlaEventKind.ESCALATED, "escalated_at", at(12, 30)) is False
    assert _escalations(ticket) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_a_ticket_locked_by_a_long_action_is_left_for_the_next_sweep_not_waited_for(queued_ticket, monkeypatch, caplog):
    if connection.vendor != "postgresql":
        pytest.skip("row locks with a deadline need PostgreSQL")
    from django.db import transaction

    monkeypatch.setattr(escalation, "LOCK_WAIT_SECONDS", 0.2)
    ticket = queued_ticket()
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Ticket.objects.select_for_update().get(pk=ticket.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        assert escalation.sweep(at(12, 30))["escalated"] == 0
        assert "is locked, left for the next sweep" in caplog.text
    finally:
        release.set()
        holder.join(10)
    assert escalation.sweep(at(12, 31))["escalated"] == 1
    assert _escalations(ticket) == (1, 1)
