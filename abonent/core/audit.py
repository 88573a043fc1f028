"""Audit log writer. Every action calls ``record`` inside its transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q

from . import clock

# Actions' names for people have one registry, the audit viewer's: the card's history and the admin read it here.
from .audit_labels import ACTION_LABELS, action_label, register_action_labels  # noqa: F401
from .middleware import current_request_meta
from .models import AuditEvent

SYSTEM = "system"
# Never copied into the audit log, whatever model they sit on.
SECRET_FIELDS = frozenset(
    {"password", "token_hash", "secret", "shared_secret", "secret_encrypted", "password_encrypted"}
)


# Action prefixes whose rows the console's audit viewers do not show (``seal_actions``), with the permission that
# would show them: a lawful-interception request must not be readable by whoever runs the billing.
SEALED_ACTIONS: dict[str, str] = {}


def seal_actions(prefix: str, *, permission: str) -> None:
    """Hide the audit rows whose action starts with ``prefix`` from every console reader without ``permission``
    (the rows are written as usual; docs/lawful-export.md, "Audit")."""
    SEALED_ACTIONS[prefix] = permission


def sealed_for(user) -> Q:
    """The rows ``user`` may not read in the console's audit viewers, as a filter to exclude."""
    hidden = Q(pk__in=[])
    for prefix, permission in SEALED_ACTIONS.items():
        if user is None or not user.has_perm(permission):
            hidden |= Q(action__startswith=prefix)
    return hidden


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
