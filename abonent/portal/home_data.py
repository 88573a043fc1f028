"""What the portal's home page shows a subscriber: money, how long it lasts, the next charges, access, plans and
the connection. One call, ``home_of(subscriber)``.

Nothing here decides what billing or dunning decide: the days the money lasts are dunning's ``decide`` over
dunning's facts (its own statement), the next charge is billing's ``period_for`` / ``amount_for`` at the price
``catalog.selectors.price_on`` gives, and the access state is the one dunning stored (what the NAS enforces).

It is the portal's hot path (DESIGN.md §5: p95 ≤ 50 ms at 20 clients over a million subscribers), so it reads in
as few statements as it can, whatever the subscriber's history: dunning's facts; one row of the subscriber's own
(the cached balance, the open promised payment, the stored access state, today's traffic, the newest and the open
session: each an index lookup, never a scan of the ledger or of the sessions); the live subscriptions with their
plans; then one ``price_on`` per live subscription. Three of them are plain SQL rather than the ORM: building a
query costs the ORM about five times what the database takes to answer it (measured: 0.7 ms against 0.14 ms of
CPU for the balance), and this page is built for every subscriber who opens the app.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import connection

from abonent.billing.models import SubscriptionStatus
from abonent.billing.upcoming import NextCharge, amount_to_pay, debt_to_pay, upcoming_fee
from abonent.catalog.models import ChargeMode, DailyPricing, Plan
from abonent.core import clock
from abonent.core.money import KOPECK
from abonent.dunning.decide import decide
from abonent.dunning.facts import Facts, Scope, decode, facts_sql
from abonent.dunning.models import DENIED_STATES, STAFF_STATES, AccessStateKind

ZERO = Decimal("0.00")
State = AccessStateKind
# The states in which the subscriber is cut off or redirected for money: home says what brings access back.
DEBT_STATES = frozenset({State.RESTRICTED, State.SUSPENDED})


@dataclass(frozen=True)
class PlanLine:
    subscription_id: int
    plan_name: str
    status: str
    download_kbps: int  # 0: not limited
    upload_kbps: int
    # The price at the next charge's date (None when the plan has no price then): a month's fee, and for a daily
    # plan priced by the day its day's fee (a daily plan priced by the month splits the monthly fee over the days).
    monthly_fee: Decimal | None
    daily_fee: Decimal | None
    daily: bool
    frozen_until: dt.date | None  # the first day back in service
    pending_plan_name: str
    pending_plan_from: dt.date | None
    next_charge: NextCharge | None

    @property
    def status_label(self) -> str:
        return str(SubscriptionStatus(self.status).label)

    @property
    def download_mbit(self) -> Decimal | None:
        return _mbit(self.download_kbps)

    @property
    def upload_mbit(self) -> Decimal | None:
        return _mbit(self.upload_kbps)


@dataclass(frozen=True)
class Access:
    """The access state dunning stored (``active`` for a subscriber never evaluated)."""

    state: str
    since: dt.datetime | None
    reason: str  # the operator's words, for blocked and terminated

    @property
    def label(self) -> str:
        return str(State(self.state).label)


@dataclass(frozen=True)
class Connection:
    online: bool
    since: dt.datetime | None  # when the open session started
    ip_address: str
    last_seen: dt.datetime | None  # offline: when the newest session ended (or last reported)
    today_download_bytes: int  # to the subscriber (the NAS's output octets)
    today_upload_bytes: int


@dataclass(frozen=True)
class Home:
    closed: bool
    balance: Decimal  # an open promised payment included
    credit_limit: Decimal
    promised: Decimal  # the open promised payment (0 without one)
    promised_due: dt.date | None  # its last day
    days_left: int | None
    runout_on: dt.date | None
    access: Access
    # What to pay: in restricted/suspended states it brings balance + credit limit back to zero (the open promised
    # payment is repaid from any payment, so it counts) and covers the next charges; otherwise what the next
    # charges lack. ``pay_minimum`` is the part that restores access by itself.
    pay_amount: Decimal
    pay_minimum: Decimal
    next_on: dt.date | None
    next_total: Decimal
    connection: Connection
    plans: list[PlanLine] = field(default_factory=list)
    company_phone: str = ""

    @property
    def available(self) -> Decimal:
        return self.balance + self.credit_limit

    @property
    def in_debt(self) -> bool:
        return self.access.state in DEBT_STATES

    @property
    def denied(self) -> bool:
        return self.access.state in DENIED_STATES

    @property
    def by_staff(self) -> bool:
        return self.access.state in STAFF_STATES

    @property
    def frozen_until(self) -> dt.date | None:
        days = [p.frozen_until for p in self.plans if p.frozen_until]
        return max(days) if days else None


def home_of(subscriber) -> Home:
    now = clock.now()
    today = clock.today()
    facts = money_facts(subscriber.pk, today)
    # Only the verdict's days are used: the state shown is the one stored (what the NAS enforces), and these facts
    # leave out the rules and exemptions that move thresholds, not days.
    verdict = decide(facts, today=today, now=now) if facts is not None else None
    own = _own_row(subscriber.pk, today)
    plans = plan_lines(subscriber.pk, today)
    charges = [p.next_charge for p in plans if p.next_charge is not None]
    next_on = min((c.on for c in charges), default=None)
    next_total = sum((c.amount for c in charges if c.on == next_on), ZERO)
    available = own.balance + own.credit_limit
    return Home(
        closed=subscriber.is_closed,
        balance=own.balance,
        credit_limit=own.credit_limit,
        promised=own.promised,
        promised_due=own.promised_due,
        days_left=verdict.days_left if verdict else None,
        runout_on=verdict.runout_on if verdict else None,
        access=own.access,
        pay_amount=amount_to_pay(next_total, available=available, promised=own.promised),
        pay_minimum=(
            debt_to_pay(available=available, promised=own.promised) if own.access.state in DEBT_STATES else ZERO
        ),
        next_on=next_on,
        next_total=next_total,
        connection=own.connection,
        plans=plans,
        company_phone=getattr(settings, "ABONENT_COMPANY_PHONE", ""),
    )


def money_facts(subscriber_id: int, today: dt.date) -> Facts | None:
    """Dunning's facts of one subscriber (its money, fees, next monthly charge, open promised payment), read by
    the sweep's own statement; None for a closed account. The sweep asks first which optional parts of the
    statement have anything to read (four queries); for one subscriber the promised payments are read always,
    and the rules and exemptions, which only move thresholds, not the days the money lasts, are left out."""
    scope = Scope(
        group_rules=False,
        plan_rules=False,
        exemptions=False,
        promises=True,
        warn_default=0,
        suspend_default=None,
        remind_days=(),
    )
    sql, params = facts_sql(scope, today=today, ids=[subscriber_id])
    facts = decode(_rows(sql, params), scope)
    return facts[0] if facts else None


@dataclass(frozen=True)
class _Own:
    balance: Decimal
    credit_limit: Decimal
    promised: Decimal
    promised_due: dt.date | None
    access: Access
    connection: Connection


# The subscriber's own row: every part an index lookup by subscriber (the ledger account and the access state by
# their unique keys, the open promised payment by its partial unique index, today's traffic by (subscriber, day),
# the sessions by (subscriber, -started_at)). An open session older than the newest one (a second device still
# online after the phone left) counts as online. Offline, finding no open session walks the subscriber's sessions
# in the index (5,000 of them: 0.8 ms); a partial index of the open ones would make it one probe.
_OWN_SQL = """
SELECT la.balance, la.credit_limit, st.state, st.since, st.reason, u.input_octets, u.output_octets,
    pp.amount, pp.due_on, os.started_at, os.framed_ip,
    (SELECT COALESCE(s.stopped_at, s.updated_at) FROM network_session s WHERE s.subscriber_id = sub.id
        ORDER BY s.started_at DESC, s.id DESC LIMIT 1)
