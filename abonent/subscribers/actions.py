"""Writes of the subscribers app. Each is atomic, checks the actor's access, validates everything
before writing anything, writes an audit row, and emits its event after commit."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events, sequences
from abonent.core.models import Branch
from abonent.staff.permissions import Perm, allowed_branch_ids, check_branch, check_perm

from .models import (
    Address,
    AddressKind,
    ConnectionEvent,
    ContactKind,
    ContactPoint,
    Contract,
    ContractStatus,
    Equipment,
    EquipmentAssignment,
    EquipmentKind,
    EquipmentOwnership,
    EquipmentStatus,
    Note,
    Subscriber,
    SubscriberGroup,
    SubscriberKind,
    SubscriberStatus,
)
from .search import address_search_text, build_search_text
from .validators import (
    account_serial_start,
    make_account_number,
    normalize_mac,
    normalize_phone,
    validate_account_number,
    validate_inn,
    validate_kpp,
    validate_passport,
)

ACCOUNT_SEQUENCE = "subscriber_account"

PERSON_FIELDS = [
    "last_name",
    "first_name",
    "middle_name",
    "birth_date",
    "passport_series",
    "passport_number",
    "passport_issued_by",
    "passport_issued_on",
]
ORGANIZATION_FIELDS = ["organization_name", "inn", "kpp"]
PROFILE_FIELDS = ["kind", *PERSON_FIELDS, *ORGANIZATION_FIELDS]
AUDITED_FIELDS = [
    "account_number",
    "status",
    "branch_id",
    *PROFILE_FIELDS,
    "consent_personal_data",
    "consent_marketing",
    "close_reason",
]


@dataclass
class AddressData:
    city: str
    house: str
    street: str = ""
    kind: str = AddressKind.SERVICE
    building: str = ""
    apartment: str = ""
    postal_code: str = ""
    entrance: str = ""
    floor: str = ""
    comment: str = ""


@dataclass
class ContactData:
    kind: str
    value: str
    is_primary: bool = False
    comment: str = ""


@dataclass
class SubscriberData:
    """Everything needed to create a subscriber; the form and the API both fill one of these."""

    branch_id: int
    kind: str = SubscriberKind.INDIVIDUAL
    last_name: str = ""
    first_name: str = ""
    middle_name: str = ""
    birth_date: dt.date | None = None
    passport_series: str = ""
    passport_number: str = ""
    passport_issued_by: str = ""
    passport_issued_on: dt.date | None = None
    organization_name: str = ""
    inn: str = ""
    kpp: str = ""
    account_number: str = ""  # empty: the next number is allocated
    contract_number: str = ""  # empty: the account number
    contract_signed_on: dt.date | None = None  # empty: today
    consent_personal_data: bool = False
    consent_marketing: bool = False
    group_ids: list[int] = field(default_factory=list)
    addresses: list[AddressData] = field(default_factory=list)
    contacts: list[ContactData] = field(default_factory=list)


# --- validation -------------------------------------------------------------------------------------


def _strip(values: dict) -> dict:
    return {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}


def clean_profile(values: dict) -> dict:
    """Validate and normalise the person/organisation fields; raise one ValidationError naming every bad field."""
    values = _strip(values)
    errors: dict[str, list[ValidationError]] = {}

    def add(name: str, error: ValidationError) -> None:
        errors.setdefault(name, []).append(error)

    kind = values.get("kind")
    if kind not in SubscriberKind.values:
        add("kind", ValidationError(_("Choose an individual or an organisation."), code="kind_invalid"))
    elif kind == SubscriberKind.INDIVIDUAL:
        if not values.get("last_name"):
            add("last_name", ValidationError(_("Enter the last name."), code="required"))
        if not values.get("first_name"):
            add("first_name", ValidationError(_("Enter the first name."), code="required"))
        series, number = values.get("passport_series", ""), values.get("passport_number", "")
        if series or number:
            try:
                values["passport_series"], values["passport_number"] = validate_passport(series, number)
            except ValidationError as exc:
                for name, errs in exc.error_dict.items():
                    errors.setdefault(name, []).extend(errs)
        birth = values.get("birth_date")
        if birth and birth > clock.today():
            add("birth_date", ValidationError(_("The date of birth is in the future."), code="birth_date_future"))
        for name in ORGANIZATION_FIELDS:
            if name != "inn":
                values[name] = ""
    else:
        if not values.get("organization_name"):
            add("organization_name", ValidationError(_("Enter the organisation name."), code="required"))
        if not values.get("inn"):
            add("inn", ValidationError(_("Enter the organisation's INN."), code="required"))
        for name in PERSON_FIELDS:
            values[name] = None if name in {"birth_date", "passport_issued_on"} else ""
    if values.get("inn"):
        try:
            values["inn"] = validate_inn(values["inn"])
        except ValidationError as exc:
            add("inn", exc)
    if values.get("kpp"):
        try:
            values["kpp"] = validate_kpp(values["kpp"])
        except ValidationError as exc:
            add("kpp", exc)
    if errors:
        raise ValidationError(errors)
    return values


def clean_contact(kind: str, value: str) -> str:
    if kind == ContactKind.PHONE:
        return normalize_phone(value)
    if kind == ContactKind.EMAIL:
        value = (value or "").strip().lower()
        try:
            validate_email(value)
        except ValidationError as exc:
            raise ValidationError(
                _("“%(value)s” is not a valid email address.") % {"value": value}, code="email_invalid"
            ) from exc
        return value
    raise ValidationError(_("Unknown contact kind."), code="contact_kind_invalid")


def clean_address(data: AddressData) -> AddressData:
    data = AddressData(**_strip(asdict(data)))
    errors = {}
    if data.kind not in AddressKind.values:
        errors["kind"] = ValidationError(_("Unknown address kind."), code="address_kind_invalid")
    if not data.city:
        errors["city"] = ValidationError(_("Enter the city or settlement."), code="required")
    if not data.house:
        errors["house"] = ValidationError(_("Enter the house number."), code="required")
    if errors:
        raise ValidationError(errors)
    return data


def display_name_of(values: dict) -> str:
    if values.get("kind") == SubscriberKind.ORGANIZATION:
        return values["organization_name"]
    return " ".join(p for p in (values.get("last_name"), values.get("first_name"), values.get("middle_name")) if p)


def _check_account_number_free(number: str, *, exclude_pk: int | None = None) -> None:
    taken = Subscriber.objects.filter(account_number=number)
    if exclude_pk:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationError(
            {
                "account_number": ValidationError(
                    _("Account number %(number)s is already used by another subscriber.") % {"number": number},
                    code="account_number_taken",
                )
            }
        )


def _check_contract_number_free(number: str) -> None:
    if Contract.objects.filter(number=number).exists():
        raise ValidationError(
            {
                "contract_number": ValidationError(
                    _("Contract number %(number)s is already used.") % {"number": number}, code="contract_number_taken"
                )
            }
        )


def _save_new(instance, *, on_conflict: ValidationError) -> None:
    """Insert in a savepoint; a unique-constraint race lost to another writer becomes a clear ValidationError."""
    try:
        with transaction.atomic():
            instance.save(force_insert=True)
    except IntegrityError as exc:
        raise on_conflict from exc


# --- search text ------------------------------------------------------------------------------------


def refresh_search_text(subscriber: Subscriber) -> None:
    open_equipment = Equipment.objects.filter(
        assignments__subscriber=subscriber, assignments__returned_at__isnull=True
    ).values_list("mac_address", "serial_number")
    contacts = list(subscriber.contacts.values_list("kind", "value"))
    subscriber.search_text = build_search_text(
        account_number=subscriber.account_number,
        display_name=subscriber.display_name,
        inn=subscriber.inn,
        contract_numbers=subscriber.contracts.values_list("number", flat=True),
        phones=[v for k, v in contacts if k == ContactKind.PHONE],
        emails=[v for k, v in contacts if k == ContactKind.EMAIL],
        addresses=[
            address_search_text(city=a.city, street=a.street, house=a.house, building=a.building, apartment=a.apartment)
            for a in subscriber.addresses.all()
        ],
        macs=[mac for mac, _serial in open_equipment if mac],
        serials=[serial for _mac, serial in open_equipment if serial],
    )
    Subscriber.objects.filter(pk=subscriber.pk).update(search_text=subscriber.search_text)


# --- subscriber -------------------------------------------------------------------------------------


@transaction.atomic
def do_create_subscriber(data: SubscriberData, *, acting_user) -> Subscriber:
    check_perm(acting_user, Perm.SUBSCRIBER_CREATE)
    errors: dict[str, list] = {}
    try:
        profile = clean_profile({name: getattr(data, name) for name in PROFILE_FIELDS})
    except ValidationError as exc:
        errors.update(exc.error_dict)
        profile = {}

    branch = Branch.objects.filter(pk=data.branch_id, is_active=True).first()
    if branch is None:
        errors["branch_id"] = [ValidationError(_("Choose an existing branch."), code="branch_invalid")]
    else:
        check_branch(acting_user, branch.pk)

    account_number = (data.account_number or "").strip()
    if account_number:
        try:
            validate_account_number(account_number)
            _check_account_number_free(account_number)
        except ValidationError as exc:
            errors.setdefault("account_number", []).extend(
                exc.error_dict["account_number"] if hasattr(exc, "error_dict") else exc.error_list
            )

    contract_number = (data.contract_number or "").strip()
    if contract_number:
        try:
            _check_contract_number_free(contract_number)
        except ValidationError as exc:
            errors.update(exc.error_dict)

    contacts, addresses = [], []
    for index, contact in enumerate(data.contacts):
        try:
            contacts.append(
                ContactData(
                    contact.kind,
                    clean_contact(contact.kind, contact.value),
                    contact.is_primary,
                    contact.comment.strip(),
                )
            )
        except ValidationError as exc:
            errors.setdefault(f"contacts.{index}.value", []).extend(exc.error_list)
    for index, address in enumerate(data.addresses):
        try:
            addresses.append(clean_address(address))
        except ValidationError as exc:
            for name, errs in exc.error_dict.items():
                errors.setdefault(f"addresses.{index}.{name}", []).extend(errs)
    groups = list(SubscriberGroup.objects.filter(pk__in=data.group_ids))
    if len(groups) != len(set(data.group_ids)):
        errors["group_ids"] = [ValidationError(_("Unknown subscriber group."), code="group_invalid")]
    if errors:
        raise ValidationError(errors)

    if not account_number:
        serial = sequences.allocate(ACCOUNT_SEQUENCE, start=account_serial_start())[0]
        account_number = make_account_number(serial)
    else:
        # A number typed by hand (a migrated account) must never be handed out again by the sequence.
        sequences.ensure_at_least(ACCOUNT_SEQUENCE, int(account_number[:-1]))

    moment = clock.now()
    subscriber = Subscriber(
        account_number=account_number,
        branch=branch,
        display_name=display_name_of(profile),
        consent_personal_data=data.consent_personal_data,
        consent_personal_data_at=moment if data.consent_personal_data else None,
        consent_marketing=data.consent_marketing,
        consent_marketing_at=moment if data.consent_marketing else None,
        created_at=moment,
        updated_at=moment,
        **profile,
    )
    _save_new(
        subscriber,
        on_conflict=ValidationError(
            {
                "account_number": ValidationError(
                    _("Account number %(number)s is already used by another subscriber.") % {"number": account_number},
                    code="account_number_taken",
                )
            }
        ),
    )
    subscriber.groups.set(groups)

    contract = Contract(
        subscriber=subscriber,
        number=contract_number or account_number,
        signed_on=data.contract_signed_on or clock.today(),
    )
    _save_new(
        contract,
        on_conflict=ValidationError(
            {
                "contract_number": ValidationError(
                    _("Contract number %(number)s is already used.") % {"number": contract.number},
                    code="contract_number_taken",
                )
            }
        ),
    )
    if contacts and not any(c.is_primary for c in contacts if c.kind == ContactKind.PHONE):
        first_phone = next((c for c in contacts if c.kind == ContactKind.PHONE), None)
        if first_phone:
            first_phone.is_primary = True
    seen = set()
    for contact in contacts:
        if (contact.kind, contact.value) in seen:
            continue
        seen.add((contact.kind, contact.value))
        ContactPoint.objects.create(subscriber=subscriber, **asdict(contact))
    for address in addresses:
        Address.objects.create(subscriber=subscriber, **asdict(address))

    refresh_search_text(subscriber)
    audit.record(
        actor=acting_user,
        action="subscriber.created",
        obj=subscriber,
        subscriber_id=subscriber.pk,
        after={
            **audit.snapshot(subscriber, AUDITED_FIELDS),
            "contract": contract.number,
            "contacts": [c.value for c in contacts],
            "addresses": [a.city + ", " + a.street + " " + a.house for a in addresses],
            "groups": [g.pk for g in groups],
        },
    )
    events.emit("subscriber.created", subscriber_id=subscriber.pk)
    return subscriber


def _lock(subscriber: Subscriber) -> Subscriber:
    return Subscriber.objects.select_for_update().get(pk=subscriber.pk)


@transaction.atomic
def do_update_subscriber(subscriber: Subscriber, *, changes: dict, acting_user, reason: str = "") -> Subscriber:
    """Change profile fields, branch, consents or groups. Only the keys given are touched."""
    check_perm(acting_user, Perm.SUBSCRIBER_EDIT)
    subscriber = _lock(subscriber)
    check_branch(acting_user, subscriber.branch_id)
    allowed = {*PROFILE_FIELDS, "branch_id", "consent_personal_data", "consent_marketing", "group_ids"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(
            _("These fields cannot be changed: %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
            code="field_not_editable",
        )

    before = audit.snapshot(subscriber, AUDITED_FIELDS)
    before_groups = sorted(subscriber.groups.values_list("pk", flat=True))
    profile = clean_profile({name: changes.get(name, getattr(subscriber, name)) for name in PROFILE_FIELDS})
    for name, value in profile.items():
        setattr(subscriber, name, value)
    subscriber.display_name = display_name_of(profile)

    if "branch_id" in changes and changes["branch_id"] != subscriber.branch_id:
        if not Branch.objects.filter(pk=changes["branch_id"], is_active=True).exists():
            raise ValidationError(
                {"branch_id": ValidationError(_("Choose an existing branch."), code="branch_invalid")}
            )
        check_branch(acting_user, changes["branch_id"])
        subscriber.branch_id = changes["branch_id"]

    moment = clock.now()
    for consent in ("consent_personal_data", "consent_marketing"):
        if consent in changes and bool(changes[consent]) != getattr(subscriber, consent):
            setattr(subscriber, consent, bool(changes[consent]))
            setattr(subscriber, f"{consent}_at", moment)

    groups_after = before_groups
    if "group_ids" in changes:
        groups = list(SubscriberGroup.objects.filter(pk__in=changes["group_ids"]))
        if len(groups) != len(set(changes["group_ids"])):
            raise ValidationError({"group_ids": ValidationError(_("Unknown subscriber group."), code="group_invalid")})
        subscriber.groups.set(groups)
        groups_after = sorted(g.pk for g in groups)

    subscriber.updated_at = moment
    subscriber.save()
    refresh_search_text(subscriber)
    old, new = audit.diff(
        {**before, "groups": before_groups}, {**audit.snapshot(subscriber, AUDITED_FIELDS), "groups": groups_after}
    )
    if old or new:
        audit.record(
            actor=acting_user,
            action="subscriber.updated",
            obj=subscriber,
            subscriber_id=subscriber.pk,
            before=old,
            after=new,
            reason=reason,
        )
        events.emit("subscriber.updated", subscriber_id=subscriber.pk, fields=sorted(new))
    return subscriber


@transaction.atomic
def do_close_subscriber(
    subscriber: Subscriber, *, reason: str, acting_user, closed_on: dt.date | None = None
) -> Subscriber:
    """Close the account and terminate its contracts. Billing (its own issue) ends subscriptions on the event."""
    check_perm(acting_user, Perm.SUBSCRIBER_CLOSE)
    subscriber = _lock(subscriber)
    check_branch(acting_user, subscriber.branch_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Say why the account is closed."), code="required")})
    if subscriber.is_closed:
        raise ValidationError(_("The account is already closed."), code="already_closed")
    before = audit.snapshot(subscriber, AUDITED_FIELDS)
    moment = clock.now()
    subscriber.status = SubscriberStatus.CLOSED
    subscriber.closed_at = moment
    subscriber.close_reason = reason
    subscriber.updated_at = moment
    subscriber.save(update_fields=["status", "closed_at", "close_reason", "updated_at"])
    subscriber.contracts.filter(status=ContractStatus.ACTIVE).update(
        status=ContractStatus.TERMINATED, terminated_on=closed_on or clock.today()
    )
    old, new = audit.diff(before, audit.snapshot(subscriber, AUDITED_FIELDS))
    audit.record(
        actor=acting_user,
        action="subscriber.closed",
        obj=subscriber,
        subscriber_id=subscriber.pk,
        before=old,
        after=new,
        reason=reason,
    )
    events.emit("subscriber.closed", subscriber_id=subscriber.pk)
    return subscriber


@transaction.atomic
def do_reopen_subscriber(subscriber: Subscriber, *, reason: str, acting_user) -> Subscriber:
    check_perm(acting_user, Perm.SUBSCRIBER_CLOSE)
    subscriber = _lock(subscriber)
    check_branch(acting_user, subscriber.branch_id)
    if not subscriber.is_closed:
        raise ValidationError(_("The account is not closed."), code="not_closed")
    moment = clock.now()
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.closed_at = None
    subscriber.close_reason = ""
    subscriber.updated_at = moment
    subscriber.save(update_fields=["status", "closed_at", "close_reason", "updated_at"])
    audit.record(
        actor=acting_user,
        action="subscriber.reopened",
        obj=subscriber,
        subscriber_id=subscriber.pk,
        after={"status": subscriber.status},
        reason=reason,
    )
    events.emit("subscriber.reopened", subscriber_id=subscriber.pk)
    return subscriber


# --- contacts and addresses -------------------------------------------------------------------------


def _editable(subscriber: Subscriber, acting_user, perm: Perm = Perm.SUBSCRIBER_EDIT) -> Subscriber:
    check_perm(acting_user, perm)
    subscriber = _lock(subscriber)
    check_branch(acting_user, subscriber.branch_id)
    return subscriber


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


# --- equipment ----------------------------------------------------------------------------------------


def _equipment_visible(user, equipment: Equipment) -> bool:
    """A branch-limited user handles their branches' devices and the shared stock (a device of no branch),
    never another branch's device, nor learns where it is installed."""
    ids = allowed_branch_ids(user)
    return ids is None or equipment.branch_id is None or equipment.branch_id in ids


