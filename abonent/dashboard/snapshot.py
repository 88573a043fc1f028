"""The dashboard's heavy figures, computed every five minutes by ``dashboard.tasks.take_snapshot`` into a
``Snapshot`` row, so that the page reads one row instead of aggregating a million accounts on each view.

Per branch (a branch-limited user sees the sum of their branches'; payments of no subscriber, in suspense, count
under ``"none"``, as the payments journal shows them to everyone):

- **receivables**: what subscribers owe, the sum of the negative balances, and how many owe (debtors);
- **ageing**: the debtors by days of debt in four buckets (0–30, 31–60, 61–90, over 90 days), each with its
  count and debt. A debtor's days of debt count from the oldest charge still unpaid, first in first out: the
  payments and credits on the account pay the oldest charges first, so the debt is the newest charges that add up
  to it, and the oldest of those sets the age. Only charges count (``CHARGE_KINDS``): a debit that undoes a credit
  (a cancelled payment's reversal, a promised payment closed, a refund, bonus money taken back) brings the older
  charges that credit had paid back into debt, it is not a fresh one. Only charges of the last 90 days are read; a
  debt they do not cover is over 90 days old. One statement with a window function, the same on PostgreSQL and SQLite;
- **payments** of this month up to two minutes before the snapshot, by channel, of today by channel, and by day
  (the page adds those recorded since, counted live);
- **active subscribers**.

For the whole ISP only (they are not kept per branch: the billing run books revenue per batch, not per
subscriber): **revenue by service** this month and last month, from the postings of the revenue accounts, and
**ARPU**, the month's revenue divided by the subscribers who had a subscription in that month. And for the network:
**sessions online over the last day and week**, from monitoring's samples.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from abonent.billing import selectors as billing_selectors
from abonent.billing.models import (
    AccountKind,
    LedgerAccount,
    LedgerTransaction,
    Posting,
    TransactionKind,
)
from abonent.core import clock
from abonent.core.money import quantize
from abonent.network.monitoring import selectors as monitoring
from abonent.payments.models import Payment, PaymentStatus
from abonent.subscribers.models import Subscriber, SubscriberStatus

from .models import Snapshot

FORMAT_VERSION = 2
# Ageing buckets: upper bounds in days of debt (the last bucket is everything older).
AGEING_DAYS = (30, 60, 90)
NO_BRANCH = "none"
KEEP = dt.timedelta(days=1)
PAYMENTS_MARGIN = dt.timedelta(minutes=2)
ZERO = Decimal("0.00")
# The transactions whose debits on a subscriber's account are charges, which date a debt (``_ageing_sql``). The
# promised payment's own debit is its fee. Not: REVERSAL (its debits undo credits: payments, credit adjustments),
# PROMISED_CLOSE, REFUND, BONUS_EXPIRY (money of cancelled payments' points taken back), PAYMENT.
CHARGE_KINDS = (
    TransactionKind.FEE,
    TransactionKind.ACTIVATION,
    TransactionKind.PLAN_CHANGE,
    TransactionKind.FREEZE,
    TransactionKind.ONE_OFF,
    TransactionKind.ADJUSTMENT,
    TransactionKind.PROMISED_TAKE,
    TransactionKind.TURBO,
    TransactionKind.USAGE,
    TransactionKind.TIME,
    TransactionKind.TIME_PACKAGE,
    TransactionKind.VOUCHER_SALE,
)


def _money(value) -> Decimal:
    """A sum from the database as an exact amount: PostgreSQL gives numeric, SQLite may give a float."""
    if value is None:
        return ZERO
    return quantize(Decimal(str(value)))


def _branch_key(branch_id) -> str:
    return NO_BRANCH if branch_id is None else str(branch_id)


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _previous_month_start(day: dt.date) -> dt.date:
    return _month_start(_month_start(day) - dt.timedelta(days=1))


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


# --- receivables and ageing ------------------------------------------------------------------------------------


def _ageing_sql() -> str:
    account, subscriber = LedgerAccount._meta.db_table, Subscriber._meta.db_table
    posting, tx = Posting._meta.db_table, LedgerTransaction._meta.db_table
    kinds = ", ".join(f"%(kind{n})s" for n in range(len(CHARGE_KINDS)))
    return f"""
        WITH debtors AS (
            SELECT a.id AS account_id, s.branch_id, -a.balance AS debt
            FROM {account} a JOIN {subscriber} s ON s.id = a.subscriber_id
            WHERE a.kind = %(subscriber_kind)s AND a.balance < 0
        ),
        debits AS (
            SELECT p.account_id, t.effective_date AS day, -p.amount AS amount,
                   SUM(-p.amount) OVER (
                       PARTITION BY p.account_id ORDER BY t.effective_date DESC, p.id DESC
                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                   ) AS running
            FROM {posting} p JOIN {tx} t ON t.id = p.transaction_id
            WHERE p.account_id IN (SELECT account_id FROM debtors) AND p.amount < 0 AND t.effective_date >= %(horizon)s
              AND t.kind IN ({kinds})
        ),
        oldest AS (
            SELECT b.account_id, MIN(b.day) AS since, MAX(b.running) AS covered
            FROM debits b JOIN debtors d ON d.account_id = b.account_id
            WHERE b.running - b.amount < d.debt
            GROUP BY b.account_id
        )
        SELECT d.branch_id,
               CASE WHEN o.since IS NULL OR o.covered < d.debt THEN 3
                    WHEN o.since >= %(d0)s THEN 0
                    WHEN o.since >= %(d1)s THEN 1
                    ELSE 2 END AS bucket,
               COUNT(*), SUM(d.debt)
        FROM debtors d LEFT JOIN oldest o ON o.account_id = d.account_id
        GROUP BY 1, 2
    """


def debts_by_branch(today: dt.date) -> dict[str, dict]:
    """Per branch: debtors, receivables and the ageing buckets ``[[count, debt], ×4]`` (module docstring)."""
    bounds = [today - dt.timedelta(days=days) for days in AGEING_DAYS]
    ops = connection.ops
    params = {
        "subscriber_kind": str(AccountKind.SUBSCRIBER),
        "horizon": ops.adapt_datefield_value(bounds[-1]),
        "d0": ops.adapt_datefield_value(bounds[0]),
        "d1": ops.adapt_datefield_value(bounds[1]),
        **{f"kind{n}": str(kind) for n, kind in enumerate(CHARGE_KINDS)},
    }
    result: dict[str, dict] = {}
    with connection.cursor() as cursor:
        cursor.execute(_ageing_sql(), params)
        for branch_id, bucket, count, debt in cursor.fetchall():
            entry = result.setdefault(
                _branch_key(branch_id),
                {"debtors": 0, "receivables": ZERO, "ageing": [[0, ZERO] for _ in range(len(AGEING_DAYS) + 1)]},
            )
            amount = _money(debt)
            entry["debtors"] += count
            entry["receivables"] += amount
            entry["ageing"][int(bucket)][0] += count
            entry["ageing"][int(bucket)][1] += amount
    return result


# --- payments, revenue, subscribers ----------------------------------------------------------------------------


def payments_by_branch(month_start: dt.date, today: dt.date, until: dt.datetime) -> dict[str, dict]:
    """Payments recorded from ``month_start`` until ``until`` (not cancelled), per branch: by channel
    ``{channel: [amount, count]}``, those of ``today`` by channel, and by day ``{iso day: amount}``."""
    rows = (
        Payment.objects.filter(created_at__gte=_local_midnight(month_start), created_at__lt=until)
        .exclude(status=PaymentStatus.CANCELLED)
        .annotate(day=TruncDate("created_at"))
        .values("subscriber__branch_id", "channel", "day")
        .annotate(total=Sum("amount"), n=Count("id"))
        .order_by()
    )
    result: dict[str, dict] = {}
    for row in rows:
        entry = result.setdefault(
            _branch_key(row["subscriber__branch_id"]), {"by_channel": {}, "today_by_channel": {}, "by_day": {}}
        )
        amount = _money(row["total"])
        periods = [entry["by_channel"]] + ([entry["today_by_channel"]] if row["day"] == today else [])
        for by_channel in periods:
            channel = by_channel.setdefault(row["channel"], [ZERO, 0])
            channel[0] += amount
            channel[1] += row["n"]
        day = row["day"].isoformat()
        entry["by_day"][day] = entry["by_day"].get(day, ZERO) + amount
    return result


def subscribers_by_branch() -> dict[str, int]:
    rows = (
        Subscriber.objects.filter(status=SubscriberStatus.ACTIVE).values("branch_id").annotate(n=Count("id")).order_by()
    )
    return {_branch_key(row["branch_id"]): row["n"] for row in rows}


def revenue_by_service(previous_start: dt.date, month_start: dt.date, next_start: dt.date) -> list[dict]:
    """Revenue of this month and the last per service (revenue accounts' postings by the transactions' dates):
    fees and traffic of one service together; revenue of no service (promised-payment fees) by its account."""
    rows = (
        Posting.objects.filter(
            account__kind=AccountKind.REVENUE,
            transaction__effective_date__gte=previous_start,
            transaction__effective_date__lt=next_start,
        )
        .values("account_id", "account__name", "account__service_id", "account__service__name")
        .annotate(
            month=Sum("amount", filter=Q(transaction__effective_date__gte=month_start)),
            previous=Sum("amount", filter=Q(transaction__effective_date__lt=month_start)),
        )
        .order_by()
    )
    merged: dict[str, dict] = {}
    for row in rows:
        service_id = row["account__service_id"]
        key = f"s{service_id}" if service_id else f"a{row['account_id']}"
        name = row["account__service__name"] if service_id else row["account__name"]
        entry = merged.setdefault(key, {"name": name, "month": ZERO, "previous": ZERO})
        entry["month"] += _money(row["month"])
        entry["previous"] += _money(row["previous"])
    return sorted(merged.values(), key=lambda e: (-e["month"], e["name"]))


def _arpu(revenue: Decimal, subscribers: int) -> Decimal | None:
    return quantize(revenue / subscribers) if subscribers else None


# --- the snapshot ---------------------------------------------------------------------------------------------


def _json_ready(value):
    """Decimals as strings (exact), everything else as JSON has it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    return value


