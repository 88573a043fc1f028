"""SLA timers of tickets: counted in working hours across a weekend and a holiday, around the clock for critical
tickets, paused while waiting for the subscriber, recomputed on a priority change; shown on the list and the page."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from abonent.core import clock
from abonent.helpdesk import actions, routing, sla
from abonent.helpdesk.models import Holiday, SlaPolicy, Ticket, TicketSource, TicketStatus, WorkingCalendar

MSK = ZoneInfo("Europe/Moscow")


def msk(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=MSK)


FRIDAY_15 = msk(2026, 12, 4, 15, 0)


@pytest.fixture
def opened_on_friday(customer):
    def make(priority="normal", category="no_connection", by=None, at=FRIDAY_15):
        data = actions.TicketData(category=category, subject="Нет интернета", text="Не работает", priority=priority)
        with clock.travel_to(at):
            return actions.do_open_ticket(
                customer, data, source=TicketSource.CONSOLE if by else TicketSource.PORTAL, acting_user=by
            )

    return make


def test_a_normal_ticket_opened_on_friday_afternoon_is_due_after_the_weekend_in_working_hours(opened_on_friday):
    ticket = opened_on_friday()
    # 8 working hours: 3 on Friday (to 18:00), 5 on Monday from 09:00.
    assert ticket.first_response_due_at == msk(2026, 12, 7, 14, 0)
    # 80 % of 8 h = 6 h 24 min: the supervisor hears on Monday at 12:24.
    assert ticket.first_response_warn_at == msk(2026, 12, 7, 12, 24)
    # 3 working days = 27 h: Friday 3, Monday 9, Tuesday 9, Wednesday 6.
    assert ticket.resolution_due_at == msk(2026, 12, 9, 15, 0)
    assert (ticket.first_response_target_minutes, ticket.resolution_target_minutes) == (480, 27 * 60)


def test_a_holiday_on_monday_moves_the_due_moment_to_tuesday(opened_on_friday, db):
    Holiday.objects.create(date=dt.date(2026, 12, 7), name="Company day")
    ticket = opened_on_friday()
    assert ticket.first_response_due_at == msk(2026, 12, 8, 14, 0)
    assert ticket.resolution_due_at == msk(2026, 12, 10, 15, 0)


def test_a_critical_ticket_runs_around_the_clock_two_and_eight_hours(opened_on_friday, support):
    ticket = opened_on_friday(priority="critical", by=support)
    assert ticket.first_response_due_at == msk(2026, 12, 4, 17, 0)
    assert ticket.resolution_due_at == msk(2026, 12, 4, 23, 0)  # Friday night, no waiting for Monday


def test_a_policy_for_the_category_wins_over_the_default_and_uses_its_calendar(opened_on_friday, db):
    weekends = WorkingCalendar.objects.create(name="Weekends too")
    for weekday in range(7):
        weekends.hours.create(weekday=weekday, opens=dt.time(10), closes=dt.time(20))
    SlaPolicy.objects.create(
        category="no_connection",
        priority="normal",
        first_response_minutes=60,
        resolution_minutes=600,
        calendar=weekends,
    )
    ticket = opened_on_friday()
    assert ticket.first_response_due_at == msk(2026, 12, 4, 16, 0)
    assert ticket.resolution_due_at == msk(2026, 12, 5, 15, 0)  # 5 h on Friday to 20:00, 5 h on Saturday from 10:00
    other = opened_on_friday(category="billing")  # no policy for billing: the default
    assert other.first_response_due_at == msk(2026, 12, 7, 14, 0)


def test_waiting_for_the_subscriber_pauses_the_resolution_clock_and_the_wait_is_added(opened_on_friday, support):
    ticket = opened_on_friday()
    with clock.travel_to(msk(2026, 12, 7, 10, 0)):  # Monday: 3 h + 1 h of working time used
        actions.do_comment_ticket(
            ticket, text="Перезагрузите роутер", acting_user=support, status=TicketStatus.WAITING_SUBSCRIBER
        )
    ticket.refresh_from_db()
    assert ticket.resolution_paused_at == msk(2026, 12, 7, 10, 0)
    with clock.travel_to(msk(2026, 12, 8, 10, 0)):  # a whole working day (9 h) waited
        assert sla.resolution_timer(ticket, clock.now()).state == sla.PAUSED
        actions.do_comment_ticket(ticket, text="Не помогло", acting_user=None)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.IN_PROGRESS and ticket.resolution_paused_at is None
    assert ticket.resolution_paused_seconds == 9 * 3600
    assert ticket.resolution_due_at == msk(2026, 12, 10, 15, 0)  # Wednesday 15:00 plus the 9 h waited


def test_a_priority_change_takes_the_new_targets_from_the_opening(opened_on_friday, support):
    ticket = opened_on_friday()
    with clock.travel_to(msk(2026, 12, 4, 15, 30)):
        ticket = routing.do_route_ticket(ticket, routing.Routing(priority="critical"), acting_user=support)
    assert ticket.first_response_due_at == msk(2026, 12, 4, 17, 0)
    assert Ticket.objects.get(pk=ticket.pk).resolution_due_at == msk(2026, 12, 4, 23, 0)


def test_a_late_first_reply_and_a_late_resolution_are_recorded_as_breached_at_once(opened_on_friday, support):
    ticket = opened_on_friday()
    with clock.travel_to(msk(2026, 12, 7, 15, 0)):  # an hour after the first response was due
        actions.do_comment_ticket(ticket, text="Смотрим", acting_user=support)
    ticket.refresh_from_db()
    assert ticket.first_response_breached_at == msk(2026, 12, 7, 15, 0)
    assert sla.first_response_timer(ticket, clock.now()).state == sla.BREACHED
    with clock.travel_to(msk(2026, 12, 9, 14, 0)):  # resolved an hour before it was due
        actions.do_change_ticket_status(ticket, status=TicketStatus.RESOLVED, acting_user=support)
    ticket.refresh_from_db()
    assert ticket.resolution_breached_at is None
    assert sla.resolution_timer(ticket, clock.now()).state == sla.MET


def test_the_list_and_the_page_show_the_time_left_and_the_time_overdue(opened_on_friday, support, client_of):
    ticket = opened_on_friday()
    client = client_of(support)
    with clock.travel_to(msk(2026, 12, 7, 12, 0)):
        page = client.get(f"/staff/helpdesk/{ticket.pk}/").content.decode()
        listing = client.get("/staff/helpdesk/").content.decode()
    assert 'data-sla="running"' in page and "2\xa0hours left" in page
    assert "2\xa0hours left" in listing
    with clock.travel_to(msk(2026, 12, 7, 15, 30)):
        page = client.get(f"/staff/helpdesk/{ticket.pk}/").content.decode()
    assert 'data-sla="overdue"' in page and "overdue by 1\xa0hour, 30\xa0minutes" in page


def test_the_timers_read_in_the_users_language(opened_on_friday, support, client_of, settings):
    settings.LANGUAGE_CODE = "ru"
    ticket = opened_on_friday()
    client = client_of(support)
    with clock.travel_to(msk(2026, 12, 7, 12, 0)):
        page = client.get(f"/staff/helpdesk/{ticket.pk}/", headers={"accept-language": "ru"}).content.decode()
    assert "2\xa0часа" in page


def test_resolving_after_a_long_wait_for_the_subscriber_is_not_a_breach(opened_on_friday, support):
    ticket = opened_on_friday()
    with clock.travel_to(msk(2026, 12, 7, 10, 0)):
        actions.do_comment_ticket(ticket, text="Пришлите фото", acting_user=support, status="waiting_subscriber")
    # A week of waiting: far past Wednesday's due moment, but the clock was paused all along.
    with clock.travel_to(msk(2026, 12, 14, 10, 0)):
        actions.do_change_ticket_status(ticket, status=TicketStatus.RESOLVED, acting_user=support)
    ticket.refresh_from_db()
    assert ticket.resolution_breached_at is None
    assert ticket.resolution_paused_seconds == 5 * 9 * 3600  # the five working days waited
    assert ticket.resolution_paused_at == msk(2026, 12, 14, 10, 0)  # resolved: paused again from now
    # Closed a month later: still met.
    with clock.travel_to(msk(2027, 1, 14, 10, 0)):
        actions.do_change_ticket_status(ticket, status=TicketStatus.CLOSED, acting_user=support)
    ticket.refresh_from_db()
    assert ticket.resolution_breached_at is None
    assert sla.resolution_timer(ticket, clock.now()).state == sla.MET


def test_a_reopened_ticket_goes_on_from_where_it_stopped(opened_on_friday, support, customer):
    ticket = opened_on_friday()
    with clock.travel_to(msk(2026, 12, 7, 10, 0)):  # 4 working hours used
        actions.do_change_ticket_status(ticket, status=TicketStatus.RESOLVED, acting_user=support)
    with clock.travel_to(msk(2026, 12, 8, 10, 0)):  # reopened by the subscriber a working day later
        actions.do_change_ticket_status(ticket, status=actions.REOPENED_STATUS, acting_user=None)
    ticket.refresh_from_db()
    assert ticket.resolution_paused_at is None
    assert ticket.resolution_due_at == msk(2026, 12, 10, 15, 0)  # 23 working hours left from Tuesday 10:00


def test_a_ticket_opened_before_sla_timers_keeps_none(customer, support, now):
    data = actions.TicketData(category="other", subject="Старая", text="До обновления")
    ticket = actions.do_open_ticket(customer, data, source=TicketSource.PORTAL, acting_user=None)
    Ticket.objects.filter(pk=ticket.pk).update(
        first_response_target_minutes=None, resolution_target_minutes=None, first_response_due_at=None,
        first_response_warn_at=None, resolution_due_at=None, resolution_warn_at=None,
    )  # fmt: skip
    ticket.refresh_from_db()
    actions.do_change_ticket_status(ticket, status=TicketStatus.WAITING_SUBSCRIBER, acting_user=support)
    ticket.refresh_from_db()
    assert (ticket.resolution_due_at, ticket.resolution_paused_at) == (None, None)
    assert sla.first_response_timer(ticket, now) is None and sla.resolution_timer(ticket, now) is None


def test_the_cards_panel_shows_the_clock_that_matters_now(opened_on_friday, support, client_of, customer):
    ticket = opened_on_friday()
    client = client_of(support)
    with clock.travel_to(msk(2026, 12, 7, 15, 0)):
        card = client.get(f"/staff/subscribers/{customer.pk}/").content.decode()
    panel = card[card.index('id="panel-tickets"') :]
    assert f'data-ticket="{ticket.number}"' in panel and 'data-sla="overdue"' in panel  # no first response yet