@transaction.atomic
def do_register_equipment(
    *,
    kind: str,
    vendor: str,
    model: str = "",
    serial_number: str = "",
    mac_address: str = "",
    branch_id: int | None = None,
    comment: str = "",
    acting_user,
) -> Equipment:
    check_perm(acting_user, Perm.EQUIPMENT_MANAGE)
    if branch_id is not None:
        check_branch(acting_user, branch_id)
    errors = {}
    serial_number = (serial_number or "").strip() or None
    mac = None
    if mac_address and mac_address.strip():
        try:
            mac = normalize_mac(mac_address)
        except ValidationError as exc:
            errors["mac_address"] = exc.error_list
    if not (vendor or "").strip():
        errors["vendor"] = [ValidationError(_("Enter the vendor."), code="required")]
    if serial_number and Equipment.objects.filter(serial_number=serial_number).exists():
        errors["serial_number"] = [
            ValidationError(
                _("Equipment with serial number %(serial)s is already registered.") % {"serial": serial_number},
                code="serial_taken",
            )
        ]
    if mac and Equipment.objects.filter(mac_address=mac).exists():
        errors["mac_address"] = [
            ValidationError(
                _("Equipment with MAC address %(mac)s is already registered.") % {"mac": mac}, code="mac_taken"
            )
        ]
    if errors:
        raise ValidationError(errors)
    equipment = Equipment(
        kind=kind,
        vendor=vendor.strip(),
        model=(model or "").strip(),
        serial_number=serial_number,
        mac_address=mac,
        branch_id=branch_id,
        comment=comment,
    )
    _save_new(
        equipment, on_conflict=ValidationError(_("This equipment is already registered."), code="equipment_taken")
    )
    audit.record(
        actor=acting_user,
        action="equipment.registered",
        obj=equipment,
        after=audit.snapshot(equipment, ["kind", "vendor", "model", "serial_number", "mac_address"]),
    )
    return equipment


