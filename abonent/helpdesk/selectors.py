"""Reads of the helpdesk: the console's list and a ticket's thread (branch-scoped), and a subscriber's own tickets
with their public thread (the portal narrows to the signed-in subscriber itself)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from abonent.core import clock
from abonent.staff.permissions import scope_to_branches

from .models import OPEN_STATUSES, SlaEvent, SlaEventKind, Ticket, TicketAttachment, TicketComment

# The console list's status filter: these two words, or one status.
OPEN, ALL = "open", "all"
# A ticket number, an account number or a row id as typed: ASCII digits only (``str.isdigit`` also takes "²",
# which ``int`` refuses), and few enough to fit a bigint.
_NUMBER = re.compile(r"[0-9]{1,18}")


def as_number(text: str) -> int | None:
    """``text`` as a non-negative integer when it is 1 to 18 ASCII digits, else None."""
    return int(text) if _NUMBER.fullmatch(text or "") else None


def visible_tickets(user) -> QuerySet[Ticket]:
    """The tickets of the subscribers of ``user``'s branches."""
    return scope_to_branches(
        Ticket.objects.select_related("subscriber", "queue", "assignee"), user, "subscriber__branch"
    )


def get_ticket(user, pk: int) -> Ticket:
    """A ticket the user may see, else 404 (another branch's is the same 404 as a missing one)."""
    return get_object_or_404(visible_tickets(user), pk=pk)


@dataclass(frozen=True)
class TicketFilters:
    status: str = OPEN  # OPEN, ALL or a TicketStatus
    category: str = ""
    priority: str = ""
    source: str = ""
    query: str = ""  # a ticket number, an account number, words of the subject or of the subscriber's name
    subscriber_id: int | None = None
    queue_id: int | None = None
    assignee: str = ""  # ASSIGNEE_ME, ASSIGNEE_NONE or a staff user's id
    assignee_user_id: int | None = None  # who ASSIGNEE_ME is
    sla: str = ""  # one of SLA_FILTERS


# The list's assignee filter: mine, nobody's, or a staff id.
ASSIGNEE_ME, ASSIGNEE_NONE = "me", "none"
# The list's SLA filter: overdue now (a clock ran out and the ticket is open), escalated but not yet overdue, the
# resolution clock paused (waiting for the subscriber), or running within its targets.
SLA_OVERDUE, SLA_AT_RISK, SLA_PAUSED, SLA_ON_TRACK = "overdue", "at_risk", "paused", "on_track"
SLA_FILTERS = (SLA_OVERDUE, SLA_AT_RISK, SLA_PAUSED, SLA_ON_TRACK)


def _overdue(now: dt.datetime) -> Q:
    return Q(first_response_at__isnull=True, first_response_due_at__lte=now) | Q(
        resolution_paused_at__isnull=True, resolution_due_at__lte=now
    )


def _sla_filter(qs: QuerySet[Ticket], value: str, now: dt.datetime) -> QuerySet[Ticket]:
    qs = qs.filter(status__in=OPEN_STATUSES)
    if value == SLA_OVERDUE:
        return qs.filter(_overdue(now))
    if value == SLA_AT_RISK:
        return qs.filter(escalated_at__isnull=False).exclude(_overdue(now))
    if value == SLA_PAUSED:
        return qs.filter(resolution_paused_at__isnull=False)
    if value == SLA_ON_TRACK:
        return qs.filter(escalated_at__isnull=True, resolution_paused_at__isnull=True).exclude(_overdue(now))
    return qs


def sla_counts(user, now: dt.datetime) -> dict[str, int]:
    """Open tickets of the user's branches overdue now, and escalated but not overdue yet (the dashboard, which
    links each figure to the list's SLA filter of the same name): one query."""
    overdue = _overdue(now)
    return (
        visible_tickets(user)
        .filter(status__in=OPEN_STATUSES)
        .aggregate(
            overdue=Count("id", filter=overdue),
            at_risk=Count("id", filter=Q(escalated_at__isnull=False) & ~overdue),
        )
    )