def compute_figures(now: dt.datetime | None = None) -> dict:
    now = now or clock.now()
    today = timezone.localtime(now).date()
    month_start, previous_start = _month_start(today), _previous_month_start(today)
    next_start = _month_start(month_start + dt.timedelta(days=32))
    branches: dict[str, dict] = defaultdict(dict)
    for key, entry in debts_by_branch(today).items():
        branches[key].update(entry)
    # The page counts the payments recorded since ``payments_until`` itself: a few minutes' worth, through the
    # index on created_at, whatever the day's volume. A margin before ``now`` leaves to the page a payment whose
    # transaction began before the snapshot and committed after its read.
    payments_until = max(now - PAYMENTS_MARGIN, _local_midnight(today))
    for key, entry in payments_by_branch(month_start, today, payments_until).items():
        branches[key]["payments"] = entry
    for key, count in subscribers_by_branch().items():
        branches[key]["subscribers"] = count
    services = revenue_by_service(previous_start, month_start, next_start)
    month_revenue = sum((s["month"] for s in services), ZERO)
    previous_revenue = sum((s["previous"] for s in services), ZERO)
    billed_month = billing_selectors.subscribers_billed(month_start, today + dt.timedelta(days=1))
    billed_previous = billing_selectors.subscribers_billed(previous_start, month_start)
    day = monitoring.online_series(since=now - monitoring.DAY)
    week = monitoring.online_series(since=now - monitoring.WEEK, bucket_seconds=3600)
    return _json_ready(
        {
            "version": FORMAT_VERSION,
            "day": today.isoformat(),
            "month": month_start.isoformat(),
            "previous_month": previous_start.isoformat(),
            "payments_until": payments_until.isoformat(),
            "branches": dict(branches),
            "revenue": {"services": services, "month": month_revenue, "previous": previous_revenue},
            "arpu": {
                "month": _arpu(month_revenue, billed_month),
                "month_subscribers": billed_month,
                "previous": _arpu(previous_revenue, billed_previous),
                "previous_subscribers": billed_previous,
            },
            "online": {
                "day": day.as_json(),
                "week": week.as_json(),
                "peak_day": max(day.values["sessions"], default=0),
                "peak_week": max(week.values["sessions"], default=0),
            },
        }
    )


def do_take_snapshot(now: dt.datetime | None = None) -> Snapshot:
    """Compute the figures and store them as the newest snapshot; snapshots older than a day are deleted."""
    now = now or clock.now()
    started = time.monotonic()
    figures = compute_figures(now)
    duration_ms = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        snapshot = Snapshot.objects.create(taken_at=now, duration_ms=duration_ms, figures=figures)
        Snapshot.objects.filter(taken_at__lt=now - KEEP).delete()
    return snapshot