@transaction.atomic
def do_assign_equipment(
    equipment: Equipment, subscriber: Subscriber, *, ownership: str, acting_user, comment: str = ""
) -> EquipmentAssignment:
    subscriber = _editable(subscriber, acting_user, Perm.EQUIPMENT_MANAGE)
    equipment = Equipment.objects.select_for_update().get(pk=equipment.pk)
    if not _equipment_visible(acting_user, equipment):
        raise PermissionDenied(_("This device belongs to a branch you do not have access to."))
    if ownership not in EquipmentOwnership.values:
        raise ValidationError(
            {"ownership": ValidationError(_("Choose how the subscriber holds the device."), code="ownership_invalid")}
        )
    if equipment.status in (EquipmentStatus.FAULTY, EquipmentStatus.WRITTEN_OFF):
        raise ValidationError(_("Faulty or written-off equipment cannot be installed."), code="equipment_unusable")
    holder = equipment.assignments.filter(returned_at__isnull=True).select_related("subscriber").first()
    if holder:
        ids = allowed_branch_ids(acting_user)
        if ids is not None and holder.subscriber.branch_id not in ids:
            # A shared-stock device at another branch's subscriber: say that it is taken, not by whom.
            raise ValidationError(
                _("This device is installed at a subscriber of another branch."), code="equipment_assigned"
            )
        raise ValidationError(
            _("This device is installed at subscriber %(account)s; return it first.")
            % {"account": holder.subscriber.account_number},
            code="equipment_assigned",
        )
    assignment = EquipmentAssignment.objects.create(
        equipment=equipment, subscriber=subscriber, ownership=ownership, assigned_at=clock.now(), comment=comment
    )
    equipment.status = EquipmentStatus.INSTALLED
    equipment.save(update_fields=["status"])
    refresh_search_text(subscriber)
    audit.record(
        actor=acting_user,
        action="equipment.assigned",
        obj=equipment,
        subscriber_id=subscriber.pk,
        after={"subscriber": subscriber.account_number, "ownership": ownership},
    )
    return assignment


