"""Routing a ticket: its queue, assignee, priority and the NAS or device it is about. Same guarantees as
``actions.py``: atomic, ``ticket.manage`` and the subscriber's branch checked, everything validated before anything
is written, one audit row with what changed (``ticket.routed``; a change of assignee or queue is always in it)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events
from abonent.network.models import Nas
from abonent.staff.permissions import Perm, allowed_branch_ids, has_perm
from abonent.subscribers.models import Equipment, EquipmentAssignment

from . import sla
from .actions import _check_staff, _lock
from .models import Queue, Ticket, TicketPriority

ROUTED_FIELDS = ["queue", "assignee", "priority", "nas", "equipment"]
UNSET = object()


@dataclass
class Routing:
    """What the console's form sends: ids (None: clear it) or ``UNSET`` to leave a field as it is."""

    queue_id: object = UNSET
    assignee_id: object = UNSET
    priority: object = UNSET
    nas_id: object = UNSET
    equipment_id: object = UNSET


def _can_work(user, subscriber_branch_id: int | None) -> bool:
    """Whether ``user`` may be given a ticket of a subscriber of that branch: active, handles requests, sees it."""
    if not user.is_active or not has_perm(user, Perm.TICKET_MANAGE):
        return False
    branches = allowed_branch_ids(user)
    return branches is None or subscriber_branch_id in branches


def _clean(ticket: Ticket, routing: Routing) -> dict:
    """The new values by field name, or one ValidationError naming every bad field."""
    errors, values = {}, {}
    if routing.queue_id is not UNSET:
        queue = Queue.objects.filter(pk=routing.queue_id).first() if routing.queue_id is not None else None
        if routing.queue_id is not None and queue is None:
            errors["queue"] = ValidationError(_("Unknown queue."), code="queue_invalid")
        values["queue"] = queue
    if routing.assignee_id is not UNSET:
        user = None
        if routing.assignee_id is not None:
            user = get_user_model().objects.filter(pk=routing.assignee_id).first()
            if user is None or not _can_work(user, ticket.subscriber.branch_id):
                errors["assignee"] = ValidationError(
                    _("This person cannot handle requests of this subscriber."), code="assignee_invalid"
                )
        values["assignee"] = user
    if routing.priority is not UNSET:
        if routing.priority not in TicketPriority.values:
            errors["priority"] = ValidationError(_("Unknown priority."), code="priority_invalid")
        values["priority"] = routing.priority
    if routing.nas_id is not UNSET:
        nas = Nas.objects.filter(pk=routing.nas_id).first() if routing.nas_id is not None else None
        if routing.nas_id is not None and nas is None:
            errors["nas"] = ValidationError(_("Unknown NAS."), code="nas_invalid")
        values["nas"] = nas
    if routing.equipment_id is not UNSET:
        equipment = None
        if routing.equipment_id is not None:
            # Only a device that is or was at this subscriber: another subscriber's router is not this ticket's.
            at_subscriber = EquipmentAssignment.objects.filter(
                subscriber_id=ticket.subscriber_id, equipment_id=routing.equipment_id
            )
            equipment = Equipment.objects.filter(pk=routing.equipment_id).first() if at_subscriber.exists() else None
            if equipment is None:
                errors["equipment"] = ValidationError(
                    _("This device is not at this subscriber."), code="equipment_invalid"
                )
        values["equipment"] = equipment
    if errors:
        raise ValidationError(errors)
    return values


@transaction.atomic
def do_route_ticket(ticket: Ticket, routing: Routing, *, acting_user, reason: str = "") -> Ticket:
    """Set the queue, assignee, priority, NAS or device of ``ticket``. A priority change takes the new priority's
    SLA targets, counted from when the ticket opened. Nothing changed: nothing written."""
    _check_staff(acting_user, ticket.subscriber_id)
    ticket = _lock(ticket)
    values = _clean(ticket, routing)
    before = audit.snapshot(ticket, ROUTED_FIELDS)
    changed = [name for name, value in values.items() if getattr(ticket, name) != value]
    if not changed:
        return ticket
    for name in changed:
        setattr(ticket, name, values[name])
    now = clock.now()
    ticket.updated_at = now
    fields = [*changed, "updated_at"]
    if "priority" in changed:
        had_clock = ticket.resolution_target_minutes is not None
        fields += sla.schedule(ticket)
        if not had_clock and ticket.status in sla.PAUSED_STATUSES and ticket.resolution_paused_at is None:
            # A ticket opened before SLA timers gets its first clock here: one waiting for the subscriber (or
            # finished) starts it paused, as if it had had one all along, rather than running and breached.
            ticket.resolution_paused_at = now
            fields.append("resolution_paused_at")
    ticket.save(update_fields=fields)
    old, new = audit.diff(before, audit.snapshot(ticket, ROUTED_FIELDS))
    audit.record(
        actor=acting_user,
        action="ticket.routed",
        obj=ticket,
        subscriber_id=ticket.subscriber_id,
        before=old,
        after=new,
        reason=(reason or "").strip()[:500],
    )
    events.emit(
        "ticket.updated", ticket_id=ticket.pk, subscriber_id=ticket.subscriber_id, comment_id=None, status=ticket.status
    )
    return ticket
