"""Demo and benchmark billing data: registered after subscribers (see abonent.core.seeding).

Every seeded subscriber without a subscription gets one internet subscription and a personal ledger account,
and most get an opening payment, so the next billing run (and ``bench/billing_run.py``) has a realistic
population to charge: mostly "Интернет-100" monthly, about 30 % on the daily plan, a few on "Домашний" or
"Игровой". Cursors (``next_charge_on``) are set to today: the next run charges everyone.

The rows are written set-based, one ``INSERT … SELECT`` per table over the subscribers table, the same SQL
on PostgreSQL and SQLite: nothing travels between Python and the database, a million subscriptions take
seconds. Choices that look random are a hash of the subscriber id salted from the seed's random generator,
so the same seed gives the same data. The ledger's own guards stay on and prove the data: accounts are
created at zero, each opening payment's two legs go in one statement (PostgreSQL's zero-sum trigger sees
them together) and the balance triggers move the cached balances.

The demo's featured subscriber goes through the real actions instead (audited, with its event history):
on "Интернет-100" for the last few months, paid up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from decimal import Decimal

from django.db import connection, transaction

from abonent.core import clock
from abonent.core.bulk_load import DeferredIndexes
from abonent.core.seeding import SeedContext, seed_step
from abonent.subscribers.seeding import BULK_THRESHOLD

from . import ledger
from .models import LedgerAccount, LedgerTransaction, Posting, Subscription, SubscriptionEvent

BULK_MODELS = [LedgerAccount, LedgerTransaction, Posting, Subscription, SubscriptionEvent]

# Out of 100 subscribers (by hash bucket): which plan they are on.
PLAN_MIX = [("internet-100-daily", 30), ("gamer", 5), ("home", 8), ("internet-100", 57)]
# Out of 100: who made an opening payment (the rest start at zero and owe after their first charge).
PAYING_PERCENT = 85
PAYMENT_CHANNEL = "bank"
# Opening payments are 500–2,000 ₽ in steps of 50 ₽.
PAYMENT_MIN, PAYMENT_STEP, PAYMENT_STEPS = 500, 50, 31
# Subscribers without a contract (created by hand, not by the seed) started this long ago.
DEFAULT_AGE_DAYS = 120
FEATURED_MONTHS = 3


@seed_step("subscriptions", order=30)
def seed_subscriptions(ctx: SeedContext) -> None:
    from abonent.catalog.models import Plan

    plans = dict(Plan.objects.filter(code__in=[code for code, _ in PLAN_MIX]).values_list("code", "pk"))
    if len(plans) != len(PLAN_MIX):
        return  # no demo catalog: nothing to subscribe to
    if ctx.demo:
        _featured_subscription(ctx)
    salt = ctx.rng.randrange(1, 2**31)
    started = time.monotonic()
    tables = [m._meta.db_table for m in BULK_MODELS]
    # One transaction: a failed seed leaves nothing half-loaded. For a big load on PostgreSQL the foreign keys
    # and plain indexes of the tables written are set aside and rebuilt once (``subscribers.seeding`` explains).
    with transaction.atomic():
        deferred = None
        if connection.vendor == "postgresql" and _due_count() >= BULK_THRESHOLD:
            deferred = DeferredIndexes(tables)
            deferred.drop()
        counts = _bulk_subscriptions(plans, salt)
        if deferred is not None:
            deferred.restore(ctx.out)
    if counts["subscriptions"]:
        ctx.out.write(
            f"subscriptions: {counts['subscriptions']:,} with {counts['accounts']:,} new accounts and "
            f"{counts['payments']:,} opening payments in {time.monotonic() - started:.1f}s\n"
        )
        if connection.vendor == "postgresql" and counts["subscriptions"] >= 10_000:
            _vacuum_analyze(ctx)
    ctx.facts["subscriptions_created"] = counts["subscriptions"]


def _due_count() -> int:
    from abonent.subscribers.models import Subscriber

    return Subscriber.objects.filter(status="active").exclude(subscriptions__isnull=False).count()


def _featured_subscription(ctx: SeedContext) -> None:
    """The demo banner's subscriber: "Интернет-100" from the 1st of a month a few months back, paid monthly."""
    from abonent.catalog.models import Plan
    from abonent.staff.models import StaffUser
    from abonent.subscribers.models import ContactPoint
    from abonent.subscribers.seeding import FEATURED_PHONE

    from .actions import do_activate_subscription, do_post_payment

    contact = ContactPoint.objects.filter(value=FEATURED_PHONE).select_related("subscriber").first()
    if contact is None or Subscription.objects.filter(subscriber_id=contact.subscriber_id).exists():
        return
    subscriber = contact.subscriber
    admin = StaffUser.objects.filter(role="admin", is_active=True).order_by("pk").first()
    plan = Plan.objects.get(code="internet-100")
    today = clock.today()
    months = [_add_months(today.replace(day=1), -k) for k in range(FEATURED_MONTHS, -1, -1)]
    for number, month in enumerate(months, start=1):
        do_post_payment(
            subscriber,
            amount=Decimal("700.00"),
            channel="cash",
            external_id=f"demo-featured-{number}",
            paid_on=month,
            acting_user=admin,
            memo="Оплата в кассе",
        )
    do_activate_subscription(subscriber, plan=plan, acting_user=admin, starts_on=months[0], reason="Подключение")


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1)


