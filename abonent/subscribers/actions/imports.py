"""Subscribers brought over from the old billing in bulk (the imports app calls this; docs/imports.md).

Set-based on purpose: a migration writes 100,000 subscribers, and one action call per row would take an hour. It
keeps the invariants the single-row actions keep: every value is validated by the caller with this app's own
cleaners (``clean_profile``, ``clean_address``, ``normalize_phone``) before it gets here; account numbers come from
the same sequence; ``search_text`` and ``name_key`` are built as ``refresh_search_text`` builds them; the old account
number follows the ``legacy_account`` rule; each subscriber gets its ``subscriber.imported`` audit row; and
``subscribers.imported`` is emitted after commit. It runs inside the caller's transaction (one chunk of rows): the
rows land together or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection
from django.utils.translation import gettext as _

from abonent.core import clock, events, sequences
from abonent.core.bulk_load import BulkWriter, matching, reserve_ids
from abonent.core.models import AuditEvent
from abonent.staff.permissions import Perm

from ..models import (
    Address,
    ContactPoint,
    Contract,
    Equipment,
    EquipmentAssignment,
    Subscriber,
    SubscriberStatus,
)
from ..search import address_search_text, build_search_text, name_key
from ..validators import account_serial_start, make_account_number
from .common import ACCOUNT_SEQUENCE, AddressData, display_name_of

LEGACY_ACCOUNT_RE = re.compile(r"^[0-9]{1,20}$")


@dataclass
class ImportedSubscriber:
    """One subscriber as the old system had it, already cleaned (``clean_profile`` ran on the profile)."""

    branch_id: int
    profile: dict  # PROFILE_FIELDS, cleaned
    legacy_account: str | None = None
    contract_number: str = ""  # empty: the new account number
    contract_signed_on: dt.date | None = None
    closed: bool = False
    addresses: list[AddressData] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)  # E.164
    emails: list[str] = field(default_factory=list)
    # (kind, vendor, model, serial or None, MAC or None)
    equipment: tuple[str, str, str, str | None, str | None] | None = None


def check_legacy_account(value: str) -> str:
    """The old account number as kept: ASCII digits, 1–20 of them."""
    value = (value or "").strip()
    if not LEGACY_ACCOUNT_RE.match(value):
        raise ValidationError(
            {"legacy_account": ValidationError(_("The old account number must be 1–20 digits."), code="legacy_invalid")}
        )
    return value


# What ``do_import_subscribers`` writes into a bounded column, by the model's own max_length: a value the column cannot
# hold is a row problem found while planning (a dry run included), not an error of the database in the middle of a
# chunk.
def _limits(model, *names):
    return {name: model._meta.get_field(name).max_length for name in names}


_PROFILE_LIMITS = _limits(
    Subscriber,
    "last_name",
    "first_name",
    "middle_name",
    "passport_series",
    "passport_number",
    "passport_issued_by",
    "organization_name",
    "inn",
    "kpp",
)
_DISPLAY_LIMIT = Subscriber._meta.get_field("display_name").max_length
_CONTRACT_LIMIT = Contract._meta.get_field("number").max_length
_ADDRESS_LIMITS = _limits(
    Address, "postal_code", "city", "street", "house", "building", "apartment", "entrance", "floor", "comment"
)
_CONTACT_LIMIT = ContactPoint._meta.get_field("value").max_length
_EQUIPMENT_LIMITS = _limits(Equipment, "kind", "vendor", "model", "serial_number", "mac_address")
# The imports file's field each equipment column comes from.
_EQUIPMENT_FIELDS = ("equipment_model",) * 3 + ("equipment_serial", "equipment_mac")


def oversized_values(item: ImportedSubscriber) -> list[tuple[str, int]]:
    """``(field, limit)`` for every value of ``item`` longer than its column holds (empty: it fits)."""
    found = [(name, limit) for name, limit in _PROFILE_LIMITS.items() if len(item.profile.get(name) or "") > limit]
    if len(display_name_of(item.profile)) > _DISPLAY_LIMIT:
        found.append(("full_name", _DISPLAY_LIMIT))
    if len(item.contract_number) > _CONTRACT_LIMIT:
        found.append(("contract_number", _CONTRACT_LIMIT))
    for address in item.addresses:
        found += [(n, lim) for n, lim in _ADDRESS_LIMITS.items() if len(getattr(address, n) or "") > lim]
    found += [("phone", _CONTACT_LIMIT) for p in item.phones if len(p) > _CONTACT_LIMIT]
    found += [("email", _CONTACT_LIMIT) for e in item.emails if len(e) > _CONTACT_LIMIT]
    if item.equipment:
        for field_name, limit, value in zip(_EQUIPMENT_FIELDS, _EQUIPMENT_LIMITS.values(), item.equipment, strict=True):
            if len(value or "") > limit:
                found.append((field_name, limit))
    return found


def taken_legacy_accounts(values: list[str]) -> set[str]:
    """Which of ``values`` some subscriber already has as its old or its own account number: never both in use."""
    taken: set[str] = set()
    for start in range(0, len(values), 5000):
        part = values[start : start + 5000]
        wanted = set(part)
        for column in ("legacy_account", "account_number"):
            for legacy, account in matching(Subscriber.objects.all(), column, part).values_list(
                "legacy_account", "account_number"
            ):
                taken.update(v for v in (legacy, account) if v in wanted)
    return taken


def do_import_subscribers(
    items: list[ImportedSubscriber], *, acting_user, reason: str, account_numbers: list[str] | None = None
) -> list[int]:
    """Insert the subscribers with their contracts, addresses, contacts and equipment; returns their ids in order.

    The caller holds the transaction and has checked ``Perm.IMPORT_RUN``. The unique constraints (account and old
    account numbers, contracts, equipment serials and MACs) are the last word: a conflict raises ``IntegrityError``
    and the caller's chunk is rolled back whole.

    ``account_numbers``: numbers the caller reserved beforehand (``reserve_account_numbers``), one per item, so that
    chunks written at once do not queue on the sequence's row lock; such a caller must call
    ``confirm_account_numbers`` last, before its commit. Without them the numbers are allocated here and the lock
    is held until the caller's transaction ends."""
    if acting_user is not None and not acting_user.has_perm(Perm.IMPORT_RUN):
        from abonent.staff.permissions import check_perm

        check_perm(acting_user, Perm.IMPORT_RUN)
    if not items:
        return []
    moment = clock.now()
    today = clock.today()
    numbers = account_numbers if account_numbers is not None else _account_numbers(items)
    if len(numbers) != len(items):
        raise ValueError("one account number per subscriber")
    ids = reserve_ids(Subscriber, len(items))
    contract_ids = reserve_ids(Contract, len(items))
    address_count = sum(len(i.addresses) for i in items)
    contact_count = sum(len(i.phones) + len(i.emails) for i in items)
    with_equipment = [i for i in items if i.equipment]
    address_ids = iter(reserve_ids(Address, address_count))
    contact_ids = iter(reserve_ids(ContactPoint, contact_count))
    equipment_ids = iter(reserve_ids(Equipment, len(with_equipment)))
    assignment_ids = iter(reserve_ids(EquipmentAssignment, len(with_equipment)))
    audit_ids = iter(reserve_ids(AuditEvent, len(items)))
    pg = connection.vendor == "postgresql"
    stamp = moment if pg else moment.isoformat()
    actor_id = getattr(acting_user, "pk", None)
    actor_label = acting_user.get_username() if actor_id else "system"

    subscribers, contracts, addresses, contacts, equipment, assignments, audits = [], [], [], [], [], [], []
    for item, sid, cid, account in zip(items, ids, contract_ids, numbers, strict=True):
        profile = item.profile
        display = display_name_of(profile)
        contract_number = item.contract_number or account
        phones = list(dict.fromkeys(item.phones))
        emails = list(dict.fromkeys(item.emails))
        eq = item.equipment
        search = build_search_text(
            account_number=account,
            display_name=display,
            inn=profile.get("inn") or "",
            contract_numbers=[contract_number],
            phones=phones,
            emails=emails,
            addresses=[
                address_search_text(
                    city=a.city, street=a.street, house=a.house, building=a.building, apartment=a.apartment
                )
                for a in item.addresses
            ],
            macs=[eq[4]] if eq and eq[4] else [],
            serials=[eq[3]] if eq and eq[3] else [],
        )
        if item.legacy_account:
            search = f"{search} {item.legacy_account}"
        status = SubscriberStatus.CLOSED if item.closed else SubscriberStatus.ACTIVE
        subscribers.append(
            (
                sid,
                account,
                item.legacy_account or None,
                profile.get("kind"),
                status,
                item.branch_id,
                profile.get("last_name") or "",
                profile.get("first_name") or "",
                profile.get("middle_name") or "",
                _day(profile.get("birth_date"), pg),
                profile.get("passport_series") or "",
                profile.get("passport_number") or "",
                profile.get("passport_issued_by") or "",
                _day(profile.get("passport_issued_on"), pg),
                profile.get("organization_name") or "",
                profile.get("inn") or "",
                profile.get("kpp") or "",
                display,
                name_key(display),
                search,
                False,
                False,
                stamp,
                stamp,
                stamp if item.closed else None,
                reason if item.closed else "",
            )
        )
        contracts.append(
            (
                cid,
                sid,
                contract_number,
                _day(item.contract_signed_on or today, pg),
                "active" if not item.closed else "terminated",
                _day(today, pg) if item.closed else None,
            )
        )
        for a in item.addresses:
            addresses.append(
                (
                    next(address_ids),
                    sid,
                    a.kind,
                    a.postal_code,
                    a.city,
                    a.street,
                    a.house,
                    a.building,
                    a.apartment,
                    a.entrance,
                    a.floor,
                    a.comment,
                )
            )
        for index, phone in enumerate(phones):
            contacts.append((next(contact_ids), sid, "phone", phone, index == 0, ""))
        for email in emails:
            contacts.append((next(contact_ids), sid, "email", email, False, ""))
        if eq:
            eid = next(equipment_ids)
            equipment.append((eid, eq[0], eq[1], eq[2], eq[3], eq[4], item.branch_id, "installed", ""))
            assignments.append((next(assignment_ids), eid, sid, "rent", stamp, None, ""))
        after = {"account_number": account, "legacy_account": item.legacy_account, "contract": contract_number}
        audits.append(
            (
                next(audit_ids),
                stamp,
                actor_id,
                actor_label,
                "subscriber.imported",
                "subscribers.subscriber",
                str(sid),
                f"{account} {display}"[:255],
                sid,
                "{}",
                json.dumps(after, ensure_ascii=False),
                reason,
                None,
                "",
            )
        )
    writer = BulkWriter()
    writer.write(
        "subscribers_subscriber",
        [
            "id",
            "account_number",
            "legacy_account",
            "kind",
            "status",
            "branch_id",
            "last_name",
            "first_name",
            "middle_name",
            "birth_date",
            "passport_series",
            "passport_number",
            "passport_issued_by",
            "passport_issued_on",
            "organization_name",
            "inn",
            "kpp",
            "display_name",
            "name_key",
            "search_text",
            "consent_personal_data",
            "consent_marketing",
            "created_at",
            "updated_at",
            "closed_at",
            "close_reason",
        ],
        subscribers,
    )
    writer.write(
        "subscribers_contract", ["id", "subscriber_id", "number", "signed_on", "status", "terminated_on"], contracts
    )
    writer.write(
        "subscribers_address",
        [
            "id",
            "subscriber_id",
            "kind",
            "postal_code",
            "city",
            "street",
            "house",
            "building",
            "apartment",
            "entrance",
            "floor",
            "comment",
        ],
        addresses,
    )
    writer.write(
        "subscribers_contactpoint", ["id", "subscriber_id", "kind", "value", "is_primary", "comment"], contacts
    )
    writer.write(
        "subscribers_equipment",
        ["id", "kind", "vendor", "model", "serial_number", "mac_address", "branch_id", "status", "comment"],
        equipment,
    )
    writer.write(
        "subscribers_equipmentassignment",
        ["id", "equipment_id", "subscriber_id", "ownership", "assigned_at", "returned_at", "comment"],
        assignments,
    )
    writer.write(
        "core_auditevent",
        [
            "id",
            "created_at",
            "actor_id",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "subscriber_id",
            "before",
            "after",
            "reason",
            "ip_address",
            "request_id",
        ],
        audits,
    )
    writer.close()
    # One event for the chunk, not ``subscriber.created`` per row: a migration is not 100,000 sign-ups to send to
    # the CRM's webhooks one by one.
    events.emit("subscribers.imported", subscriber_ids=ids)
    return ids


