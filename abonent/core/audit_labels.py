"""Audit rows as people read them, for the audit viewer (/staff/audit/): a label for each action, for the keys of
its before/after data and for coded values.

Each app names its actions in an ``audit_labels`` module of its own, which ``CoreConfig.ready`` finds
(``autodiscover_modules``), with ``register_action_labels``. The subscriber card's history keeps its registry in
``subscribers.history`` (apps add to it from their ``panels.py``); the subscribers app hands those dictionaries
here with ``add_label_source``, so a label registered there is read here too, without a second copy. An action
nobody named is shown by a rule where one fits (the admin's ``admin.<model>_changed``: "Changed in the
administration: <model>"), else by its code, never hidden.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import formats, timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .models import Branch

ACTION_LABELS: dict[str, Promise | str] = {
    "core.company_created": _("Company details entered"),
    "core.company_changed": _("Company details changed"),
    "core.branch_created": _("Branch added"),
}
FIELD_LABELS: dict[str, Promise | str] = {
    "branch_id": _("branch"),
    "branch": _("branch"),
}
# Keys whose stored codes are not a model field's choices (``ownership`` kept on an audit row of another model).
VALUE_LABELS: dict[str, dict[Any, Promise | str]] = {}

# The admin's own actions (core.admin.AuditedAdmin): ``admin.<model>_<verb>``; the longer suffix first.
ADMIN_VERBS = {
    "relations_changed": _("Links changed in the administration: %(model)s"),
    "created": _("Created in the administration: %(model)s"),
    "changed": _("Changed in the administration: %(model)s"),
    "deleted": _("Deleted in the administration: %(model)s"),
}


# Other registries read as they are (by reference, so what is added to them later is seen): (actions, fields).
SOURCES: list[tuple[dict, dict]] = []


def add_label_source(*, actions: dict, fields: dict) -> None:
    SOURCES.append((actions, fields))


def _lookup(name: str, own: dict, index: int):
    if name in own:
        return own[name]
    for source in SOURCES:
        if name in source[index]:
            return source[index][name]
    return None


def register_action_labels(labels: dict, fields: dict | None = None, values: dict | None = None) -> None:
    """Name an app's audit actions, the keys of their before/after data, and coded values of keys that are no
    model field with choices (``values={"ownership": dict(EquipmentOwnership.choices)}``)."""
    ACTION_LABELS.update(labels)
    FIELD_LABELS.update(fields or {})
    for name, choices in (values or {}).items():
        VALUE_LABELS.setdefault(name, {}).update(dict(choices))


def _verbose_name_of(model_name: str) -> str:
    model = next((m for m in apps.get_models() if m._meta.model_name == model_name), None)
    return str(model._meta.verbose_name) if model is not None else model_name


def action_label(action: str) -> str:
    label = _lookup(action, ACTION_LABELS, 0)
    if label is not None:
        return str(label)
    app, _dot, rest = action.partition(".")
    if app == "admin":
        for verb, label in ADMIN_VERBS.items():
            if rest.endswith("_" + verb):
                return str(label) % {"model": _verbose_name_of(rest.removesuffix("_" + verb))}
    return action


def known_actions() -> list[tuple[str, str]]:
    """Every named action as ``(code, label)``, by label: the viewer's action filter."""
    codes = set(ACTION_LABELS).union(*(actions for actions, _fields in SOURCES))
    return sorted(((code, action_label(code)) for code in codes), key=lambda item: item[1].lower())


def object_type_label(object_type: str) -> str:
    """``billing.subscription`` → "subscription" in the user's language."""
    try:
        return str(apps.get_model(object_type)._meta.verbose_name)
    except (LookupError, ValueError):
        return object_type


@functools.lru_cache(maxsize=1024)
def model_field(object_type: str, name: str):
    """The concrete model field an audit key names (``plan_id`` → ``plan``) on ``app_label.model``, or ``None``."""
    try:
        field = apps.get_model(object_type)._meta.get_field(name.removesuffix("_id"))
    except (LookupError, ValueError, FieldDoesNotExist):
        return None
    return field if getattr(field, "concrete", False) else None


def field_label(object_type: str, name: str) -> str:
    label = _lookup(name, FIELD_LABELS, 1)
    if label is not None:
        return str(label)
    field = model_field(object_type, name)
    return str(field.verbose_name) if field is not None else name


def display_value(object_type: str, name: str, value):
    """A stored value as the console shows it: choice labels instead of codes, branch names instead of ids."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, list | dict):
        return ", ".join(str(v) for v in value) if isinstance(value, list) else value
    if name in ("branch_id", "branch"):
        return Branch.objects.filter(pk=value).values_list("name", flat=True).first() or value
    if name in VALUE_LABELS:
        return str(VALUE_LABELS[name].get(value, value))
    field = model_field(object_type, name)
    if field is not None and isinstance(value, str):
        shown = _formatted(field, value)
        if shown is not None:
            return shown
    choices = dict(field.flatchoices) if field is not None and field.choices else {}
    return str(choices.get(value, value))


def _formatted(field, value: str) -> str | None:
    """Dates, times and decimals kept as ISO text in the row, in the reader's language (never ISO in the UI)."""
    try:
        if isinstance(field, models.DateTimeField):
            moment = dt.datetime.fromisoformat(value)
            moment = timezone.localtime(moment) if timezone.is_aware(moment) else moment
            return formats.date_format(moment, "SHORT_DATETIME_FORMAT")
        if isinstance(field, models.DateField):
            return formats.date_format(dt.date.fromisoformat(value), "SHORT_DATE_FORMAT")
        if isinstance(field, models.DecimalField):
            return formats.number_format(Decimal(value), field.decimal_places, use_l10n=True, force_grouping=True)
    except (ValueError, ArithmeticError):
        return None
    return None


# Keys a creation's snapshot carries that tell a reader nothing: the row's id and its own timestamps (the event has
# its time).
UNSHOWN_KEYS = frozenset({"id", "created_at", "updated_at"})


def _empty(value) -> bool:
    return value in (None, "", [], {}, False)


@dataclass(frozen=True)
class Change:
    """One key of an audit row: its label and the values before and after, as shown."""

    label: str
    before: Any
    after: Any


def changes_of(event) -> list[Change]:
    """What an audit row changed, key by key; a creation lists what was filled in, not every empty field."""
    names = list(dict.fromkeys([*event.before, *event.after]))
    return [
        Change(
            field_label(event.object_type, name),
            display_value(event.object_type, name, event.before.get(name)),
            display_value(event.object_type, name, event.after.get(name)),
        )
        for name in names
        if name not in UNSHOWN_KEYS and not (_empty(event.before.get(name)) and _empty(event.after.get(name)))
    ]
