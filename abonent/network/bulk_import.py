"""Network logins brought over from the old billing in bulk (the imports app calls this; docs/imports.md).

Passwords are kept as every login keeps them: encrypted with the field key (``Login.set_password``), because CHAP
and MS-CHAPv2 need the clear text. Usernames are normalised as ``do_create_login`` does; static IPs, like the
usernames, are unique by the schema, so a clash raises ``IntegrityError`` and the caller's chunk rolls back whole.
The RADIUS processes are told to reload the new subscribers' logins (the rows ``note_policy_change`` writes).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from abonent.core import clock, secrets
from abonent.core.bulk_load import BulkWriter, matching, reserve_ids

from .actions import normalise_username
from .models import Login, LoginKind, PolicyChange


@dataclass
class ImportedLogin:
    subscriber_id: int
    kind: str  # LoginKind
    username: str
    password: str = ""
    static_ip: str | None = None
    is_active: bool = True


def taken_usernames(kind: str, usernames: list[str]) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(usernames), 5000):
        taken.update(
            matching(Login.objects.filter(kind=kind), "username", usernames[start : start + 5000]).values_list(
                "username", flat=True
            )
        )
    return taken


def taken_static_ips(addresses: list[str]) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(addresses), 5000):
        taken.update(
            matching(Login.objects.all(), "static_ip", addresses[start : start + 5000]).values_list(
                "static_ip", flat=True
            )
        )
    return taken


def clean_username(kind: str, username: str) -> str:
    """The username as stored; ``ValidationError`` on ``username`` for an IPoE MAC that is not one."""
    return normalise_username(kind, username)


def do_import_logins(items: list[ImportedLogin], *, acting_user) -> None:
    """Insert the logins (inside the caller's transaction: one chunk of an import)."""
    if not items:
        return
    pg = connection.vendor == "postgresql"
    moment = clock.now()
    stamp = moment if pg else moment.isoformat()
    ids = reserve_ids(Login, len(items))
    changed = sorted({item.subscriber_id for item in items})
    change_ids = reserve_ids(PolicyChange, len(changed))  # before the COPY thread takes the connection
    rows = [
        (
            login_id,
            item.subscriber_id,
            None,
            item.kind,
            item.username,
            secrets.encrypt(item.password)
            if item.password and item.kind in (LoginKind.PPPOE, LoginKind.HOTSPOT)
            else "",
            item.static_ip or None,
            None,
            1,
            item.is_active,
            stamp,
            stamp,
        )
        for login_id, item in zip(ids, items, strict=True)
    ]
    writer = BulkWriter()
    writer.write(
        "network_login",
        [
            "id",
            "subscriber_id",
            "subscription_id",
            "kind",
            "username",
            "password_encrypted",
            "static_ip",
            "pool_id",
            "simultaneous_use",
            "is_active",
            "created_at",
            "updated_at",
        ],
        rows,
    )
    # What ``note_policy_change`` writes, in the same COPY stream: a model instance per subscriber is not free at
    # 100,000.
    writer.write(
        PolicyChange._meta.db_table,
        ["id", "subscriber_id", "created_at"],
        list(zip(change_ids, changed, [stamp] * len(changed), strict=True)),
    )
    writer.close()
