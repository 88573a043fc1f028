"""The subscriber card's "Calls" panel (``call.view``): the subscriber's latest calls, with the recording to play
for those who may (``recording.listen``); and the names of telephony's audit actions in the card's history."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from . import selectors

RECENT = 10


def calls_context(request, subscriber, **_ignored) -> dict:
    from abonent.helpdesk.models import OPEN_STATUSES, Ticket

    calls = selectors.calls_of(subscriber, limit=RECENT)
    for call in calls:
        # A shared phone's call is on every holder's card; its request is shown only on its own subscriber's card,
        # which may be of another branch than this one.
        call.own_ticket = call.ticket if call.ticket and call.ticket.subscriber_id == subscriber.pk else None
    # Asked only when a call has no request yet: a card without calls costs this panel one query.
    can_link = has_perm(request.user, Perm.TICKET_MANAGE) and any(c.ticket_id is None for c in calls)
    return {
        "calls": calls,
        "can_listen": has_perm(request.user, Perm.RECORDING_LISTEN),
        # The subscriber's open requests, to link a call to (the KPIs' calls per request).
        "open_tickets": list(
            Ticket.objects.filter(subscriber=subscriber, status__in=OPEN_STATUSES).order_by("-number")[:20]
        )
        if can_link
        else [],
    }


PANEL = register_panel(Panel("calls", _("Calls"), "telephony/panels/calls.html", 14, calls_context, Perm.CALL_VIEW))

register_action_labels(
    {"telephony.call_linked": _("Call linked to a request"), "telephony.extension_set": _("Extension changed")},
    fields={"ticket": _("request"), "extension": _("extension")},
)
