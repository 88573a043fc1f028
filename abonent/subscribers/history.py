"""The subscriber card's change history: audit rows turned into lines an operator can read."""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext_lazy as _

from abonent.core.models import AuditEvent, Branch

from .models import EquipmentOwnership

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


def register_action_labels(labels: dict, fields: dict | None = None) -> None:
    """Other apps name their audit actions (and the keys of their before/after data) for the card's
    history: billing now, later payments, network…"""
    ACTION_LABELS.update(labels)
    EXTRA_LABELS.update(fields or {})


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


def _field(object_type: str, name: str):
    try:
        field = apps.get_model(object_type)._meta.get_field(name.removesuffix("_id"))
    except (LookupError, ValueError, FieldDoesNotExist):
        return None
    return field if getattr(field, "concrete", False) else None


def _field_label(object_type: str, name: str) -> str:
    if name in EXTRA_LABELS:
        return str(EXTRA_LABELS[name])
    field = _field(object_type, name)
    return str(field.verbose_name) if field is not None else name


def _display(object_type: str, name: str, value):
    """Stored values as the console shows them: choice labels instead of codes, branch names instead of ids."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, list | dict):
        return ", ".join(str(v) for v in value) if isinstance(value, list) else value
    if name in ("branch_id", "branch"):
        return Branch.objects.filter(pk=value).values_list("name", flat=True).first() or value
    field = _field(object_type, name)
    choices = dict(field.flatchoices) if field is not None and field.choices else {}
    if name == "ownership":
        choices = dict(EquipmentOwnership.choices)
    return str(choices.get(value, value))


def _empty(value) -> bool:
    return value in (None, "", [], {}, False)


def history_lines(subscriber, *, limit: int = 50) -> list[HistoryLine]:
    lines = []
    for event in AuditEvent.objects.filter(subscriber_id=subscriber.pk).select_related("actor")[:limit]:
        names = list(dict.fromkeys([*event.before, *event.after]))
        changes = [
            (
                _field_label(event.object_type, name),
                _display(event.object_type, name, event.before.get(name)),
                _display(event.object_type, name, event.after.get(name)),
            )
            for name in names
            # A creation lists what was filled in, not every empty field.
            if not (_empty(event.before.get(name)) and _empty(event.after.get(name)))
        ]
        lines.append(HistoryLine(event, str(ACTION_LABELS.get(event.action, event.action)), changes))
    return lines
