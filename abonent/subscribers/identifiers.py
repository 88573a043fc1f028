"""The identifiers of this app that name one subscriber exactly: account number, old account number (the billing
the ISP migrated from, docs/adr/0019), contract number, phone, and the MAC of a device installed at the subscriber.
A search for exactly one of them opens the card (``selectors.find_by_identifier``); the network app adds logins, IP
addresses and IPoE MACs the same way."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from .accounts import as_account_number
from .extensions import IdentifierLookup, register_identifier_lookup
from .models import ContactKind, ContactPoint, Contract, EquipmentAssignment, Subscriber
from .search import phone_digits
from .validators import normalize_mac, normalize_phone

MIN_PHONE_DIGITS = 10  # a whole number: 916 123-45-67 at least; fewer digits are a fragment, searched as text
_PHONE_CHARS_RE = re.compile(r"^\+?[\d\s()\-.]+$")


def _account(query: str) -> list[int]:
    if not query.isdigit():
        return []
    return list(Subscriber.objects.filter(account_number=query).values_list("pk", flat=True))


def _legacy_account(query: str) -> list[int]:
    # Exact, leading zeros and all (``accounts.as_account_number``): "007315" is not "7315".
    number = as_account_number(query)
    if number is None:
        return []
    return list(Subscriber.objects.filter(legacy_account=number).values_list("pk", flat=True))


def _contract(query: str) -> list[int]:
    return list(Contract.objects.filter(number=query).values_list("subscriber_id", flat=True))


def phone_e164(query: str) -> str | None:
    """The E.164 form of a query that is a whole phone number in any notation (``+7 916 123-45-67``,
    ``8 (916) 123-45-67``, ``89161234567``, ``9161234567``), else ``None``."""
    if not _PHONE_CHARS_RE.match(query):
        return None
    digits = phone_digits(query)
    if len(digits) < MIN_PHONE_DIGITS:
        return None
    for typed in (query, "+" + digits):
        try:
            return normalize_phone(typed)
        except ValidationError:
            continue
    return None


def _phone(query: str) -> list[int]:
    e164 = phone_e164(query)
    if e164 is None:
        return []
    return list(ContactPoint.objects.filter(kind=ContactKind.PHONE, value=e164).values_list("subscriber_id", flat=True))


def mac_address(query: str) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` for a query that is a MAC in any common notation, else ``None``."""
    try:
        return normalize_mac(query)
    except ValidationError:
        return None


def _equipment_mac(query: str) -> list[int]:
    mac = mac_address(query)
    if mac is None:
        return []
    return list(
        EquipmentAssignment.objects.filter(equipment__mac_address=mac, returned_at__isnull=True).values_list(
            "subscriber_id", flat=True
        )
    )


register_identifier_lookup(IdentifierLookup("account", _account))
register_identifier_lookup(IdentifierLookup("legacy_account", _legacy_account))
register_identifier_lookup(IdentifierLookup("contract", _contract))
register_identifier_lookup(IdentifierLookup("phone", _phone))
register_identifier_lookup(IdentifierLookup("equipment_mac", _equipment_mac))
