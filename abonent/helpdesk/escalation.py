"""The SLA sweep (``helpdesk.sla_sweep``, every minute from ``abonent worker``): warn the queue's supervisor when 80 %
of a target has passed, and record a breach when a due moment has passed, each once per ticket.

Once is the schema's job, not a read's: every step is an ``SlaEvent`` insert under the unique constraint
``(ticket, kind)`` inside a savepoint, and only the transaction whose insert went through writes the ticket's
timestamp, the audit row and the console notice. A second sweep, or two workers sweeping at the same moment, find
the row there (or wait for the other's insert and then fail it) and do nothing. There are no staff notifications
in ``abonent.notifications`` (it sends to subscribers); the supervisor's notice is the ``SlaEvent`` row itself,
shown on their console (``selectors.alerts_for``), plus the audit event.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import Q

from abonent.core import audit, clock, events
from abonent.core.deadlines import db_deadline, is_deadline

from .models import FINISHED_STATUSES, SlaEvent, SlaEventKind, Ticket

logger = logging.getLogger(__name__)
BATCH = 500
LOCK_WAIT_SECONDS = 5
STATEMENT_SECONDS = 30


def _once(ticket_id: int, kind: str, field: str, now: dt.datetime) -> bool:
    """Record ``kind`` for the ticket unless it already is; True when this call recorded it."""
    with transaction.atomic():
        # A bounded wait: a ticket locked by a long action is skipped now and taken by the next sweep.
        db_deadline(lock=LOCK_WAIT_SECONDS, statement=STATEMENT_SECONDS)
        # Locked and read again: a reply or resolution that committed since the sweep chose it may have stopped
        # the clock (the sweep's own filter was read before).
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("queue__supervisor")
            .exclude(status__in=FINISHED_STATUSES)
            .filter(pk=ticket_id)
            .first()
        )
        if ticket is None or not _still_due(ticket, kind, now):
            return False
        recipient = ticket.queue.supervisor if ticket.queue_id and kind == SlaEventKind.ESCALATED else None
        try:
            with transaction.atomic():
                SlaEvent.objects.create(ticket=ticket, kind=kind, recipient=recipient, created_at=now)
        except IntegrityError:
            return False
        # Conditional: a breach recorded by the action that answered or resolved late is kept as it was.
        Ticket.objects.filter(pk=ticket_id, **{f"{field}__isnull": True}).update(**{field: now})
        audit.record(
            actor=None,
            action=f"ticket.sla_{kind}",
            obj=ticket,
            subscriber_id=ticket.subscriber_id,
            after={
                "first_response_due_at": ticket.first_response_due_at,
                "resolution_due_at": ticket.resolution_due_at,
                **({"supervisor": recipient.pk} if recipient else {}),
            },
        )
        events.emit(f"ticket.sla_{kind}", ticket_id=ticket.pk, subscriber_id=ticket.subscriber_id)
    if kind == SlaEventKind.ESCALATED:
        logger.info("ticket %s escalated to %s", ticket_id, recipient.get_username() if recipient else "nobody")
    return True


def _still_due(ticket: Ticket, kind: str, now: dt.datetime) -> bool:
    responding = ticket.first_response_at is None
    resolving = ticket.resolution_paused_at is None
    if kind == SlaEventKind.ESCALATED:
        return bool(
            (responding and ticket.first_response_warn_at and ticket.first_response_warn_at <= now)
            or (resolving and ticket.resolution_warn_at and ticket.resolution_warn_at <= now)
        )
    if kind == SlaEventKind.FIRST_RESPONSE_BREACHED:
        return bool(responding and ticket.first_response_due_at and ticket.first_response_due_at <= now)
    return bool(resolving and ticket.resolution_due_at and ticket.resolution_due_at <= now)


def _step(pk: int, kind: str, field: str, now: dt.datetime) -> int:
    try:
        return int(_once(pk, kind, field, now))
    except OperationalError as exc:
        if not is_deadline(exc):
            raise
        logger.warning("SLA sweep: ticket %s is locked, left for the next sweep (%s)", pk, kind)
        return 0


def _due(now: dt.datetime):
    """The open tickets whose first response is still awaited, and those whose resolution clock runs."""
    open_tickets = Ticket.objects.exclude(status__in=FINISHED_STATUSES)
    awaiting_response = Q(first_response_at__isnull=True)
    resolving = Q(resolution_paused_at__isnull=True)
    return open_tickets, awaiting_response, resolving


def _ids(qs) -> list[int]:
    return list(qs.order_by("pk").values_list("pk", flat=True)[:BATCH])


def sweep(now: dt.datetime | None = None) -> dict[str, int]:
    """One pass; returns how many tickets were escalated and breached. Catches up by itself: a ticket whose moments
    passed while the worker was down is handled on the next pass."""
    now = now or clock.now()
    open_tickets, awaiting_response, resolving = _due(now)
    done = {"escalated": 0, "first_response_breached": 0, "resolution_breached": 0}
    warn = (awaiting_response & Q(first_response_warn_at__lte=now)) | (resolving & Q(resolution_warn_at__lte=now))
    for pk in _ids(open_tickets.filter(warn, escalated_at__isnull=True)):
        done["escalated"] += _step(pk, SlaEventKind.ESCALATED, "escalated_at", now)
    late_response = awaiting_response & Q(first_response_due_at__lte=now, first_response_breached_at__isnull=True)
    for pk in _ids(open_tickets.filter(late_response)):
        done["first_response_breached"] += _step(
            pk, SlaEventKind.FIRST_RESPONSE_BREACHED, "first_response_breached_at", now
        )
    late_resolution = resolving & Q(resolution_due_at__lte=now, resolution_breached_at__isnull=True)
    for pk in _ids(open_tickets.filter(late_resolution)):
        done["resolution_breached"] += _step(pk, SlaEventKind.RESOLUTION_BREACHED, "resolution_breached_at", now)
    return done
