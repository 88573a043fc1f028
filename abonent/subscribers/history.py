"""The subscriber card's change history: audit rows turned into lines an operator can read."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext_lazy as _

from abonent.core.models import AuditEvent

ACTION_LABELS = {
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
}
EXTRA_LABELS = {
    "contract": _("contract number"),
    "contacts": _("contacts"),
    "addresses": _("addresses"),
    "groups": _("groups"),
    "branch_id": _("branch"),
    "address_id": _("address"),
    "subscriber": _("subscriber"),
    "ownership": _("ownership"),
}


@dataclass
class HistoryLine:
    event: AuditEvent
    label: str
    changes: list[tuple[str, object, object]]  # (field label, before, after)


def _field_label(object_type: str, name: str) -> str:
    if name in EXTRA_LABELS:
        return str(EXTRA_LABELS[name])
    try:
        model = apps.get_model(object_type)
        return str(model._meta.get_field(name.removesuffix("_id")).verbose_name)
    except (LookupError, ValueError, FieldDoesNotExist):
        return name


def _empty(value) -> bool:
    return value in (None, "", [], {}, False)


def history_lines(subscriber, *, limit: int = 50) -> list[HistoryLine]:
    lines = []
    for event in AuditEvent.objects.filter(subscriber_id=subscriber.pk).select_related("actor")[:limit]:
        names = list(dict.fromkeys([*event.before, *event.after]))
        changes = [
            (_field_label(event.object_type, name), event.before.get(name), event.after.get(name))
            for name in names
            # A creation lists what was filled in, not every empty field.
            if not (_empty(event.before.get(name)) and _empty(event.after.get(name)))
        ]
        lines.append(HistoryLine(event, str(ACTION_LABELS.get(event.action, event.action)), changes))
    return lines