@transaction.atomic
def do_return_equipment(
    assignment: EquipmentAssignment, *, acting_user, faulty: bool = False, comment: str = ""
) -> EquipmentAssignment:
    subscriber = _editable(assignment.subscriber, acting_user, Perm.EQUIPMENT_MANAGE)
    assignment = EquipmentAssignment.objects.select_for_update().get(pk=assignment.pk)
    if assignment.returned_at is not None:
        raise ValidationError(_("This device has already been returned."), code="already_returned")
    assignment.returned_at = clock.now()
    if comment:
        assignment.comment = comment
    assignment.save(update_fields=["returned_at", "comment"])
    equipment = assignment.equipment
    equipment.status = EquipmentStatus.FAULTY if faulty else EquipmentStatus.IN_STOCK
    equipment.save(update_fields=["status"])
    refresh_search_text(subscriber)
    audit.record(
        actor=acting_user,
        action="equipment.returned",
        obj=equipment,
        subscriber_id=subscriber.pk,
        after={"subscriber": subscriber.account_number, "status": equipment.status},
        reason=comment,
    )
    return assignment


@transaction.atomic
def do_install_equipment(
    subscriber: Subscriber,
    *,
    serial_or_mac: str,
    ownership: str,
    acting_user,
    kind: str = "",
    vendor: str = "",
    model: str = "",
    mac_address: str = "",
) -> EquipmentAssignment:
    """Install a device found by serial number or MAC, registering it first when it is new — all or nothing.

    A branch-limited user finds only their branches' devices and the shared stock: another branch's device is
    refused (``equipment_other_branch``; serials and MACs are unique across branches, so it cannot be
    registered anew either), and nothing of it is shown or changed."""
    check_perm(acting_user, Perm.EQUIPMENT_MANAGE)
    check_branch(acting_user, subscriber.branch_id)
    key = (serial_or_mac or "").strip()
    try:
        mac = normalize_mac(key)
    except ValidationError:
        mac = None
    equipment = Equipment.objects.filter(
        Q(serial_number=key) | Q(mac_address=mac) if mac else Q(serial_number=key)
    ).first()
    if equipment is not None and not _equipment_visible(acting_user, equipment):
        raise ValidationError(
            {
                "serial_or_mac": ValidationError(
                    _("This device belongs to a branch you do not have access to."), code="equipment_other_branch"
                )
            }
        )
    if equipment is None:
        if not (vendor or "").strip():
            raise ValidationError(
                {
                    "vendor": ValidationError(
                        _(
                            "No device with this serial number or MAC is registered: "
                            "enter its type and vendor to register it."
                        ),
                        code="equipment_not_found",
                    )
                }
            )
        equipment = do_register_equipment(
            kind=kind or EquipmentKind.OTHER,
            vendor=vendor,
            model=model,
            serial_number="" if mac else key,
            mac_address=mac_address or (key if mac else ""),
            branch_id=subscriber.branch_id,
            acting_user=acting_user,
        )
    return do_assign_equipment(equipment, subscriber, ownership=ownership, acting_user=acting_user)


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
