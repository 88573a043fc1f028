"""Reads of the helpdesk: the console's list and a ticket's thread (branch-scoped), and a subscriber's own tickets
with their public thread (the portal narrows to the signed-in subscriber itself)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from abonent.staff.permissions import scope_to_branches

from .models import OPEN_STATUSES, Ticket, TicketComment

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
    return scope_to_branches(Ticket.objects.select_related("subscriber"), user, "subscriber__branch")


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
    query = filters.query.strip().lstrip("#№ ")
    if query:
        if (number := as_number(query)) is not None:
            qs = qs.filter(Q(number=number) | Q(subscriber__account_number=query))
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
