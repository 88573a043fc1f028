"""Demo network data: registered after subscriptions (see abonent.core.seeding).

The demo runs ``abonent radius`` beside the web, so it needs a NAS to accept requests from and logins to
answer for: one MikroTik NAS at 127.0.0.1 with a known secret, and one PPPoE login per seeded subscriber,
``demo<subscriber id>`` with the same demo password. The banner prints a ``radclient`` command for the
featured subscriber's login (paid up, so it gets an Access-Accept with its plan's speed).

Only the demo seeds this: the RADIUS benchmarks (bench/_radius.py) make logins of their own.

The logins are one ``INSERT … SELECT`` over the subscribers table, the same SQL on PostgreSQL and SQLite. The
password is encrypted once and the token reused by every row: Fernet per row would take minutes for a
million subscribers, and the token decrypts to the same password whatever row it is on.
"""

from __future__ import annotations

import time

from django.db import connection, transaction

from abonent.core import clock, secrets
from abonent.core.bulk_load import DeferredIndexes
from abonent.core.seeding import SeedContext, seed_step
from abonent.subscribers.seeding import BULK_THRESHOLD

from .models import Login, Nas, Vendor

DEMO_NAS_NAME = "demo-nas"
DEMO_NAS_IP = "127.0.0.1"
DEMO_NAS_SECRET = "abonent-demo-radius-secret"  # noqa: S105 - the demo's, printed in its banner
DEMO_LOGIN_PREFIX = "demo"
DEMO_LOGIN_PASSWORD = "demo-pppoe-password"  # noqa: S105 - the demo's, printed in its banner


@seed_step("network", order=40)
def seed_network(ctx: SeedContext) -> None:
    if not ctx.demo:
        return
    nas = _demo_nas()
    started = time.monotonic()
    with transaction.atomic():
        deferred = None
        if connection.vendor == "postgresql" and ctx.subscribers >= BULK_THRESHOLD:
            deferred = DeferredIndexes([Login._meta.db_table])
            deferred.drop()
        created = _bulk_logins()
        if deferred is not None:
            deferred.restore(ctx.out)
    if created:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Login._meta.db_table}")
        ctx.out.write(f"network logins: {created:,} in {time.monotonic() - started:.1f}s\n")
    ctx.facts["radius"] = {
        "nas_ip": nas.ip_address,
        "secret": nas.secret,
        "username": _featured_username(ctx),
        "password": DEMO_LOGIN_PASSWORD,
    }


def _demo_nas() -> Nas:
    """The NAS at 127.0.0.1, made through the action (audited) on the first run and reused after."""
    nas = Nas.objects.filter(ip_address=DEMO_NAS_IP).first()
    if nas is not None:
        return nas
    from abonent.staff.models import StaffUser

    from .actions import do_create_nas

    admin = StaffUser.objects.filter(role="admin", is_active=True).order_by("pk").first()
    return do_create_nas(
        acting_user=admin,
        name=DEMO_NAS_NAME,
        ip_address=DEMO_NAS_IP,
        secret=DEMO_NAS_SECRET,
        vendor=Vendor.MIKROTIK,
        interim_interval=60,
    )


def _bulk_logins() -> int:
    """A PPPoE login for every subscriber without one. Idempotent: a rerun adds only the missing ones."""
    ops = connection.ops
    now = ops.adapt_datetimefield_value(clock.now())
    token = secrets.encrypt(DEMO_LOGIN_PASSWORD)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO network_login (subscriber_id, subscription_id, kind, username, password_encrypted, "
            "static_ip, pool_id, simultaneous_use, is_active, created_at, updated_at) "
            f"SELECT s.id, NULL, 'pppoe', '{DEMO_LOGIN_PREFIX}' || s.id, %s, NULL, NULL, 1, %s, %s, %s "
            "FROM subscribers_subscriber s "
            "WHERE NOT EXISTS (SELECT 1 FROM network_login l WHERE l.subscriber_id = s.id) ORDER BY s.id "
            # A login a person made by hand may already hold a demo name: keep theirs.
            "ON CONFLICT DO NOTHING",
            [token, True, now, now],
        )
        return cursor.rowcount


def _featured_username(ctx: SeedContext) -> str:
    """The featured subscriber's login (paid up, on "Интернет-100"), else any demo login."""
    from abonent.subscribers.models import ContactPoint

    logins = Login.objects.filter(username__startswith=DEMO_LOGIN_PREFIX).order_by("subscriber_id")
    phone = ctx.facts.get("featured_phone")
    featured = (
        ContactPoint.objects.filter(value=phone).values_list("subscriber_id", flat=True).first() if phone else None
    )
    login = (logins.filter(subscriber_id=featured).first() if featured else None) or logins.first()
    return login.username if login else ""
