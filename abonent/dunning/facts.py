"""Reading what decides access states: one set-based statement per range (or list) of subscribers.

The statement reads a subscriber's money (balance + credit limit), the fees of its live subscriptions, its
current access state, and — only when any exist — the dunning rules of its groups and plans and the exemptions in
force. Every part is filtered by the same range of subscriber ids, so each is an index range scan of its table
and the parts meet in hash joins; a correlated subquery per subscriber (the first version read rules and
exemptions that way) cost a lookup per row and per part, four for each of 50,000 subscribers a chunk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

from django.conf import settings
from django.db import connection, transaction

from abonent.billing.models import PromisedPayment, PromisedPaymentStatus
from abonent.core.deadlines import db_deadline

from .models import DunningRule, Exemption

ZERO = Decimal("0.00")
# A split daily plan charges its monthly fee over the days of the month: the dearest day is a 28-day month's.
SPLIT_DAYS = 28
RATE = Decimal("0.0001")
NO_SUSPEND = 32767  # a rule's "never suspend", as a number the SQL can take the largest of
# A chunk's facts take about a second on PostgreSQL; this is for a server in trouble, not a slow day.
STATEMENT_SECONDS = 120


@dataclass(slots=True)
class Facts:
    """What ``decide`` needs to know of one subscriber, as ``read_facts`` reads it."""

    subscriber_id: int
    available: Decimal  # balance + credit limit (an open promised payment is in the balance)
    monthly_due: Decimal  # the monthly fees of the active subscriptions charged monthly
    monthly_next: dt.date | None  # their earliest next charge
    daily_rate: Decimal  # the fees of a day of the active subscriptions charged daily
    active: int  # active subscriptions
    frozen: int  # frozen subscriptions
    state: str | None  # None: no row yet (active)
    restricted_since: dt.datetime | None
    owed: Decimal
    exempt: bool  # an exemption in force today
    was_exempt: bool
    reminded_for: dt.date | None
    reminded_days: int | None
    warn_days: int
    suspend_days: int | None
    # Open promised payments: in ``available`` until ``promised_due`` (their last day), withdrawn the day after.
    promised: Decimal = ZERO
    promised_due: dt.date | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """What the statement must include this time: the parts with nothing to read are left out."""

    group_rules: bool
    plan_rules: bool
    exemptions: bool
    promises: bool
    warn_default: int
    suspend_default: int | None
    remind_days: tuple[int, ...]  # the "N days left" reminders, ascending

    @classmethod
    def now(cls, today: dt.date) -> Scope:
        default = DunningRule.objects.filter(is_default=True).values_list("warn_days", "suspend_after_days").first()
        if default is not None:
            warn_default, suspend_default = default
        else:
            warn_default = settings.ABONENT_DUNNING_WARN_DAYS
            suspend_default = settings.ABONENT_DUNNING_SUSPEND_DAYS or None
        return cls(
            group_rules=DunningRule.objects.filter(group__isnull=False).exists(),
            plan_rules=DunningRule.objects.filter(plan__isnull=False).exists(),
            exemptions=Exemption.objects.filter(revoked_at__isnull=True, expires_on__gte=today).exists(),
            promises=PromisedPayment.objects.filter(status=PromisedPaymentStatus.OPEN).exists(),
            warn_default=warn_default,
            suspend_default=suspend_default,
            remind_days=tuple(sorted({int(d) for d in settings.ABONENT_DUNNING_REMIND_DAYS if int(d) >= 0})),
        )


def facts_sql(
    scope: Scope,
    *,
    today: dt.date,
    ids: list[int] | None = None,
    id_range: tuple[int, int] | None = None,
    quiet_beyond: int | None = None,
):
    """(sql, params) over the subscribers in ``ids`` or in ``(lo, hi]``. With ``quiet_beyond`` (the sweep), the
    subscribers ``quiet`` says cannot have changed are left out."""
    params: list = []

    def among(column: str) -> str:
        if ids is not None:
            params.extend(ids)
            return f"{column} IN ({', '.join(['%s'] * len(ids))})"
        params.extend(id_range)
        return f"{column} > %s AND {column} <= %s"

    params.append(today)
    price = """price AS (
            SELECT pp.plan_id, pp.monthly_fee, pp.daily_fee
            FROM catalog_planprice pp
            WHERE pp.valid_from = (
                SELECT MAX(p2.valid_from) FROM catalog_planprice p2
                WHERE p2.plan_id = pp.plan_id AND p2.valid_from <= %s
            )
        )"""
    # A plan's rule counts for the subscriber's active subscriptions on it (the largest warn_days of them).
    plan_warn = plan_suspend = "CAST(NULL AS INTEGER)"
    plan_join = ""
    if scope.plan_rules:
        plan_join = "LEFT JOIN dunning_dunningrule r ON r.plan_id = s.plan_id"
        plan_warn = "MAX(CASE WHEN s.status = 'active' THEN r.warn_days END)"
        plan_suspend = f"MAX(CASE WHEN s.status = 'active' AND r.id IS NOT NULL THEN COALESCE(r.suspend_after_days, {NO_SUSPEND}) END)"  # noqa: E501
    fees = f"""fees AS (
            SELECT s.subscriber_id,
                SUM(CASE WHEN s.status = 'active' AND pl.charge_mode = 'monthly' THEN pr.monthly_fee ELSE 0 END)
                    AS monthly_due,
                MIN(CASE WHEN s.status = 'active' AND pl.charge_mode = 'monthly' THEN s.next_charge_on END)
                    AS monthly_next,
                SUM(CASE WHEN s.status <> 'active' OR pl.charge_mode <> 'daily' THEN 0
                    WHEN pl.daily_pricing = 'fixed' THEN COALESCE(pr.daily_fee, 0)
                    ELSE pr.monthly_fee / {SPLIT_DAYS}.0 END) AS daily_rate,
                SUM(CASE WHEN s.status = 'active' THEN 1 ELSE 0 END) AS active,
                SUM(CASE WHEN s.status = 'frozen' THEN 1 ELSE 0 END) AS frozen,
                {plan_warn} AS plan_warn, {plan_suspend} AS plan_suspend
            FROM billing_subscription s
            JOIN catalog_plan pl ON pl.id = s.plan_id
            LEFT JOIN price pr ON pr.plan_id = s.plan_id
            {plan_join}
            WHERE s.status IN ('active', 'frozen') AND {among("s.subscriber_id")}
            GROUP BY s.subscriber_id
        )"""
    parts = [price, fees]
    group_warn = group_suspend = "CAST(NULL AS INTEGER)"
    joins = ""
    if scope.group_rules:
        parts.append(
            f"""group_rule AS (
            SELECT g.subscriber_id, MAX(r.warn_days) AS warn,
                MAX(COALESCE(r.suspend_after_days, {NO_SUSPEND})) AS suspend
            FROM subscribers_subscriber_groups g JOIN dunning_dunningrule r ON r.group_id = g.subscribergroup_id
            WHERE {among("g.subscriber_id")}
            GROUP BY g.subscriber_id
        )"""
        )
        joins += " LEFT JOIN group_rule gr ON gr.subscriber_id = sub.id"
        group_warn, group_suspend = "gr.warn", "gr.suspend"
    exempt = "0"
    if scope.exemptions:
        live = "e.revoked_at IS NULL AND e.starts_on <= %s AND e.expires_on >= %s"
        params.extend([today, today])
        own = f"SELECT e.subscriber_id FROM dunning_exemption e WHERE {live} AND {among('e.subscriber_id')}"
        params.extend([today, today])
        of_group = (
            "SELECT g.subscriber_id FROM dunning_exemption e JOIN subscribers_subscriber_groups g "
            f"ON g.subscribergroup_id = e.group_id WHERE {live} AND {among('g.subscriber_id')}"
        )
        parts.append(f"exempt AS ({own} UNION {of_group})")
        joins += " LEFT JOIN exempt ex ON ex.subscriber_id = sub.id"
        exempt = "CASE WHEN ex.subscriber_id IS NULL THEN 0 ELSE 1 END"
    promised = promised_due = "CAST(NULL AS DECIMAL)"
    if scope.promises:
        parts.append(
            f"""promise AS (
            SELECT p.subscriber_id, SUM(p.amount) AS amount, MIN(p.due_on) AS due_on
            FROM billing_promisedpayment p
            WHERE p.status = 'open' AND {among("p.subscriber_id")}
            GROUP BY p.subscriber_id
        )"""
        )
        joins += " LEFT JOIN promise pm ON pm.subscriber_id = sub.id"
        promised, promised_due = "pm.amount", "pm.due_on"
    else:
        promised_due = "CAST(NULL AS DATE)"
    # Every table is filtered by the range itself (in ON for the outer joins): the planner does not carry the
    # range of ``sub.id`` over a join, and read all of the ledger accounts for each chunk.
    st_in, sub_in, la_in = among("st.subscriber_id"), among("sub.id"), among("la.subscriber_id")
    quiet = f"AND NOT ({_quiet(scope, group_warn, quiet_beyond, today)})" if quiet_beyond is not None else ""
    sql = f"""
        WITH {", ".join(parts)}
        SELECT sub.id, la.balance + la.credit_limit, f.monthly_due, f.monthly_next, f.daily_rate,
            f.active, f.frozen, st.state, st.restricted_since, st.owed, st.exempt, st.reminded_for,
            st.reminded_days, {exempt}, COALESCE({group_warn}, f.plan_warn), COALESCE({group_suspend}, f.plan_suspend),
            {promised}, {promised_due}
        FROM subscribers_subscriber sub
        JOIN billing_ledgeraccount la ON la.subscriber_id = sub.id
        LEFT JOIN fees f ON f.subscriber_id = sub.id
        LEFT JOIN dunning_accessstate st ON st.subscriber_id = sub.id AND {st_in}
        {joins}
        WHERE sub.status <> 'closed' AND {sub_in} AND {la_in} {quiet}
        ORDER BY sub.id
    """
    return sql, params


def _quiet(scope: Scope, group_warn: str, beyond: int, today: dt.date) -> str:
    """The subscribers that ``decide`` would leave exactly as they are, which is most of them on most sweeps: no
    state row or an active one, the exemption flag unchanged, not in debt, and the money lasting more than
    ``beyond`` days past both the warning threshold and the largest reminder (``days_left``, computed on a kopeck
    less, which can only make it shorter: SQLite divides in floating point). Anything near a threshold goes to
    Python, which decides it exactly; a property test holds the sweep to ``evaluate``, which reads everyone."""
    pg = connection.vendor == "postgresql"
    available = "(la.balance + la.credit_limit)"
    floor = "FLOOR({})" if pg else "CAST({} AS INTEGER)"  # of a quotient >= 0 here: truncation is the floor
    # A date, not a parameter: it appears four times, and an ISO date cannot carry anything else.
    day = today.isoformat()
    days_to = (
        f"(f.monthly_next - DATE '{day}')" if pg else f"CAST(julianday(f.monthly_next) - julianday('{day}') AS INTEGER)"
    )
    warn = f"COALESCE({group_warn}, f.plan_warn, {int(scope.warn_default)})"
    margin = f"{max(scope.remind_days, default=0) + beyond}"

    def lasts(days: str) -> str:
        return f"({days}) > {warn} + {beyond} AND ({days}) > {margin}"

    by_day = floor.format(f"({available} - 0.01) / f.daily_rate")
    # 27 days a month: a calendar month from a clamped day is at least that (``decide.add_months``); the days to
    # the charge are not clamped at 0 as ``decide`` clamps the total: a charge overdue counts against the months.
    by_month = f"{days_to} + 27 * " + floor.format(f"({available} - 0.01) / f.monthly_due")
    exempt_now = "CASE WHEN ex.subscriber_id IS NULL THEN 0 ELSE 1 END" if scope.exemptions else "0"
    # An open promised payment is withdrawn on a day of its own (``decide.days_left``): Python decides those.
    no_promise = "AND pm.subscriber_id IS NULL" if scope.promises else ""
    return f"""(st.state IS NULL OR st.state = 'active') {no_promise}
            AND {exempt_now} = CASE WHEN st.exempt THEN 1 ELSE 0 END
            AND {available} >= 0
            AND (f.subscriber_id IS NULL OR (f.active > 0
                AND (f.daily_rate = 0 OR ({available} >= 0.01 AND {lasts(by_day)}))
                AND (f.monthly_due = 0 OR f.monthly_next IS NULL OR ({available} >= 0.01 AND {lasts(by_month)}))))"""


def fetch_rows(scope: Scope, *, today: dt.date, ids=None, id_range=None, quiet_beyond: int | None = None) -> list:
    """The raw rows of ``facts_sql``, read under a deadline (a stuck scan gives up instead of holding a worker)."""
    sql, params = facts_sql(scope, today=today, ids=ids, id_range=id_range, quiet_beyond=quiet_beyond)
    with transaction.atomic(), connection.cursor() as cursor:
        db_deadline(lock=5, statement=STATEMENT_SECONDS, unless_set=True)
        cursor.execute(sql, params)
        return cursor.fetchall()


def count_in_range(id_range: tuple[int, int]) -> int:
    """The subscribers ``facts_sql`` covers in ``(lo, hi]``, quiet or not: the sweep's count for its log."""
    with transaction.atomic(), connection.cursor() as cursor:
        db_deadline(lock=5, statement=STATEMENT_SECONDS, unless_set=True)
        cursor.execute(
            "SELECT COUNT(*) FROM subscribers_subscriber sub "
            "JOIN billing_ledgeraccount la ON la.subscriber_id = sub.id "
            "WHERE sub.status <> 'closed' AND sub.id > %s AND sub.id <= %s "
            "AND la.subscriber_id > %s AND la.subscriber_id <= %s",
            [*id_range, *id_range],
        )
        return cursor.fetchone()[0]


