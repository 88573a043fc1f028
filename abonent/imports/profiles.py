"""Ready mappings for the exports of the billing systems ISPs usually leave: Mikbill and ABillS.

The column names are the typical ones of those systems' subscriber tables and admin exports (Mikbill: ``users``
with ``packets``; ABillS: ``users``, ``users_pi``, ``bills`` and the internet service's table). Installations
rename and add columns, so they are a starting point: the wizard shows the file's headers beside them, and
docs/imports.md says "typical, check yours".
"""

from __future__ import annotations

from .models import Entity

# The old status, folded to lower case, → ours. A profile's ``options["statuses"]`` adds to these.
DEFAULT_STATUSES = {
    "active": "active",
    "активен": "active",
    "активный": "active",
    "вкл": "active",
    "включен": "active",
    "0": "active",
    "blocked": "blocked",
    "заблокирован": "blocked",
    "блокирован": "blocked",
    "отключен": "blocked",
    "1": "blocked",
    "closed": "closed",
    "закрыт": "closed",
    "удален": "closed",
    "удалён": "closed",
    "расторгнут": "closed",
    "2": "closed",
}

BUILTIN_PROFILES: dict[str, dict[str, dict]] = {
    "mikbill": {
        Entity.SUBSCRIBERS: {
            "mapping": {
                "old_id": "uid",
                "legacy_account": "uid",
                "full_name": "fio",
                "passport_series": "passportserie",
                "passport_number": "passportnumber",
                "passport_issued_by": "passportvoidan",
                "passport_issued_on": "passportdatecreate",
                "birth_date": "date_birth",
                "inn": "inn",
                "address": "address",
                "apartment": "app",
                "phone": "mob_tel",
                "phone2": "phone",
                "email": "email",
                "contract_number": "numdogovor",
                "contract_date": "date_dogovor",
                "plan": "packet",
                "balance": "deposit",
                "credit_limit": "credit",
                "status": "blocked",
                "login": "user",
                "password": "password",
                "static_ip": "framed_ip",
                "mac": "local_mac",
            },
            "options": {"statuses": {"0": "active", "1": "blocked"}},
        },
        Entity.PLANS: {"mapping": {"old_id": "gid", "name": "packet", "price": "fixed_cost"}, "options": {}},
        Entity.PAYMENTS: {
            "mapping": {
                "old_id": "bill_id",
                "subscriber_old_id": "uid",
                "date": "date",
                "amount": "summa",
                "channel": "category",
                "comment": "comment",
            },
            "options": {},
        },
    },
    "abills": {
        Entity.SUBSCRIBERS: {
            "mapping": {
                "old_id": "uid",
                "legacy_account": "uid",
                "full_name": "fio",
                "passport": "pasport_num",
                "passport_issued_by": "pasport_grant",
                "passport_issued_on": "pasport_date",
                "city": "city",
                "street": "address_street",
                "house": "address_build",
                "apartment": "address_flat",
                "phone": "phone",
                "email": "email",
                "contract_number": "contract_id",
                "contract_date": "contract_date",
                "plan": "tp_name",
                "balance": "deposit",
                "credit_limit": "credit",
                "status": "disable",
                "login": "login",
                "password": "password",
                "static_ip": "ip",
                "mac": "cid",
            },
            "options": {"statuses": {"0": "active", "1": "blocked", "2": "closed"}},
        },
        Entity.PLANS: {
            "mapping": {"old_id": "tp_id", "name": "name", "price": "month_fee"},
            "options": {},
        },
        Entity.PAYMENTS: {
            "mapping": {
                "old_id": "id",
                "subscriber_old_id": "uid",
                "date": "date",
                "amount": "sum",
                "channel": "method",
                "comment": "dsc",
            },
            "options": {},
        },
    },
}


def builtin_profile(name: str, entity: str) -> dict | None:
    """``{"mapping": ..., "options": ...}`` of a ready profile, or ``None``."""
    found = BUILTIN_PROFILES.get(name, {}).get(entity)
    return {"mapping": dict(found["mapping"]), "options": dict(found["options"])} if found else None
