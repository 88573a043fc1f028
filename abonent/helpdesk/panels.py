"""The subscriber card's "Requests" panel (``ticket.view``): the subscriber's latest tickets and a form to open one
for them (``ticket.manage``); and the names of the helpdesk's audit actions in the card's history."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from abonent.core import clock
from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from . import selectors, sla
from .audit_labels import LABELS
from .forms import TicketOpenForm

RECENT = 10


def tickets_context(request, subscriber, form=None, **_ignored) -> dict:
    can_write = has_perm(request.user, Perm.TICKET_MANAGE)
    now = clock.now()
    tickets = list(selectors.tickets_of(subscriber.pk)[:RECENT])
    for ticket in tickets:
        # The clock that matters now: the first response until there is one, then the resolution.
        ticket.timer = (
            sla.first_response_timer(ticket, now)
            if ticket.first_response_at is None and ticket.is_open
            else sla.resolution_timer(ticket, now)
        )
    return {
        "now": now,
        "tickets": tickets,
        "open_count": selectors.open_count(subscriber.pk),
        "form": (form or TicketOpenForm(auto_id="ticket-%s")) if can_write else None,
        "can_write": can_write,
    }


PANEL = register_panel(
    Panel("tickets", _("Requests"), "helpdesk/panels/tickets.html", 12, tickets_context, Perm.TICKET_VIEW)
)


register_action_labels(
    {
        "ticket.opened": _("Request opened"),
        "ticket.commented": _("Request: a message"),
        "ticket.status_changed": _("Request status changed"),
        **LABELS,
    },
    fields={
        "number": _("number"),
        "category": _("category"),
        "subject": _("subject"),
        "priority": _("priority"),
        "source": _("source"),
        "comment": _("message"),
        "is_public": _("visible to the subscriber"),
        "queue": _("queue"),
        "assignee": _("assignee"),
        "nas": _("NAS"),
        "equipment": _("equipment"),
        "attachments": _("files"),
        "supervisor": _("supervisor"),
        "first_response_due_at": _("first response due"),
        "resolution_due_at": _("resolution due"),
    },
)
