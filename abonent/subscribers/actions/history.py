"""A subscriber's history: connection events and notes."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.staff.permissions import Perm

from ..models import (
    Address,
    ConnectionEvent,
    Note,
    Subscriber,
)
from .common import (
    _editable,
)

# --- history and notes --------------------------------------------------------------------------------


@transaction.atomic
def do_add_connection_event(
    subscriber: Subscriber,
    *,
    kind: str,
    happened_on: dt.date,
    acting_user,
    address: Address | None = None,
    comment: str = "",
) -> ConnectionEvent:
    subscriber = _editable(subscriber, acting_user, Perm.NOTE_ADD)
    if address is not None and address.subscriber_id != subscriber.pk:
        raise PermissionDenied(_("The address belongs to another subscriber."))
    event = ConnectionEvent.objects.create(
        subscriber=subscriber,
        kind=kind,
        happened_on=happened_on,
        address=address,
        comment=comment,
        created_by=acting_user,
        created_at=clock.now(),
    )
    audit.record(
        actor=acting_user,
        action="subscriber.connection_event",
        obj=event,
        subscriber_id=subscriber.pk,
        after=audit.snapshot(event, ["kind", "happened_on", "address_id", "comment"]),
    )
    return event


@transaction.atomic
def do_add_note(subscriber: Subscriber, *, text: str, acting_user, is_pinned: bool = False) -> Note:
    subscriber = _editable(subscriber, acting_user, Perm.NOTE_ADD)
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": ValidationError(_("The note is empty."), code="required")})
    note = Note.objects.create(
        subscriber=subscriber, author=acting_user, text=text, is_pinned=is_pinned, created_at=clock.now()
    )
    audit.record(
        actor=acting_user,
        action="subscriber.note_added",
        obj=note,
        subscriber_id=subscriber.pk,
        after={"text": text, "is_pinned": is_pinned},
    )
    return note
