"""Reads of the portal's requests (pages and API): the signed-in subscriber's own tickets and their public threads.
Internal notes never leave here: the thread is read with ``public_only=True``, always."""

from __future__ import annotations

from dataclasses import dataclass

from abonent.core import clock
from abonent.helpdesk import rules
from abonent.helpdesk.models import Ticket, TicketComment
from abonent.helpdesk.selectors import thread, tickets_of

from .access import own

# The list shows the latest this many; older ones are rarely looked for, and the staff can find them.
LIST_LIMIT = 50


@dataclass(frozen=True)
class RequestView:
    """A ticket as its subscriber sees it."""

    ticket: Ticket
    status_label: str
    can_reopen: bool
    can_close: bool

    @property
    def reopen_until(self):
        return rules.reopen_until(self.ticket)


def view_of(ticket: Ticket) -> RequestView:
    return RequestView(
        ticket=ticket,
        status_label=rules.subscriber_status_label(ticket.status),
        can_reopen=rules.can_reopen(ticket, clock.now()),
        can_close=ticket.status != "closed",
    )


def own_request(request, pk) -> Ticket:
    """The signed-in subscriber's ticket ``pk``, else 404 (another subscriber's is the same 404)."""
    return own(Ticket.objects.all(), request, pk=pk)


def requests_of(subscriber, *, limit: int = LIST_LIMIT) -> list[RequestView]:
    return [view_of(t) for t in tickets_of(subscriber.pk, as_subscriber_sees=True)[:limit]]


def public_thread(ticket: Ticket) -> list[TicketComment]:
    return thread(ticket, public_only=True)
