"""A subscriber's contacts and addresses."""

from __future__ import annotations

from dataclasses import asdict

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit

from ..models import (
    Address,
    ContactPoint,
    Subscriber,
)
from .common import (
    AddressData,
    _editable,
    clean_address,
    clean_contact,
    refresh_search_text,
)

# --- contacts and addresses -------------------------------------------------------------------------


@transaction.atomic
def do_add_contact(
    subscriber: Subscriber, *, kind: str, value: str, acting_user, is_primary: bool = False, comment: str = ""
) -> ContactPoint:
    subscriber = _editable(subscriber, acting_user)
    try:
        value = clean_contact(kind, value)
    except ValidationError as exc:
        raise ValidationError({"value": exc.error_list}) from exc
    if subscriber.contacts.filter(kind=kind, value=value).exists():
        raise ValidationError(
            {"value": ValidationError(_("The subscriber already has this contact."), code="contact_duplicate")}
        )
    if is_primary:
        subscriber.contacts.filter(kind=kind).update(is_primary=False)
    contact = ContactPoint.objects.create(
        subscriber=subscriber, kind=kind, value=value, is_primary=is_primary, comment=(comment or "").strip()
    )
    refresh_search_text(subscriber)
    audit.record(
        actor=acting_user,
        action="subscriber.contact_added",
        obj=contact,
        subscriber_id=subscriber.pk,
        after=audit.snapshot(contact, ["kind", "value", "is_primary", "comment"]),
    )
    return contact


@transaction.atomic
def do_remove_contact(contact: ContactPoint, *, acting_user) -> None:
    subscriber = _editable(contact.subscriber, acting_user)
    before = audit.snapshot(contact, ["kind", "value", "is_primary", "comment"])
    audit.record(
        actor=acting_user, action="subscriber.contact_removed", obj=contact, subscriber_id=subscriber.pk, before=before
    )
    contact.delete()
    refresh_search_text(subscriber)


ADDRESS_FIELDS = list(AddressData.__dataclass_fields__)


@transaction.atomic
def do_add_address(subscriber: Subscriber, *, data: AddressData, acting_user) -> Address:
    subscriber = _editable(subscriber, acting_user)
    address = Address.objects.create(subscriber=subscriber, **asdict(clean_address(data)))
    refresh_search_text(subscriber)
    audit.record(
        actor=acting_user,
        action="subscriber.address_added",
        obj=address,
        subscriber_id=subscriber.pk,
        after=audit.snapshot(address, ADDRESS_FIELDS),
    )
    return address


@transaction.atomic
def do_update_address(address: Address, *, data: AddressData, acting_user) -> Address:
    subscriber = _editable(address.subscriber, acting_user)
    before = audit.snapshot(address, ADDRESS_FIELDS)
    for name, value in asdict(clean_address(data)).items():
        setattr(address, name, value)
    address.save()
    refresh_search_text(subscriber)
    old, new = audit.diff(before, audit.snapshot(address, ADDRESS_FIELDS))
    audit.record(
        actor=acting_user,
        action="subscriber.address_updated",
        obj=address,
        subscriber_id=subscriber.pk,
        before=old,
        after=new,
    )
    return address


@transaction.atomic
def do_remove_address(address: Address, *, acting_user) -> None:
    subscriber = _editable(address.subscriber, acting_user)
    audit.record(
        actor=acting_user,
        action="subscriber.address_removed",
        obj=address,
        subscriber_id=subscriber.pk,
        before=audit.snapshot(address, ADDRESS_FIELDS),
    )
    address.delete()
    refresh_search_text(subscriber)