def filtered_tickets(user, filters: TicketFilters) -> QuerySet[Ticket]:
    qs = visible_tickets(user)
    if filters.status == OPEN:
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif filters.status and filters.status != ALL:
        qs = qs.filter(status=filters.status)
    for name in ("category", "priority", "source"):
        if value := getattr(filters, name):
            qs = qs.filter(**{name: value})
    if filters.subscriber_id is not None:
        qs = qs.filter(subscriber_id=filters.subscriber_id)
    if filters.queue_id is not None:
        qs = qs.filter(queue_id=filters.queue_id)
    if filters.assignee == ASSIGNEE_NONE:
        qs = qs.filter(assignee__isnull=True)
    elif filters.assignee == ASSIGNEE_ME:
        qs = qs.filter(assignee_id=filters.assignee_user_id)
    elif (assignee := as_number(filters.assignee)) is not None:
        qs = qs.filter(assignee_id=assignee)
    if filters.sla in SLA_FILTERS:
        qs = _sla_filter(qs, filters.sla, clock.now())
    query = filters.query.strip().lstrip("#№ ")
    if query:
        if (number := as_number(query)) is not None:
            qs = qs.filter(Q(number=number) | Q(subscriber__account_number=query) | Q(subscriber__legacy_account=query))
        else:
            qs = qs.filter(Q(subject__icontains=query) | Q(subscriber__display_name__icontains=query))
    return qs.order_by("-updated_at", "-id")


def recent_tickets(user, filters: TicketFilters, *, limit: int = 100) -> list[Ticket]:
    return list(filtered_tickets(user, filters)[:limit])


def status_counts(user, filters: TicketFilters) -> dict[str, int]:
    """Tickets per status under ``filters`` but its status (the list's counters)."""
    qs = filtered_tickets(user, TicketFilters(**{**filters.__dict__, "status": ALL}))
    return dict(qs.order_by().values_list("status").annotate(n=Count("id")))


def thread(ticket: Ticket, *, public_only: bool) -> list[TicketComment]:
    """The comments of ``ticket``, oldest first; ``public_only`` for the subscriber (no internal notes, ever)."""
    comments = TicketComment.objects.filter(ticket=ticket).select_related("author")
    if public_only:
        comments = comments.filter(is_public=True)
    return list(comments.order_by("created_at", "id"))


def tickets_of(subscriber_id: int, *, as_subscriber_sees: bool = False) -> QuerySet[Ticket]:
    """A subscriber's tickets, most recently touched first (the card's panel); ``as_subscriber_sees`` (the portal):
    by the last change the subscriber can see, so an internal note does not move a ticket up their list."""
    order = "-public_updated_at" if as_subscriber_sees else "-updated_at"
    return Ticket.objects.filter(subscriber_id=subscriber_id).order_by(order, "-id")


def open_count(subscriber_id: int) -> int:
    return Ticket.objects.filter(subscriber_id=subscriber_id, status__in=OPEN_STATUSES).count()


def alerts_for(user, *, limit: int = 20) -> list[SlaEvent]:
    """The escalations to ``user`` (a queue's supervisor) of tickets still open, newest first: the console's notice
    in place of a staff notification channel."""
    return list(
        SlaEvent.objects.filter(recipient=user, kind=SlaEventKind.ESCALATED, ticket__status__in=OPEN_STATUSES)
        .filter(ticket__in=visible_tickets(user).values("pk"))
        .select_related("ticket")
        .order_by("-created_at", "-id")[:limit]
    )


def attachments_of(ticket: Ticket, *, public_only: bool) -> dict[int, list[TicketAttachment]]:
    """The ticket's files by comment id (one query for the whole thread)."""
    rows = TicketAttachment.objects.filter(ticket=ticket).order_by("id")
    if public_only:
        rows = rows.filter(comment__is_public=True)
    grouped: dict[int, list[TicketAttachment]] = {}
    for row in rows:
        grouped.setdefault(row.comment_id, []).append(row)
    return grouped


def get_attachment(user, pk: int) -> TicketAttachment:
    """A file of a ticket the staff user may see, else 404 (another branch's is a 404 like a missing one)."""
    return get_object_or_404(
        TicketAttachment.objects.select_related("ticket"), pk=pk, ticket__in=visible_tickets(user).values("pk")
    )


def get_public_attachment(ticket: Ticket, pk: int) -> TicketAttachment:
    """A file on a public message of ``ticket`` (the portal has already narrowed to the subscriber's own ticket)."""
    row = TicketAttachment.objects.filter(pk=pk, ticket=ticket, comment__is_public=True).first()
    if row is None:
        raise Http404
    return row
