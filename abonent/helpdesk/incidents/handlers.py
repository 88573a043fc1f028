"""Domain events this app listens to: a new ticket of an affected subscriber is linked to the incident it is about."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q

from abonent.core import clock, events
from abonent.helpdesk.models import Ticket

from . import affected
from .models import Incident, IncidentSubscriber

logger = logging.getLogger(__name__)


@events.on("ticket.created")
def link_new_ticket(*, event: str, ticket_id: int, subscriber_id: int, **_payload) -> None:
    """Runs after the ticket's commit. The incidents that affect its subscriber and were under way when it was
    opened get it linked (``affected.link_tickets`` applies the category and the time; a repeat is a no-op)."""
    ticket = Ticket.objects.filter(pk=ticket_id).only("pk", "category", "created_at").first()
    if ticket is None or ticket.category not in affected.LINKED_CATEGORIES:
        return
    candidates = Incident.objects.filter(
        Q(ends_at__isnull=True) | Q(ends_at__gte=ticket.created_at),
        starts_at__lte=ticket.created_at,
        pk__in=IncidentSubscriber.objects.filter(subscriber_id=subscriber_id).values("incident_id"),
    )
    with transaction.atomic():
        for incident in candidates:
            if affected.link_tickets(incident, clock.now(), only_ticket_id=ticket.pk):
                logger.info("ticket %s linked to incident %s", ticket.pk, incident.pk)
