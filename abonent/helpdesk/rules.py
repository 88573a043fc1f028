"""The helpdesk's limits and the rules a subscriber's request follows; pure, no queries.

The limits are settings with defaults (docs/helpdesk.md): ``ABONENT_HELPDESK_TICKETS_PER_DAY``,
``ABONENT_HELPDESK_COMMENTS_PER_DAY``, ``ABONENT_HELPDESK_REOPEN_DAYS``.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .models import FINISHED_STATUSES, TicketStatus

SUBJECT_MAX_LENGTH = 200  # Ticket.subject
ADDRESS_MAX_LENGTH = 300  # Ticket.address
# One message of a thread: a long letter fits, a pasted log file or a flood of megabytes does not.
TEXT_MAX_LENGTH = 4000

DEFAULT_TICKETS_PER_DAY = 5
DEFAULT_COMMENTS_PER_DAY = 50
DEFAULT_REOPEN_DAYS = 14
DAY = dt.timedelta(days=1)

# What a subscriber reads for a status (the console reads the status's own label).
_SUBSCRIBER_LABELS = {
    TicketStatus.NEW: _("Received"),
    TicketStatus.IN_PROGRESS: _("We are working on it"),
    TicketStatus.WAITING_SUBSCRIBER: _("Waiting for your answer"),
    TicketStatus.RESOLVED: _("Solved"),
    TicketStatus.CLOSED: _("Finished"),
}


def tickets_per_day() -> int:
    """Tickets a subscriber may open in any 24 hours (the portal and its API; staff are not limited)."""
    return max(1, int(getattr(settings, "ABONENT_HELPDESK_TICKETS_PER_DAY", DEFAULT_TICKETS_PER_DAY)))


def comments_per_day() -> int:
    """Replies a subscriber may write in any 24 hours, over all their tickets."""
    return max(1, int(getattr(settings, "ABONENT_HELPDESK_COMMENTS_PER_DAY", DEFAULT_COMMENTS_PER_DAY)))


def reopen_days() -> int:
    """Days after a ticket was resolved or closed in which its subscriber may reopen it (or reply, which reopens)."""
    return max(0, int(getattr(settings, "ABONENT_HELPDESK_REOPEN_DAYS", DEFAULT_REOPEN_DAYS)))


def can_reopen(ticket, now: dt.datetime) -> bool:
    """Whether the subscriber may still reopen ``ticket``: finished, and less than ``reopen_days()`` ago."""
    if ticket.status not in FINISHED_STATUSES or ticket.closed_at is None:
        return False
    return now - ticket.closed_at < dt.timedelta(days=reopen_days())


def reopen_until(ticket) -> dt.datetime | None:
    """The moment the subscriber can no longer reopen a finished ticket (None for an open one)."""
    if ticket.status not in FINISHED_STATUSES or ticket.closed_at is None:
        return None
    return ticket.closed_at + dt.timedelta(days=reopen_days())


def subscriber_status_label(status: str) -> str:
    return str(_SUBSCRIBER_LABELS.get(status, status))
