"""The VAS Experts SORM-3 style dump: ``;``-separated UTF-8 text files per entity, as that vendor's mediation
device imports them, in the directory layout it expects (``ISP/abonents``, ``ISP/aaa``, ``ISP/dict``).

Every column, its unit and its format are in docs/lawful-export.md, which is what an ISP hands its SORM vendor;
change the two together, and bump ``version`` when a column changes. Times are UTC, ``DD.MM.YYYY HH:MM:SS``; dates
``DD.MM.YYYY``; amounts with a point and two decimals; an empty field is an unknown value.
"""

from __future__ import annotations

import datetime as dt

from abonent.network.models import SessionStatus
from abonent.subscribers.models import AddressKind, ContactKind, SubscriberKind, SubscriberStatus

from ..selection import IDENTITY_FIELDS, Selection, static_ip_since, stream
from .base import Package, register_exporter, text

# Федеральная налоговая служба's code of the Russian internal passport (справочник видов документов): the only
# identity document the subscriber registry holds.
PASSPORT_RF = "21"
# AAA event types of the format.
EVENT_START, EVENT_STOP, EVENT_UPDATE = 0, 1, 2
# The format's connection type: 0 is fixed broadband (ШПД), the only access Abonent authorises.
BROADBAND = 0


def _time(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%d.%m.%Y %H:%M:%S") if value else ""


def _date(value: dt.date | None) -> str:
    return value.strftime("%d.%m.%Y") if value else ""


def _address(subscriber, kind: str) -> str:
    for address in subscriber.addresses.all():  # prefetched
        if address.kind == kind:
            return text(_address_text(address))
    return ""


def _address_text(address) -> str:
    parts = [address.postal_code, address.city, address.street, address.house, address.building, address.apartment]
    return ", ".join(p for p in parts if p)


def _identity_value(field: str, value) -> str:
    """An audited value as the other files write it: dates ``DD.MM.YYYY`` (the audit keeps ISO), text neutralised."""
    if value is None:
        return ""
    if field in ("birth_date", "passport_issued_on") and isinstance(value, str):
        try:
            return _date(dt.date.fromisoformat(value))
        except ValueError:
            pass
    return text(value)


@register_exporter
class VasExpertsSorm3:
    name = "vas-experts-sorm3"
    title = "VAS Experts SORM-3"
    version = "1"

    def write(self, selection: Selection, package: Package) -> None:
        stamp = package.stamp
        package.rows(
            f"ISP/abonents/abonents_v1_{stamp}.txt",
            ABONENT_COLUMNS,
            (self.abonent(s) for s in stream(selection.subscribers())),
        )
        package.rows(
            f"ISP/abonents/fiz_v1_{stamp}.txt", FIZ_COLUMNS, (self.fiz(s) for s in stream(selection.individuals()))
        )
        package.rows(
            f"ISP/abonents/jur_v1_{stamp}.txt", JUR_COLUMNS, (self.jur(s) for s in stream(selection.organisations()))
        )
        package.rows(
            f"ISP/abonents/contact_phones_v1_{stamp}.txt",
            CONTACT_COLUMNS,
            (self.contact(c) for c in stream(selection.contacts(ContactKind.PHONE))),
        )
        package.rows(
            f"ISP/abonents/contact_emails_v1_{stamp}.txt",
            CONTACT_COLUMNS,
            (self.contact(c) for c in stream(selection.contacts(ContactKind.EMAIL))),
        )
        package.rows(
            f"ISP/abonents/contracts_v1_{stamp}.txt",
            CONTRACT_COLUMNS,
            (self.contract(c) for c in stream(selection.contracts())),
        )
        package.rows(
            f"ISP/abonents/logins_v1_{stamp}.txt", LOGIN_COLUMNS, (self.login(lg) for lg in stream(selection.logins()))
        )
        package.rows(
            f"ISP/abonents/ip_assignments_v1_{stamp}.txt",
            IP_ASSIGNMENT_COLUMNS,
            (self.ip_assignment(lg) for lg in stream(selection.static_ips())),
        )
        package.rows(
            f"ISP/abonents/identity_changes_v1_{stamp}.txt",
            IDENTITY_CHANGE_COLUMNS,
            (row for event in stream(selection.identity_changes()) for row in self.identity_change(event)),
        )
        agents = selection.agent_names()
        package.rows(
            f"ISP/abonents/payments_v1_{stamp}.txt",
            PAYMENT_COLUMNS,
            (self.payment(p, agents) for p in stream(selection.payments())),
        )
        package.rows(
            f"ISP/aaa/aaa_v1_{stamp}.txt",
            AAA_COLUMNS,
            (event for s in stream(selection.sessions()) for event in self.aaa_events(s)),
        )
        package.rows(
            f"ISP/dict/gateways_v1_{stamp}.txt",
            GATEWAY_COLUMNS,
            (self.gateway(n) for n in stream(selection.gateways())),
        )
        package.rows(
            f"ISP/dict/ip_numbering_v1_{stamp}.txt", POOL_COLUMNS, (self.pool(p) for p in stream(selection.pools()))
        )

    # One row per entity. The column lists below are the documented ones (docs/lawful-export.md).

    @staticmethod
    def abonent(s) -> list:
        return [
            s.account_number,
            s.legacy_account or "",
            1 if s.kind == SubscriberKind.ORGANIZATION else 0,
            text(s.display_name),
            text(s.branch.name),
            0 if s.status == SubscriberStatus.ACTIVE else 1,
            _time(s.created_at),
            _time(s.closed_at),
        ]

    @staticmethod
    def fiz(s) -> list:
        has_passport = bool(s.passport_series or s.passport_number)
        return [
            s.account_number,
            text(s.last_name),
            text(s.first_name),
            text(s.middle_name),
            _date(s.birth_date),
            PASSPORT_RF if has_passport else "",
            s.passport_series,
            s.passport_number,
            text(s.passport_issued_by),
            _date(s.passport_issued_on),
            _address(s, AddressKind.REGISTRATION),
            _address(s, AddressKind.SERVICE),
        ]

    @staticmethod
    def jur(s) -> list:
        return [
            s.account_number,
            text(s.organization_name),
            s.inn,
            s.kpp,
            _address(s, AddressKind.REGISTRATION),
            _address(s, AddressKind.POSTAL),
            _address(s, AddressKind.SERVICE),
        ]

    @staticmethod
    def contact(c) -> list:
        # Phones are E.164 (+ and digits only, checked when entered): written as they are, not neutralised.
        value = c.value if c.kind == ContactKind.PHONE else text(c.value)
        return [c.subscriber.account_number, value, 1 if c.is_primary else 0, text(c.comment)]

    @staticmethod
    def contract(c) -> list:
        return [c.subscriber.account_number, text(c.number), _date(c.signed_on), c.status, _date(c.terminated_on)]

    @staticmethod
    def login(lg) -> list:
        return [
            lg.subscriber.account_number,
            text(lg.username),
            lg.kind,
            lg.static_ip or "",
            1 if lg.is_active else 0,
            _time(lg.created_at),
        ]

    @staticmethod
    def ip_assignment(lg) -> list:
        return [lg.subscriber.account_number, text(lg.username), lg.static_ip, _time(static_ip_since(lg)), ""]

    @staticmethod
    def identity_change(event) -> list[list]:
        """One row per identity field the audited change touched: the value before it and after it."""
        before, after = event.before or {}, event.after or {}
        return [
            [
                event.account_number or "",
                _time(event.created_at),
                field,
                _identity_value(field, before.get(field)),
                _identity_value(field, after.get(field)),
            ]
            for field in IDENTITY_FIELDS
            if field in before or field in after
        ]

    @staticmethod
    def payment(p, agents: dict[str, str]) -> list:
        return [
            p.subscriber.account_number,
            p.pk,
            _time(p.received_at),
            f"{p.amount:.2f}",
            p.method,
            text(p.channel),
            text(agents.get(p.channel, "")),
            text(p.external_id),
            p.status,
            text(p.payer),
            p.payer_inn,
            f"{p.refunded_amount:.2f}",
        ]

    @staticmethod
    def aaa_events(s) -> list[list]:
        """The session's events as the format has them: its start, the last interim update while it is open (the
        NAS's counters then), its stop. Interim updates before the last are not kept (docs/lawful-export.md)."""

        def event(kind: int, at: dt.datetime, octets_in: int, octets_out: int) -> list:
            return [
                _time(at),
                kind,
                text(s.acct_session_id),
                s.framed_ip or "",
                text(s.username),
                s.subscriber.account_number if s.subscriber_id else "",
                BROADBAND,
                s.nas.ip_address,
                text(s.nas_port_id),
                octets_in,
                octets_out,
                text(s.calling_station_id),
            ]

        events = [event(EVENT_START, s.started_at, 0, 0)]
        if s.status == SessionStatus.OPEN:
            if s.updated_at > s.started_at:
                events.append(event(EVENT_UPDATE, s.updated_at, s.input_octets, s.output_octets))
        else:
            events.append(event(EVENT_STOP, s.stopped_at, s.input_octets, s.output_octets))
        return events

    @staticmethod
    def gateway(n) -> list:
        return [n.pk, text(n.name), n.ip_address, n.vendor, 1 if n.is_active else 0]

    @staticmethod
    def pool(p) -> list:
        return [text(p.name), p.network, p.kind]


ABONENT_COLUMNS = [
    "customer_id",
    "legacy_customer_id",
    "customer_type",
    "customer_name",
    "branch",
    "status",
    "created_time",
    "closed_time",
]
FIZ_COLUMNS = [
    "customer_id",
    "last_name",
    "first_name",
    "middle_name",
    "birthday",
    "document_type",
    "document_serial",
    "document_number",
    "document_distributor",
    "document_date",
    "registration_address",
    "service_address",
]
JUR_COLUMNS = ["customer_id", "legal_title", "inn", "kpp", "legal_address", "postal_address", "service_address"]
CONTACT_COLUMNS = ["customer_id", "contact", "is_primary", "comment"]
CONTRACT_COLUMNS = ["customer_id", "contract_number", "contract_date", "contract_status", "contract_end_date"]
LOGIN_COLUMNS = ["customer_id", "login", "login_type", "static_ip", "active", "created_time"]
IP_ASSIGNMENT_COLUMNS = ["customer_id", "login", "ip_address", "assigned_from", "assigned_until"]
IDENTITY_CHANGE_COLUMNS = ["customer_id", "change_time", "field", "old_value", "new_value"]
PAYMENT_COLUMNS = [
    "customer_id",
    "payment_id",
    "pay_time",
    "amount",
    "pay_method",
    "pay_channel",
    "pay_agent",
    "external_id",
    "pay_status",
    "payer",
    "payer_inn",
    "refunded_amount",
]
AAA_COLUMNS = [
    "event_time",
    "event_type",
    "session_id",
    "customer_ip",
    "customer_db_username",
    "customer_id",
    "connection_type",
    "nas_ip_addr",
    "nas_port",
    "input_octets",
    "output_octets",
    "customer_device_mac",
]
GATEWAY_COLUMNS = ["gateway_id", "gateway_name", "gateway_ip", "vendor", "active"]
POOL_COLUMNS = ["pool_name", "network", "pool_kind"]