FROM subscribers_subscriber sub
LEFT JOIN billing_ledgeraccount la ON la.subscriber_id = sub.id
LEFT JOIN dunning_accessstate st ON st.subscriber_id = sub.id
LEFT JOIN network_usageday u ON u.subscriber_id = sub.id AND u.day = %s
LEFT JOIN billing_promisedpayment pp ON pp.subscriber_id = sub.id AND pp.status = 'open'
LEFT JOIN network_session os ON os.id = (
    SELECT s.id FROM network_session s WHERE s.subscriber_id = sub.id AND s.status = 'open'
    ORDER BY s.started_at DESC, s.id DESC LIMIT 1)
WHERE sub.id = %s
"""


def _own_row(subscriber_id: int, today: dt.date) -> _Own:
    (balance, credit, state, since, reason, upload, download, promised, due, online_since, ip, last_seen) = _rows(
        _OWN_SQL, [today, subscriber_id]
    )[0]
    online = online_since is not None
    return _Own(
        balance=_money(balance),
        credit_limit=_money(credit),
        promised=_money(promised),
        promised_due=_date(due),
        access=Access(state or State.ACTIVE, _moment(since), reason or ""),
        connection=Connection(
            online=online,
            since=_moment(online_since),
            ip_address=str(ip).split("/")[0] if online and ip else "",
            last_seen=None if online else _moment(last_seen),
            today_download_bytes=int(download or 0),
            today_upload_bytes=int(upload or 0),
        ),
    )


_PLAN_FIELDS = "id, name, charge_mode, daily_pricing, period_anchor"
_SUBSCRIPTIONS_SQL = """
SELECT s.id, s.status, s.next_charge_on, s.anchor_day, s.pending_plan_from, p.download_kbps, p.upload_kbps,
    p.id, p.name, p.charge_mode, p.daily_pricing, p.period_anchor,
    q.id, q.name, q.charge_mode, q.daily_pricing, q.period_anchor,
    (SELECT f.ends_on FROM billing_freeze f WHERE f.subscription_id = s.id AND f.status = 'active')