def _money(value) -> Decimal:
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(value).quantize(Decimal("0.0001"))


def _rate(value) -> Decimal:
    """A day's fees, rounded up to 1/100 of a kopeck: a quotient computed to 16 digits on PostgreSQL and in floating
    point on SQLite becomes the same number (first to 10 places, which floating point's error does not reach)."""
    if value is None:
        return ZERO
    exact = value if isinstance(value, Decimal) else Decimal(value)
    return exact.quantize(Decimal("1e-10")).quantize(RATE, rounding=ROUND_UP)


def _date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _moment(value) -> dt.datetime | None:
    """A timestamp as the raw cursor gives it: aware on PostgreSQL, naive UTC (or text) on SQLite."""
    if value is None:
        return None
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def decode(rows: list[tuple], scope: Scope) -> list[Facts]:
    """``Facts`` of raw rows. PostgreSQL hands numbers as ``Decimal`` and dates as dates already; SQLite as
    floats, integers and text, converted here (its money in the ledger is kept to the kopeck, so a float
    sum of a few fees rounds back to the same ``Decimal``)."""
    warn_default, suspend_default = scope.warn_default, scope.suspend_default
    out = []
    append = out.append
    for (sid, available, monthly_due, monthly_next, daily_rate, active, frozen, state, restricted_since, owed,
         was_exempt, reminded_for, reminded_days, exempt, warn, suspend, promised, promised_due) in rows:  # fmt: skip
        if suspend is None:
            suspend = suspend_default
        elif suspend == NO_SUSPEND:
            suspend = None
        append(
            Facts(
                sid,
                _money(available),
                _money(monthly_due),
                _date(monthly_next),
                _rate(daily_rate),
                int(active or 0),
                int(frozen or 0),
                state,
                _moment(restricted_since),
                _money(owed),
                bool(exempt),
                bool(was_exempt),
                _date(reminded_for),
                reminded_days,
                warn_default if warn is None else int(warn),
                suspend,
                _money(promised),
                _date(promised_due),
            )
        )
    return out


def read_facts(*, today: dt.date, ids: list[int] | None = None, id_range: tuple[int, int] | None = None):
    """The facts of the subscribers listed or in ``(lo, hi]``, in id order."""
    scope = Scope.now(today)
    return decode(fetch_rows(scope, today=today, ids=ids, id_range=id_range), scope)
