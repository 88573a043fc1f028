"""The bulk-message audience of an incident: its stored affected set. Not offered in the bulk form (an incident's
page sends to it, ``do_message_incident``); the notifications app expands it like any other audience, within the
branches of the message's author."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from abonent.notifications.audiences import Audience, register_audience

from .models import Incident, IncidentSubscriber


def affected_ids(incident_id: int) -> QuerySet:
    return IncidentSubscriber.objects.filter(incident_id=incident_id).values_list("subscriber_id", flat=True)


def incident_label(incident_id: int) -> str:
    title = Incident.objects.filter(pk=incident_id).values_list("title", flat=True).first()
    return f"{_('Incident')}: {title}" if title else ""


INCIDENT_AUDIENCE = register_audience(
    Audience(
        key="incident",
        label=_("Subscribers affected by an incident"),
        choices=lambda: [],
        subscriber_ids=affected_ids,
        listed=False,
        label_of=incident_label,
    )
)