FROM billing_subscription s
JOIN catalog_plan p ON p.id = s.plan_id
LEFT JOIN catalog_plan q ON q.id = s.pending_plan_id
WHERE s.subscriber_id = %s AND s.status <> 'terminated'
ORDER BY s.started_on, s.id
"""


def plan_lines(subscriber_id: int, today: dt.date) -> list[PlanLine]:
    """The live subscriptions (active, frozen), oldest first, each with its speed, price and next charge."""
    from abonent.billing.pricing.rules import RunPricing

    lines = []
    pricing = RunPricing()
    for row in _rows(_SUBSCRIPTIONS_SQL, [subscriber_id]):
        (sid, status, next_charge_on, anchor_day, pending_from, down, up) = row[:7]
        plan = _plan(row[7:12])
        pending = _plan(row[12:17]) if row[12] is not None else None
        frozen = status == SubscriptionStatus.FROZEN
        pending_from = _date(pending_from)
        priced = upcoming_fee(
            plan=plan,
            pending=pending,
            pending_from=pending_from,
            status=status,
            next_charge_on=_date(next_charge_on),
            frozen_until=_date(row[17]),
            anchor_day=int(anchor_day),
            today=today,
            subscription=(sid, subscriber_id, pricing),
        )
        charged = pending if priced is not None and priced[0].downgrade else plan
        fixed_daily = charged.charge_mode == ChargeMode.DAILY and charged.daily_pricing == DailyPricing.FIXED
        lines.append(
            PlanLine(
                subscription_id=sid,
                plan_name=plan.name,
                status=status,
                download_kbps=int(down),
                upload_kbps=int(up),
                monthly_fee=priced[1].monthly_fee if priced else None,
                daily_fee=priced[1].daily_fee if priced and fixed_daily else None,
                daily=plan.charge_mode == ChargeMode.DAILY,
                frozen_until=_date(row[17]) if frozen else None,
                pending_plan_name=pending.name if pending is not None else "",
                pending_plan_from=pending_from,
                next_charge=priced[0] if priced else None,
            )
        )
    return lines


def _plan(values) -> Plan:
    """A plan with the fields billing's period and amount functions read (not saved, not for anything else)."""
    return Plan(**dict(zip(_PLAN_FIELDS.split(", "), values, strict=True)))


def _mbit(kbps: int) -> Decimal | None:
    """kbit/s as Mbit/s (1 Mbit = 1,000 kbit, as ISPs sell it); None for "not limited"."""
    if not kbps:
        return None
    mbit = Decimal(kbps) / 1000
    return mbit.normalize() if kbps % 1000 == 0 else mbit.quantize(Decimal("0.1"))


# --- plain SQL's values: PostgreSQL gives Decimal, date and aware datetime; SQLite gives numbers and text -----


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _money(value) -> Decimal:
    """An amount of the ledger (kept to the kopeck): SQLite's float goes through its shortest text, exactly."""
    if value is None:
        return ZERO
    return (value if isinstance(value, Decimal) else Decimal(str(value))).quantize(KOPECK)


def _date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _moment(value) -> dt.datetime | None:
    """A timestamp: aware on PostgreSQL, naive UTC text on SQLite."""
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
