"""What the subscribers app's actions share: the data they take, validation, the search text, locks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from abonent.core import clock
from abonent.staff.permissions import Perm, check_branch, check_perm

from ..models import (
    AddressKind,
    ContactKind,
    Contract,
    Equipment,
    Subscriber,
    SubscriberKind,
)
from ..search import address_search_text, build_search_text, name_key
from ..validators import (
    normalize_phone,
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
    "legacy_account",
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
    legacy_account: str = ""  # the old system's account number (actions.legacy), empty for none
    contract_number: str = ""  # empty: the account number
    contract_signed_on: dt.date | None = None  # empty: today
    consent_personal_data: bool = False
    consent_marketing: bool = False
    group_ids: list[int] = field(default_factory=list)
    addresses: list[AddressData] = field(default_factory=list)
    contacts: list[ContactData] = field(default_factory=list)


# --- validation -------------------------------------------------------------------------------------


# ``Choices.values`` builds a list on every access; an import cleans 100,000 profiles and addresses.
_SUBSCRIBER_KINDS = frozenset(SubscriberKind.values)
_ADDRESS_KINDS = frozenset(AddressKind.values)
_ADDRESS_FIELDS = fields(AddressData)


def _strip(values: dict) -> dict:
    return {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}


def clean_profile(values: dict) -> dict:
    """Validate and normalise the person/organisation fields; raise one ValidationError naming every bad field."""
    values = _strip(values)
    errors: dict[str, list[ValidationError]] = {}

    def add(name: str, error: ValidationError) -> None:
        errors.setdefault(name, []).append(error)

    kind = values.get("kind")
    if kind not in _SUBSCRIBER_KINDS:
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
    data = AddressData(**_strip({f.name: getattr(data, f.name) for f in _ADDRESS_FIELDS}))
    errors = {}
    if data.kind not in _ADDRESS_KINDS:
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
        legacy_account=subscriber.legacy_account,
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
    subscriber.name_key = name_key(subscriber.display_name)
    Subscriber.objects.filter(pk=subscriber.pk).update(search_text=subscriber.search_text, name_key=subscriber.name_key)


def _lock(subscriber: Subscriber) -> Subscriber:
    return Subscriber.objects.select_for_update().get(pk=subscriber.pk)


def _editable(subscriber: Subscriber, acting_user, perm: Perm = Perm.SUBSCRIBER_EDIT) -> Subscriber:
    """The subscriber locked for a change by ``acting_user``. ``None`` is the system, or the subscriber in the portal
    (ADR 0017), whose access is the portal's own narrowing to itself: no staff permission applies."""
    if acting_user is not None:
        check_perm(acting_user, perm)
    subscriber = _lock(subscriber)
    if acting_user is not None:
        check_branch(acting_user, subscriber.branch_id)
    return subscriber
