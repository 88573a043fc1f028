"""Reads of incidents: the console's list and page (the affected within the user's branches), the open incidents of
one subscriber (the portal's banner, the card's header), the incidents a ticket is linked to."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from abonent.staff.permissions import scope_to_branches
from abonent.subscribers.models import Subscriber

from .models import Incident, IncidentMessage, IncidentStatus, IncidentSubscriber, IncidentTicket

STATUS_FILTERS = ("open", "resolved", "all")


def incidents(status: str = "open") -> QuerySet[Incident]:
    qs = Incident.objects.all()
    if status in IncidentStatus.values:
        qs = qs.filter(status=status)
    return qs


def get_incident(pk: int) -> Incident:
    return get_object_or_404(Incident.objects.select_related("created_by"), pk=pk)


def affected_of(user, incident: Incident) -> QuerySet[Subscriber]:
    """The affected subscribers ``user`` may see (their branches), for a keyset page by ``id``."""
    ids = IncidentSubscriber.objects.filter(incident=incident).values("subscriber_id")
    return scope_to_branches(Subscriber.objects.filter(pk__in=ids), user).only(
        "pk", "account_number", "display_name", "status", "branch_id"
    )


def linked_tickets(user, incident: Incident) -> QuerySet[IncidentTicket]:
    links = IncidentTicket.objects.filter(incident=incident).select_related("ticket", "ticket__subscriber")
    return scope_to_branches(links, user, "ticket__subscriber__branch").order_by("-ticket__created_at", "-id")


def messages_of(incident: Incident) -> QuerySet[IncidentMessage]:
    return IncidentMessage.objects.filter(incident=incident).select_related("bulk", "created_by")


def open_incidents_of(subscriber_id: int) -> list[Incident]:
    """The open incidents that affect the subscriber: one indexed query (the portal's home shows them)."""
    return list(
        Incident.objects.filter(
            status=IncidentStatus.OPEN,
            pk__in=IncidentSubscriber.objects.filter(subscriber_id=subscriber_id).values("incident_id"),
        ).only("pk", "title", "description", "kind", "starts_at")
    )


def incidents_of_ticket(ticket_id: int) -> list[Incident]:
    return list(
        Incident.objects.filter(pk__in=IncidentTicket.objects.filter(ticket_id=ticket_id).values("incident_id"))
    )
