"""SLA targets and timers of a ticket (docs/helpdesk-sla.md).

A ticket's targets come from the ``SlaPolicy`` of its category and priority, else of its priority for any category,
else ``DEFAULT_TARGETS``; they are counted in working time of the policy's calendar (``working_time.py``). Two
clocks run from the moment the ticket opened:

- first response: stops at the first public staff reply (``Ticket.first_response_at``);
- resolution: stops when the ticket is resolved or closed, and is paused while it waits for the subscriber (and
  while it is resolved, so a reopened ticket goes on from where it stopped). Paused working time is added to the
  target: due = start + target + paused, in working time.

``schedule`` writes the due moments and the 80 % warning marks on the ticket (no save: the caller's action saves);
``timers`` reads them for a page.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings

from .models import FINISHED_STATUSES, Holiday, SlaPolicy, Ticket, TicketPriority, TicketStatus, WorkingCalendar
from .working_time import Calendar, CalendarError, add_working_time, working_time_between

logger = logging.getLogger(__name__)

# The supervisor is warned when this share of a target has passed (in working time).
WARN_SHARE = 0.8
OFFICE_HOURS = (dt.time(9, 0), dt.time(18, 0))
WORKING_DAY_MINUTES = 9 * 60


@dataclass(frozen=True)
class Targets:
    first_response_minutes: int
    resolution_minutes: int
    around_the_clock: bool = False


# The built-in targets without an SlaPolicy row. Critical: the seed's 2 h / 8 h, around the clock (a down uplink
# does not wait for Monday). The others in office hours (Mon–Fri 09:00–18:00, a working day = 9 h): high 4 h / 2 days,
# normal 8 h / 3 days, low 2 days / 5 days.
DEFAULT_TARGETS = {
    TicketPriority.CRITICAL: Targets(120, 480, around_the_clock=True),
    TicketPriority.HIGH: Targets(240, 2 * WORKING_DAY_MINUTES),
    TicketPriority.NORMAL: Targets(480, 3 * WORKING_DAY_MINUTES),
    TicketPriority.LOW: Targets(2 * WORKING_DAY_MINUTES, 5 * WORKING_DAY_MINUTES),
}

# Statuses in which the resolution clock does not run.
PAUSED_STATUSES = frozenset({TicketStatus.WAITING_SUBSCRIBER, *FINISHED_STATUSES})


def _holidays() -> frozenset[dt.date]:
    return frozenset(Holiday.objects.values_list("date", flat=True))


def office_calendar() -> Calendar:
    return Calendar(time_zone=settings.TIME_ZONE, hours=dict.fromkeys(range(5), OFFICE_HOURS), holidays=_holidays())


def calendar_of(working_calendar: WorkingCalendar | None) -> Calendar:
    """The pure calendar of a ``WorkingCalendar`` row (None: office hours), with the holiday table."""
    if working_calendar is None:
        return office_calendar()
    if working_calendar.around_the_clock:
        return Calendar(time_zone=settings.TIME_ZONE, around_the_clock=True)
    hours = {row.weekday: (row.opens, row.closes) for row in working_calendar.hours.all()}
    if not hours:  # a calendar saved without hours yet: office hours rather than a clock that never runs
        return office_calendar()
    return Calendar(time_zone=settings.TIME_ZONE, hours=hours, holidays=_holidays())


def policy_for(category: str, priority: str) -> tuple[Targets, Calendar]:
    """The targets and calendar of tickets of ``category`` and ``priority``: the exact policy, else the priority's
    for any category, else the built-in default."""
    rows = {
        p.category: p
        for p in SlaPolicy.objects.filter(priority=priority, category__in=[category, ""]).select_related("calendar")
    }
    policy = rows.get(category) or rows.get("")
    if policy is not None:
        return Targets(policy.first_response_minutes, policy.resolution_minutes), calendar_of(policy.calendar)
    default = DEFAULT_TARGETS.get(priority, DEFAULT_TARGETS[TicketPriority.NORMAL])
    if default.around_the_clock:
        return default, Calendar(time_zone=settings.TIME_ZONE, around_the_clock=True)
    return default, office_calendar()


def _minutes(n: int) -> dt.timedelta:
    return dt.timedelta(minutes=n)


# The latest moment a due moment is put at: a clock counted around the clock from a target of years stays a date.
_LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def _due(calendar: Calendar, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
    """``add_working_time``, or, when the calendar has no working time for years or the target lies beyond its
    horizon (a policy or holiday table typed wrong), the same duration around the clock: a ticket must open and be
    answered whatever the reference tables say, and a clock that runs is better than one that never does."""
    try:
        return add_working_time(calendar, start, duration)
    except CalendarError as exc:
        logger.error("SLA: %s; counting %s around the clock from %s", exc, duration, start)
        try:
            return min(start + duration, _LATEST)
        except OverflowError:
            return _LATEST


def schedule(ticket: Ticket, *, calendar: Calendar | None = None, keep_targets: bool = False) -> list[str]:
    """Set the ticket's targets (from its category and priority), due moments and warning marks; returns the fields
    changed, for ``save(update_fields=…)``. ``keep_targets`` (a pause ending): the targets the ticket took when it
    opened or its priority changed stay, so a policy edited since does not move a running ticket's clock."""
    targets, policy_calendar = policy_for(ticket.category, ticket.priority)
    calendar = calendar or policy_calendar
    if keep_targets and ticket.first_response_target_minutes is not None and ticket.resolution_target_minutes:
        targets = Targets(ticket.first_response_target_minutes, ticket.resolution_target_minutes)
    ticket.first_response_target_minutes = targets.first_response_minutes
    ticket.resolution_target_minutes = targets.resolution_minutes
    start = ticket.created_at
    first = _minutes(targets.first_response_minutes)
    ticket.first_response_due_at = _due(calendar, start, first)
    ticket.first_response_warn_at = _due(calendar, start, first * WARN_SHARE)
    # During a pause the moments stay as they were when it began (the sweep skips a paused ticket); resuming adds
    # the pause and computes them again.
    paused = dt.timedelta(seconds=ticket.resolution_paused_seconds)
    resolution = _minutes(targets.resolution_minutes)
    ticket.resolution_due_at = _due(calendar, start, resolution + paused)
    ticket.resolution_warn_at = _due(calendar, start, resolution * WARN_SHARE + paused)
    return [
        "first_response_target_minutes",
        "resolution_target_minutes",
        "first_response_due_at",
        "first_response_warn_at",
        "resolution_due_at",
        "resolution_warn_at",
    ]


