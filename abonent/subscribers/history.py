"""The subscriber card's change history: audit rows turned into lines an operator can read.

An audit row keeps what changed as JSON (``core.audit``): codes, ids, amounts as "700.00", moments as ISO text in
UTC. The card shows them as the rest of the console does: choices by their label ("Наличные", not "cash"), branch
names, money with ``format_money``, dates and times in the operator's zone and the language's formats, the staff
user by their full name. Other apps name their actions, the keys of their data and the codes of their values with
``register_action_labels``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import models
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from abonent.core import audit
from abonent.core.audit import SYSTEM
from abonent.core.audit_labels import model_field
from abonent.core.models import AuditEvent, Branch
from abonent.core.money import format_money

from .models import EquipmentOwnership

# The actions' names live in the audit log's own registry (``core.audit``): the admin's audit list shows them too.
ACTION_LABELS = audit.ACTION_LABELS
audit.register_action_labels(
    {
        "subscriber.created": _("Subscriber created"),
        "subscriber.imported": _("Imported from the old billing"),
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
    }
)

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

# The codes of values that are no model field's choices, by the key they are kept under (other apps add theirs).
VALUE_LABELS: dict[str, dict[str, object]] = {
    "ownership": dict(EquipmentOwnership.choices),
}

# Keys whose values are amounts of money (kept as "700.00"); a model's DecimalField of 2 places counts too.
MONEY_KEYS: set[str] = {"amount", "fee", "credit", "charge", "credit_limit", "balance", "price", "total", "refund"}


def register_action_labels(
    labels: dict, fields: dict | None = None, *, values: dict | None = None, money: tuple = ()
) -> None:
    """Other apps name their audit actions for the card's history: ``labels`` the actions, ``fields`` the keys of
    their before/after data, ``values`` the codes kept under a key (``{"channel": {"cash": _("cash desk")}}``),
    ``money`` the keys that hold amounts."""
    audit.register_action_labels(labels)
    EXTRA_LABELS.update(fields or {})
    for key, codes in (values or {}).items():
        VALUE_LABELS.setdefault(key, {}).update(codes)
    MONEY_KEYS.update(money)


action_label = audit.action_label


@dataclass
class HistoryLine:
    event: AuditEvent
    label: str
    changes: list[tuple[str, object, object]]  # (field label, before, after)
    actor: str  # the staff user's full name, or the process's own name


def _field_label(object_type: str, name: str) -> str:
    if name in EXTRA_LABELS:
        return str(EXTRA_LABELS[name])
    field = model_field(object_type, name)
    return str(field.verbose_name) if field is not None else name.replace("_", " ")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_AMOUNT = re.compile(r"-?\d+\.\d{2}")


def _is_money(object_type: str, name: str) -> bool:
    if name in MONEY_KEYS:
        return True
    field = model_field(object_type, name)
    return isinstance(field, models.DecimalField) and field.decimal_places == 2


def _text(value: str, *, money: bool):
    """A stored string as the console writes it: an amount, a date, a moment in the local zone, or itself."""
    if money and _AMOUNT.fullmatch(value):
        try:
            return format_money(Decimal(value))
        except InvalidOperation:
            return value
    if _DATE.fullmatch(value):
        try:
            return date_format(dt.date.fromisoformat(value), "SHORT_DATE_FORMAT")
        except ValueError:
            return value
    if _MOMENT.fullmatch(value):
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=dt.UTC)  # the audit log writes UTC
        return date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")
    return value


class _Display:
    """Turns one page of history's stored values into what the console shows; branch names read once a page."""

    def __init__(self, events: list[AuditEvent], known_branches: dict[int, str]):
        ids = set()
        for event in events:
            for data in (event.before, event.after):
                for key in ("branch_id", "branch"):
                    if isinstance(data.get(key), int):
                        ids.add(data[key])
        self.branches = dict(known_branches)
        if ids - set(self.branches):
            self.branches.update(Branch.objects.filter(pk__in=ids - set(self.branches)).values_list("pk", "name"))

    def __call__(self, object_type: str, name: str, value):
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, list):
            return ", ".join(str(self(object_type, name, v)) for v in value)
        if isinstance(value, dict):
            return "; ".join(f"{_field_label(object_type, k)}: {self(object_type, k, v)}" for k, v in value.items())
        if name in ("branch_id", "branch") and isinstance(value, int):
            return self.branches.get(value, value)
        field = model_field(object_type, name)
        codes = dict(field.flatchoices) if field is not None and field.choices else {}
        codes.update(VALUE_LABELS.get(name, {}))
        if isinstance(value, str | int) and value in codes:
            return str(codes[value])
        if isinstance(value, str):
            return _text(value, money=_is_money(object_type, name))
        return value


def _empty(value) -> bool:
    return value in (None, "", [], {}, False)


def _actor(event: AuditEvent) -> str:
    if event.actor is not None:
        return event.actor.get_full_name() or event.actor.get_username()
    return str(_("system")) if event.actor_label == SYSTEM else event.actor_label


def history_lines(subscriber, *, limit: int = 50) -> list[HistoryLine]:
    """The newest ``limit`` changes of the subscriber: one query (the rows with their staff users), and one more
    for the names of branches they mention other than the subscriber's own, whatever they hold."""
    events = list(AuditEvent.objects.filter(subscriber_id=subscriber.pk).select_related("actor")[:limit])
    display = _Display(events, {subscriber.branch_id: subscriber.branch.name})
    lines = []
    for event in events:
        names = list(dict.fromkeys([*event.before, *event.after]))
        changes = [
            (
                _field_label(event.object_type, name),
                display(event.object_type, name, event.before.get(name)),
                display(event.object_type, name, event.after.get(name)),
            )
            for name in names
            # A creation lists what was filled in, not every empty field.
            if not (_empty(event.before.get(name)) and _empty(event.after.get(name)))
        ]
        lines.append(HistoryLine(event, action_label(event.action), changes, _actor(event)))
    return lines
