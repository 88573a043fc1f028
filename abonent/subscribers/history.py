"""The subscriber card's change history: audit rows turned into lines an operator can read.

The labels live in ``core.audit_labels`` (the audit viewer reads them too); apps still register theirs through
``register_action_labels`` here or there, it is the same registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from abonent.core.audit_labels import ACTION_LABELS, FIELD_LABELS, action_label, changes_of, register_action_labels
from abonent.core.models import AuditEvent

from .models import EquipmentOwnership

__all__ = ["ACTION_LABELS", "EXTRA_LABELS", "HistoryLine", "history_lines", "register_action_labels"]

register_action_labels(
    {
        "subscriber.created": _("Subscriber created"),
        "subscriber.updated": _("Subscriber changed"),
        "subscriber.closed": _("Account closed"),
        "subscriber.reopened": _("Account reopened"),
        "subscriber.contact_added": _("Contact added"),
        "subscriber.contact_removed": _("Contact removed"),
        "subscriber.address_added": _("Address added"),
        "subscriber.address_updated": _("Address changed"),
        "subscriber.address_removed": _("Address removed"),
        "subscriber.note_added": _("Note added"),
        "subscriber.connection_event": _("Connection history event"),
        "equipment.assigned": _("Device installed"),
        "equipment.returned": _("Device returned"),
        "equipment.registered": _("Device registered"),
    },
    fields={
        "contract": _("contract number"),
        "contacts": _("contacts"),
        "addresses": _("addresses"),
        "groups": _("groups"),
        "address_id": _("address"),
        "subscriber": _("subscriber"),
        "ownership": _("ownership"),
    },
    values={"ownership": EquipmentOwnership.choices},
)
EXTRA_LABELS = FIELD_LABELS


@dataclass
class HistoryLine:
    event: AuditEvent
    label: str
    changes: list[tuple[str, object, object]]  # (field label, before, after)


def history_lines(subscriber, *, limit: int = 50) -> list[HistoryLine]:
    lines = []
    for event in AuditEvent.objects.filter(subscriber_id=subscriber.pk).select_related("actor")[:limit]:
        changes = [(c.label, c.before, c.after) for c in changes_of(event)]
        lines.append(HistoryLine(event, action_label(event.action), changes))
    return lines