def _fold_pause(ticket: Ticket, now: dt.datetime) -> list[str]:
    """End the current pause: its working time joins the earlier ones and the due moments move by it."""
    _targets, calendar = policy_for(ticket.category, ticket.priority)
    stopped = working_time_between(calendar, ticket.resolution_paused_at, now)
    ticket.resolution_paused_seconds += int(stopped.total_seconds())
    ticket.resolution_paused_at = None
    return [
        "resolution_paused_at",
        "resolution_paused_seconds",
        *schedule(ticket, calendar=calendar, keep_targets=True),
    ]


def on_status_change(ticket: Ticket, before: str, after: str, now: dt.datetime) -> list[str]:
    """Pause or resume the resolution clock for a move from ``before`` to ``after``; returns the fields changed.
    Resolving late records the breach now, so the report need not wait for the sweep. A ticket opened before SLA
    timers existed (no targets) keeps none."""
    if ticket.resolution_target_minutes is None:
        return []
    fields: list[str] = []
    # Any move out of a pause ends it first, also into another paused status (waiting -> resolved): the breach
    # check below must see the due moment moved by the time waited, and a new pause starts from now.
    if ticket.resolution_paused_at is not None and (after not in PAUSED_STATUSES or after in FINISHED_STATUSES):
        fields += _fold_pause(ticket, now)
    if (
        after in FINISHED_STATUSES
        and ticket.resolution_breached_at is None
        and ticket.resolution_due_at is not None
        and ticket.resolution_due_at < now
    ):
        ticket.resolution_breached_at = now
        fields.append("resolution_breached_at")
    if after in PAUSED_STATUSES and ticket.resolution_paused_at is None:
        ticket.resolution_paused_at = now
        fields.append("resolution_paused_at")
    return list(dict.fromkeys(fields))


def on_first_response(ticket: Ticket, now: dt.datetime) -> list[str]:
    """The first public staff reply: a late one records the breach at once."""
    if (
        ticket.first_response_breached_at is None
        and ticket.first_response_due_at
        and ticket.first_response_due_at < now
    ):
        ticket.first_response_breached_at = now
        return ["first_response_breached_at"]
    return []


# --- reading the timers -----------------------------------------------------------------------------------------

MET, RUNNING, OVERDUE, PAUSED, BREACHED = "met", "running", "overdue", "paused", "breached"


@dataclass(frozen=True)
class Timer:
    """One SLA clock of a ticket as a page shows it: its state, the due moment and the time left (negative when
    overdue), wall-clock."""

    state: str  # MET, RUNNING, OVERDUE, PAUSED, BREACHED (stopped late)
    due_at: dt.datetime | None
    left: dt.timedelta | None = None

    @property
    def overdue(self) -> bool:
        return self.state in (OVERDUE, BREACHED)


def first_response_timer(ticket: Ticket, now: dt.datetime) -> Timer | None:
    due = ticket.first_response_due_at
    if due is None:
        return None
    if ticket.first_response_at is not None:
        return Timer(BREACHED if ticket.first_response_at > due else MET, due)
    if ticket.status in FINISHED_STATUSES:
        return Timer(BREACHED if ticket.first_response_breached_at else MET, due)
    return Timer(OVERDUE if now >= due else RUNNING, due, due - now)


def resolution_timer(ticket: Ticket, now: dt.datetime) -> Timer | None:
    if ticket.resolution_target_minutes is None:
        return None
    if ticket.status in FINISHED_STATUSES:
        return Timer(BREACHED if ticket.resolution_breached_at else MET, ticket.resolution_due_at)
    if ticket.resolution_paused_at is not None:
        return Timer(PAUSED, None)
    due = ticket.resolution_due_at
    return Timer(OVERDUE if now >= due else RUNNING, due, due - now)
