"""The fields a file of each kind can fill, which of them a mapping must name, and their labels for the wizard.

A mapping is ``{our field: the file's column header}``. Some requirements are alternatives (a full name, or the
last and first names, or an organisation's name): ``REQUIRED`` lists groups, and a mapping must name every field
of at least one alternative of each group.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from .models import Entity


@dataclass(frozen=True)
class Field:
    name: str
    label: str


SUBSCRIBER_FIELDS = [
    Field("old_id", _("Old system's id")),
    Field("legacy_account", _("Old account number")),
    Field("full_name", _("Full name (last, first, patronymic)")),
    Field("last_name", _("Last name")),
    Field("first_name", _("First name")),
    Field("middle_name", _("Patronymic")),
    Field("organization_name", _("Organisation name")),
    Field("inn", _("INN")),
    Field("kpp", _("KPP")),
    Field("passport", _("Passport (series and number)")),
    Field("passport_series", _("Passport series")),
    Field("passport_number", _("Passport number")),
    Field("passport_issued_by", _("Passport issued by")),
    Field("passport_issued_on", _("Passport issued on")),
    Field("birth_date", _("Date of birth")),
    Field("address", _("Address (one line)")),
    Field("city", _("City")),
    Field("street", _("Street")),
    Field("house", _("House")),
    Field("building", _("Building")),
    Field("apartment", _("Apartment")),
    Field("phone", _("Phone")),
    Field("phone2", _("Second phone")),
    Field("email", _("Email")),
    Field("contract_number", _("Contract number")),
    Field("contract_date", _("Contract date")),
    Field("plan", _("Plan")),
    Field("price", _("Individual monthly price")),
    Field("discount_percent", _("Discount, %")),
    Field("balance", _("Balance")),
    Field("credit_limit", _("Credit limit")),
    Field("status", _("Status")),
    Field("login", _("Login")),
    Field("password", _("Password")),
    Field("static_ip", _("Static IP address")),
    Field("mac", _("MAC address (IPoE)")),
    Field("equipment_model", _("Equipment model")),
    Field("equipment_serial", _("Equipment serial number")),
    Field("equipment_mac", _("Equipment MAC address")),
    Field("branch", _("Branch")),
    Field("nas", _("NAS")),
]

PLAN_FIELDS = [
    Field("old_id", _("Old system's id")),
    Field("name", _("Plan name")),
    Field("price", _("Monthly fee")),
    Field("download", _("Download speed")),
    Field("upload", _("Upload speed")),
]

PAYMENT_FIELDS = [
    Field("old_id", _("Old system's id")),
    Field("subscriber_old_id", _("Subscriber's old id")),
    Field("account", _("Old account number")),
    Field("date", _("Date")),
    Field("amount", _("Amount")),
    Field("channel", _("Channel")),
    Field("comment", _("Comment")),
]

FIELDS: dict[str, list[Field]] = {
    Entity.SUBSCRIBERS: SUBSCRIBER_FIELDS,
    Entity.PLANS: PLAN_FIELDS,
    Entity.PAYMENTS: PAYMENT_FIELDS,
}

# Each group: alternatives, each a set of fields that together satisfy it.
REQUIRED: dict[str, list[list[tuple[str, ...]]]] = {
    Entity.SUBSCRIBERS: [
        [("old_id",)],
        [("full_name",), ("last_name", "first_name"), ("organization_name",)],
        [("plan",)],
        [("balance",)],
    ],
    Entity.PLANS: [[("name",)], [("price",)]],
    Entity.PAYMENTS: [[("old_id",)], [("subscriber_old_id",), ("account",)], [("date",)], [("amount",)]],
}


def field_names(entity: str) -> list[str]:
    return [f.name for f in FIELDS[entity]]


def label_of(entity: str, name: str) -> str:
    return next((str(f.label) for f in FIELDS[entity] if f.name == name), name)