def _account_numbers(items: list[ImportedSubscriber]) -> list[str]:
    return reserve_account_numbers(len(items), avoid={i.legacy_account for i in items if i.legacy_account})


def reserve_account_numbers(count: int, *, avoid: set[str]) -> list[str]:
    """``count`` new account numbers from the sequence, passing over any in ``avoid`` (the old account numbers about
    to be written) or that is some subscriber's old account number: the two must never be equal, or a payment by
    that number finds two accounts. Called outside a transaction, the sequence's row lock is held only for the
    allocation itself; the caller then confirms the numbers under the lock (``confirm_account_numbers``)."""
    numbers: list[str] = []
    while len(numbers) < count:
        fresh = [
            make_account_number(serial)
            for serial in sequences.allocate(ACCOUNT_SEQUENCE, count - len(numbers), start=account_serial_start())
        ]
        taken = avoid | set(
            matching(Subscriber.objects.all(), "legacy_account", fresh).values_list("legacy_account", flat=True)
        )
        numbers += [n for n in fresh if n not in taken]
    return numbers


def confirm_account_numbers(subscriber_ids: list[int]) -> None:
    """The last step of a transaction that wrote subscribers with numbers reserved beforehand: under the sequence's
    row lock until commit (the lock ``do_set_legacy_account`` and ``allocate`` take, docs/adr/0019), no other
    subscriber may have one of their account numbers as its old one, nor one of their old numbers as its own. A
    writer that committed since the reservation is seen here; one that comes later waits for the lock and sees
    these rows. A conflict raises ``IntegrityError``: the caller's chunk is rolled back whole."""
    if not subscriber_ids:
        return
    if connection.vendor != "postgresql":
        return  # SQLite has one writer at a time (IMMEDIATE transactions): nothing can have come in between
    sequences.hold(ACCOUNT_SEQUENCE, start=account_serial_start())
    clash = False
    with connection.cursor() as cursor:
        for condition in ("o.legacy_account = s.account_number", "o.account_number = s.legacy_account"):
            cursor.execute(
                "SELECT 1 FROM subscribers_subscriber s JOIN subscribers_subscriber o ON "
                + condition
                + " WHERE s.id = ANY(%s) AND o.id <> s.id LIMIT 1",
                [list(subscriber_ids)],
            )
            clash = clash or cursor.fetchone() is not None
    if clash:
        raise IntegrityError("an account number of this chunk is another subscriber's old account number")


def _day(value: dt.date | None, pg: bool):
    if value is None:
        return None
    return value if pg else value.isoformat()