def _bulk_subscriptions(plans: dict[str, int], salt: int) -> dict[str, int]:
    pg = connection.vendor == "postgresql"
    ops = connection.ops
    now = ops.adapt_datetimefield_value(clock.now())
    today = clock.today()
    cash_id = ledger.cash_account(PAYMENT_CHANNEL).pk

    def bucket(column: str, purpose: int) -> str:
        """A well-mixed 0–99 per subscriber and purpose: the top bits of a multiplicative hash of id + salt
        (``%%`` is SQL's modulo, escaped for the parameter placeholders)."""
        return f"(({column} * 2654435761 + {salt * purpose % 2**32}) %% 4294967296 / 65536 %% 100)"

    plan_case, upper = [], 0
    for code, share in PLAN_MIX[:-1]:
        upper += share
        plan_case.append(f"WHEN {bucket('v.id', 1)} < {upper} THEN {plans[code]}")
    plan_expr = f"CASE {' '.join(plan_case)} ELSE {plans[PLAN_MIX[-1][0]]} END"
    if pg:
        money_text = "({amount})::numeric(14, 2)::text"
        digest = "encode(sha256(convert_to({body}, 'UTF8')), 'hex')"
        anchor_day = "EXTRACT(DAY FROM v.started_on)::int"
        started_on = "v.started_on::text"
    else:
        connection.ensure_connection()
        connection.connection.create_function("abonent_sha256", 1, _sha256_hex, deterministic=True)
        money_text = "printf('%%.2f', {amount})"
        digest = "abonent_sha256({body})"
        anchor_day = "CAST(strftime('%%d', v.started_on) AS INTEGER)"
        started_on = "v.started_on"
    default_start = ops.adapt_datefield_value(today - dt.timedelta(days=DEFAULT_AGE_DAYS))
    amount = f"({PAYMENT_MIN} + {bucket('v.id', 3)} %% {PAYMENT_STEPS} * {PAYMENT_STEP})"
    counts = {}
    with connection.cursor() as cursor:
        # The subscribers this step is for, with the day each started (the contract's date, as the seed made
        # it), set down first: no statement below then reads the table it writes (an anti-join against a table
        # growing under it, planned from stale statistics, can turn quadratic).
        cursor.execute("DROP TABLE IF EXISTS billing_seed_due")
        cursor.execute(
            "CREATE TEMPORARY TABLE billing_seed_due AS SELECT s.id, "
            "COALESCE((SELECT MIN(c.signed_on) FROM subscribers_contract c WHERE c.subscriber_id = s.id), %s) "
            "AS started_on, NOT EXISTS (SELECT 1 FROM billing_ledgeraccount a WHERE a.subscriber_id = s.id) "
            "AS needs_account FROM subscribers_subscriber s WHERE s.status = 'active' "
            "AND NOT EXISTS (SELECT 1 FROM billing_subscription x WHERE x.subscriber_id = s.id) ORDER BY s.id",
            [default_start],
        )
        cursor.execute("ANALYZE billing_seed_due")
        due = "billing_seed_due AS v"
        cursor.execute(
            "INSERT INTO billing_ledgeraccount (kind, code, name, subscriber_id, balance, credit_limit, created_at) "
            f"SELECT 'subscriber', 'subscriber:' || v.id, 'subscriber ' || v.id, v.id, 0, 0, %s FROM {due} "
            "WHERE v.needs_account ORDER BY v.id",
            [now],
        )
        counts["accounts"] = cursor.rowcount
        cursor.execute("ANALYZE billing_ledgeraccount")

        # Opening payments: the transactions (with the request hash ``ledger.post`` would compute), then both
        # legs of all of them in one statement.
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM billing_ledgertransaction")
        last_tx = cursor.fetchone()[0]
        account_leg = f"a.id || ':' || {money_text.format(amount=amount)}"
        cash_leg = f"'{cash_id}:-' || {money_text.format(amount=amount)}"
        body = (
            f"'payment|' || {started_on} || '|' || CASE WHEN a.id < {cash_id} "
            f"THEN {account_leg} || '|' || {cash_leg} ELSE {cash_leg} || '|' || {account_leg} END"
        )
        cursor.execute(
            "INSERT INTO billing_ledgertransaction (idempotency_key, request_hash, kind, effective_date, created_at, "
            "subscriber_id, memo, legs) "
            f"SELECT 'payment:{PAYMENT_CHANNEL}:opening-' || v.id, {digest.format(body=body)}, 'payment', "
            f"v.started_on, %s, v.id, %s, 2 FROM {due} JOIN billing_ledgeraccount a ON a.subscriber_id = v.id "
            f"WHERE {bucket('v.id', 2)} < {PAYING_PERCENT} ORDER BY v.id",
            [now, "Первый платёж"],
        )
        counts["payments"] = cursor.rowcount
        cursor.execute("ANALYZE billing_ledgertransaction")
        leg_amount = f"({PAYMENT_MIN} + {bucket('t.subscriber_id', 3)} %% {PAYMENT_STEPS} * {PAYMENT_STEP})"
        cursor.execute(
            "INSERT INTO billing_posting (transaction_id, account_id, amount) "
            f"SELECT t.id, CASE WHEN leg.n = 1 THEN a.id ELSE {cash_id} END, "
            f"CASE WHEN leg.n = 1 THEN {leg_amount} ELSE -{leg_amount} END "
            "FROM billing_ledgertransaction t JOIN billing_ledgeraccount a ON a.subscriber_id = t.subscriber_id "
            "CROSS JOIN (SELECT 1 AS n UNION ALL SELECT 2) AS leg "
            "WHERE t.id > %s AND t.kind = 'payment' AND t.idempotency_key LIKE %s ORDER BY t.id, leg.n",
            [last_tx, f"payment:{PAYMENT_CHANNEL}:opening-%"],
        )

        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM billing_subscription")
        last_subscription = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO billing_subscription (subscriber_id, plan_id, service_id, status, started_on, ended_on, "
            "anchor_day, next_charge_on, charge_cycle, pending_plan_id, pending_plan_from, created_at) "
            f"SELECT v.id, {plan_expr}, (SELECT p.service_id FROM catalog_plan p WHERE p.id = {plan_expr}), 'active', "
            f"v.started_on, NULL, {anchor_day}, %s, 0, NULL, NULL, %s "
            f"FROM {due} ORDER BY v.id",
            [ops.adapt_datefield_value(today), now],
        )
        counts["subscriptions"] = cursor.rowcount
        cursor.execute(
            "INSERT INTO billing_subscriptionevent (subscription_id, kind, effective_at, from_plan_id, to_plan_id, "
            "acting_user_id, reason, created_at) "
            "SELECT x.id, 'activated', %s, NULL, x.plan_id, NULL, '', %s FROM billing_subscription x "
            "WHERE x.id > %s ORDER BY x.id",
            [now, now, last_subscription],
        )
        cursor.execute("DROP TABLE billing_seed_due")
    return counts


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _vacuum_analyze(ctx: SeedContext) -> None:
    """VACUUM sets hint bits and the visibility map now, so the first billing run does not pay for it (and the
    accounts' balance updates leave a dead version of every row). Inside a caller's transaction, where VACUUM
    cannot run, ANALYZE alone still gives the planner the new row counts."""
    started = time.monotonic()
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
    with connection.cursor() as cursor:
        for model in BULK_MODELS:
            cursor.execute(f"{command} {model._meta.db_table}")
    ctx.out.write(f"billing {command.lower()}: {time.monotonic() - started:.1f}s\n")
