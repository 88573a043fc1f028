"""Audit log writer. Every action calls ``record`` inside its transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy

from . import clock
from .middleware import current_request_meta
from .models import AuditEvent

SYSTEM = "system"
# Never copied into the audit log, whatever model they sit on.
SECRET_FIELDS = frozenset(
    {"password", "token_hash", "secret", "shared_secret", "secret_encrypted", "password_encrypted"}
)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def snapshot(instance: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """The concrete field values of ``instance`` as JSON-safe data (foreign keys by id)."""
    names = fields or [f.attname for f in instance._meta.concrete_fields]
    return {name: _jsonable(getattr(instance, name)) for name in names if name not in SECRET_FIELDS}


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keep only the keys whose value changed, so the log shows what an edit did."""
    keys = sorted(set(before) | set(after))
    changed = [k for k in keys if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in changed}, {k: after.get(k) for k in changed}


def record(
    *,
    actor,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    subscriber_id: int | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    meta = current_request_meta()
    user = actor if getattr(actor, "pk", None) else None
    label = actor_label or (user.get_username() if user else meta.get("actor") or SYSTEM)
    return AuditEvent.objects.create(
        created_at=clock.now(),
        actor=user,
        actor_label=label,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:255],
        subscriber_id=subscriber_id,
        before=_jsonable(before or {}),
        after=_jsonable(after or {}),
        reason=reason,
        ip_address=meta.get("ip"),
        request_id=meta.get("request_id", ""),
    )


# --- names of the actions, for people ------------------------------------------------------------------------
#
# What the console and the admin call each audit action ("billing.plan_changed" → "Plan changed"). Every app names
# its own with ``register_action_labels`` (the subscriber card's history adds the keys of their data,
# ``subscribers.history``); an action nobody named shows its code.

ACTION_LABELS: dict[str, object] = {}

_ADMIN_VERBS = {
    "created": gettext_lazy("added in the administration"),
    "changed": gettext_lazy("changed in the administration"),
    "deleted": gettext_lazy("deleted in the administration"),
    "relations_changed": gettext_lazy("links changed in the administration"),
}


def register_action_labels(labels: dict) -> None:
    ACTION_LABELS.update(labels)


def action_label(action: str) -> str:
    """The action's name for people; the admin's own writes (``AuditedAdmin``: ``admin.<model>_<verb>``) are named
    after the model they changed."""
    if action in ACTION_LABELS:
        return str(ACTION_LABELS[action])
    if action.startswith("admin."):
        rest = action.removeprefix("admin.")
        for verb, label in _ADMIN_VERBS.items():
            if rest.endswith("_" + verb):
                model = _model_named(rest.removesuffix("_" + verb))
                if model is not None:
                    return f"{str(model._meta.verbose_name).capitalize()}: {label}"
    return action


def _model_named(model_name: str):
    from django.apps import apps

    return next((m for m in apps.get_models() if m._meta.model_name == model_name), None)
