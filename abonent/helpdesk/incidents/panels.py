"""The subscriber card's header item (``ticket.view``): the open incidents that affect the subscriber, each a link
to its page. And the names of this app's audit actions in the card's history."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import Perm
from abonent.subscribers.extensions import HeaderItem, register_header_item
from abonent.subscribers.history import register_action_labels

from . import selectors


def render_header(request, subscriber) -> SafeString | None:
    found = selectors.open_incidents_of(subscriber.pk)
    if not found:
        return None
    return render_to_string("incidents/_card_header.html", {"incidents": found}, request=request)


HEADER = register_header_item(HeaderItem("incidents", 5, render_header, Perm.TICKET_VIEW))


register_action_labels(
    {
        "incident.opened": _("Incident opened"),
        "incident.updated": _("Incident changed"),
        "incident.resolved": _("Incident resolved"),
        "incident.messaged": _("Incident: message to the affected"),
        "incident.compensated": _("Incident compensated"),
        "incident.refreshed": _("Incident: affected subscribers recomputed"),
    },
    fields={
        "title": _("title"),
        "description": _("text for subscribers"),
        "kind": _("kind"),
        "starts_at": _("started"),
        "ends_at": _("ended"),
        "affected_count": _("affected"),
        "nas": _("NAS"),
        "areas": _("areas"),
        "days": _("days"),
        "subscriptions": _("subscriptions"),
        "total": _("total"),
        "recipients": _("recipients"),
    },
    money=("total",),
)
