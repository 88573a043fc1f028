"""Who a login names: the personal account number (ours, or the old system's: docs/adr/0019), a PPPoE or hotspot
login, or a phone on the contract.

Tried in that order, first match wins: an account number is what the receipts and the terminals use; a network
login is exact; a phone is the loosest (any common spelling, ``8 (916) 123-45-67`` as well as ``+79161234567``).
A phone or a login on several subscribers names none of them (``ambiguous``): the subscriber is asked for the
account number instead, the portal never picks one; so does an old account number that is another subscriber's
phone or network login (it is any digits, ours never reads as either). Closed subscribers are found too: they log
in to see and pay what they owe.

``Identified.key`` is what lock-outs, allowances and the made-up masks go by, and it is canonical: one per
subscriber whatever the spelling (``sub:<id>``), and for what names nobody the same reading the lookups made of
it (``number:<digits>``, ``phone:<E.164>``, ``login:<lower case>``). Every spelling of an unknown login thus
shares one key exactly as a real one's do, or the lock-out and the masks would tell the two apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from abonent.network.models import Login, LoginKind
from abonent.subscribers.accounts import subscriber_by_account
from abonent.subscribers.models import ContactKind, ContactPoint, Subscriber
from abonent.subscribers.validators import normalize_phone

MAX_LENGTH = 100
# Network logins that a person types (IPoE ones are a MAC address or a switch port, never typed).
TYPED_LOGIN_KINDS = (LoginKind.PPPOE, LoginKind.HOTSPOT)


@dataclass(frozen=True)
class Identified:
    """What a typed login names. ``key`` is what lock-outs and the code allowance count by: one per subscriber
    whatever the spelling, else the canonical form of the text (see the module docstring); at most 100
    characters."""

    key: str
    subscriber: Subscriber | None = None
    ambiguous: bool = False
    # The typed login as a phone in E.164, when it reads as one (the decoy masks of an unknown phone use it).
    phone: str = ""


def normalised(raw: str) -> str:
    """The typed login without control characters, surrounding spaces or inner runs of them, at most
    ``MAX_LENGTH`` characters (a NUL would be a database error on PostgreSQL, not a wrong login)."""
    printable = "".join(ch if ch.isprintable() else " " for ch in (raw or "")[: MAX_LENGTH * 4])
    return " ".join(printable.split())[:MAX_LENGTH]


def _as_phone(text: str) -> str:
    if not any(ch.isdigit() for ch in text) or any(ch.isalpha() for ch in text):
        return ""
    try:
        return normalize_phone(text)
    except ValidationError:
        return ""


def _one(subscriber_ids: set[int]) -> tuple[Subscriber | None, bool]:
    if len(subscriber_ids) == 1:
        return Subscriber.objects.select_related("branch").get(pk=next(iter(subscriber_ids))), False
    return None, len(subscriber_ids) > 1


def _key(prefix: str, value: str) -> str:
    key = f"{prefix}:{value}"
    if len(key) <= 100:
        return key
    # The attempts table keeps 100 characters: a long login is counted by its digest, not by a truncation that
    # two different logins would share.
    return f"{prefix}#{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()}"


def identify(raw: str) -> Identified:
    """The subscriber ``raw`` names (see the module docstring). Never raises: anything unreadable names nobody."""
    text = normalised(raw)
    if not text:
        return Identified(key="login:")
    digits = text.replace(" ", "").replace("-", "")
    legacy_holder = None
    if digits.isdigit() and digits.isascii():
        # Exact, as the receipts print it: the old system's "007315" is not "7315".
        subscriber = subscriber_by_account(digits, queryset=Subscriber.objects.select_related("branch"))
        if subscriber is not None and subscriber.account_number == digits:
            return Identified(key=f"sub:{subscriber.pk}", subscriber=subscriber)
        # An old number is any digits, unlike ours: it may be another subscriber's phone or network login as well,
        # and then it names neither (its holder's tries must not be someone else's, nor lock them out).
        legacy_holder = subscriber
    logins = Login.objects.filter(kind__in=TYPED_LOGIN_KINDS)
    owners = set(logins.filter(username=text).values_list("subscriber_id", flat=True)[:10])
    if not owners:
        # Phones capitalise the first letter of a field: "Ivanov" for the login "ivanov".
        owners = set(logins.filter(username__iexact=text).values_list("subscriber_id", flat=True)[:10])
    phone = _as_phone(text)
    if not owners and phone:
        contacts = ContactPoint.objects.filter(kind=ContactKind.PHONE, value=phone)
        owners = set(contacts.values_list("subscriber_id", flat=True).distinct()[:10])
    if legacy_holder is not None:
        if owners <= {legacy_holder.pk}:
            return Identified(key=f"sub:{legacy_holder.pk}", subscriber=legacy_holder)
        owners.add(legacy_holder.pk)
    subscriber, ambiguous = _one(owners)
    if subscriber is not None:
        return Identified(key=f"sub:{subscriber.pk}", subscriber=subscriber, phone=phone)
    # Canonical, as the lookups above read it: a phone in E.164, else the digits of what an account number's
    # spellings reduce to, else the login in lower case (the lookup is case-insensitive).
    if phone:
        key = _key("phone", phone)
    elif digits.isdigit() and digits.isascii():
        key = _key("number", digits)
    else:
        key = _key("login", text.lower())
    return Identified(key=key, ambiguous=ambiguous, phone=phone)
