"""Re-encrypting every encrypted column under the current ``ABONENT_FIELD_KEY`` (``abonent rotate-field-key``).

The columns are those the apps declare with ``secrets.register_field``. Each is walked by primary key in
batches, one transaction per batch with its rows locked, so a value changed meanwhile (a new password set in
the console) is never overwritten with an older one. A value already under the current key is left alone,
so running it again (after an interruption) only does what is left. A value no key we have can decrypt is
reported by row id and left as it is. Procedure: docs/operations.md, "Rotating the field key".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.db import transaction

from . import secrets


@dataclass
class FieldReport:
    """What one pass found in one column: values re-encrypted (or, in a dry run, to re-encrypt), values
    already under the current key, and the ids of rows whose value no key decrypts."""

    name: str
    reencrypted: int = 0
    current: int = 0
    unreadable: list[int] = field(default_factory=list)


def rotate_field_key(
    *, batch_size: int = 500, dry_run: bool = False, progress: Callable[[FieldReport], None] | None = None
) -> list[FieldReport]:
    reports = []
    for declared in secrets.ENCRYPTED_FIELDS:
        model = apps.get_model(declared.model)
        report = FieldReport(f"{declared.model}.{declared.field}")
        last_pk = None
        while True:
            rows = model.objects.order_by("pk")
            if last_pk is not None:
                rows = rows.filter(pk__gt=last_pk)
            with transaction.atomic():
                batch = list(rows.select_for_update().only("pk", declared.field)[:batch_size])
                if not batch:
                    break
                last_pk = batch[-1].pk
                changed = []
                for row in batch:
                    token = getattr(row, declared.field)
                    state = secrets.key_state(token)
                    if state == secrets.KeyState.CURRENT:
                        report.current += 1
                    elif state == secrets.KeyState.UNREADABLE:
                        report.unreadable.append(row.pk)
                    else:
                        report.reencrypted += 1
                        setattr(row, declared.field, secrets.reencrypt(token))
                        changed.append(row)
                if changed and not dry_run:
                    model.objects.bulk_update(changed, [declared.field])
                    if declared.on_rotated is not None:
                        declared.on_rotated([row.pk for row in changed])
            if progress is not None:
                progress(report)
        reports.append(report)
    return reports
