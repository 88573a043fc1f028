"""What the portal's home page shows a subscriber: money, how long it lasts, the next charges, access, plans and
the connection. One call, ``home_of(subscriber)``, a fixed number of queries whatever the subscriber's history
(the ledger, sessions and payments are never scanned: only the cached balance, the newest sessions and today's
traffic row are read), plus one query per live subscription for its price (two with a downgrade scheduled).

Nothing here decides anything billing or dunning decide: the run-out date is dunning's ``decide`` over dunning's
facts, the next charge is billing's ``period_for`` / ``amount_for`` at ``catalog.price_on``, and the
access state is what dunning stored (what the NAS enforces), not a guess made here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from abonent.billing.engine import amount_for, period_for
from abonent.billing.models import Freeze, FreezeStatus, SubscriptionStatus
from abonent.billing.selectors import Balance, current_subscriptions, get_balance
from abonent.catalog.models import ChargeMode, DailyPricing, PlanPrice
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core import clock
from abonent.dunning.decide import decide
from abonent.dunning.facts import Facts, Scope, decode, facts_sql
from abonent.dunning.models import DENIED_STATES, STAFF_STATES, AccessStateKind
from abonent.dunning.selectors import AccessSummary, access_summary
from abonent.network.models import Session, SessionStatus, UsageDay

ZERO = Decimal("0.00")
State = AccessStateKind
# The states in which the subscriber is cut off or redirected for money: home says what brings access back.
DEBT_STATES = frozenset({State.RESTRICTED, State.SUSPENDED})


@dataclass(frozen=True)
class NextCharge:
    """The next fee of one subscription: on ``on``, ``amount`` at the price of ``plan_name`` that day (the plan a
    scheduled downgrade switches to, when the switch comes first)."""

    on: dt.date
    amount: Decimal
    plan_name: str
    downgrade: bool


@dataclass(frozen=True)
class PlanLine:
    subscription_id: int
    plan_name: str
    status: str
    status_label: str
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
    def download_mbit(self) -> Decimal | None:
        return _mbit(self.download_kbps)

    @property
    def upload_mbit(self) -> Decimal | None:
        return _mbit(self.upload_kbps)


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
    balance: Balance
    promised_due: dt.date | None  # the last day of the open promised payment
    days_left: int | None
    runout_on: dt.date | None
    access: AccessSummary
    # What to pay: in restricted/suspended states it brings balance + credit limit back to zero (the open promised
    # payment is repaid from any payment, so it counts) and covers the next charges; otherwise what the next
    # charges lack. ``pay_minimum`` is the part that restores access by itself.
    pay_amount: Decimal
    pay_minimum: Decimal
    next_on: dt.date | None
    next_total: Decimal
    plans: list[PlanLine] = field(default_factory=list)
    connection: Connection | None = None
    company_phone: str = ""

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
    balance = get_balance(subscriber)
    facts = money_facts(subscriber.pk, today)
    # Only the verdict's days are used: the state shown is the one stored (what the NAS enforces), and these facts
    # leave out the rules and exemptions that move thresholds, not days.
    verdict = decide(facts, today=today, now=now) if facts is not None else None
    plans = plan_lines(subscriber, today)
    charges = [p.next_charge for p in plans if p.next_charge is not None]
    next_on = min((c.on for c in charges), default=None)
    next_total = sum((c.amount for c in charges if c.on == next_on), ZERO)
    access = access_summary(subscriber)
    minimum = max(balance.promised - balance.available, ZERO)
    return Home(
        closed=subscriber.is_closed,
        balance=balance,
        promised_due=facts.promised_due if facts is not None and balance.promised else None,
        days_left=verdict.days_left if verdict else None,
        runout_on=verdict.runout_on if verdict else None,
        access=access,
        pay_amount=max(next_total + balance.promised - balance.available, ZERO),
        pay_minimum=minimum if access.state in DEBT_STATES else ZERO,
        next_on=next_on,
        next_total=next_total,
        plans=plans,
        connection=connection_of(subscriber.pk),
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
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    facts = decode(rows, scope)
    return facts[0] if facts else None


def plan_lines(subscriber, today: dt.date) -> list[PlanLine]:
    """The live subscriptions (active, frozen), oldest first, each with its speed, price and next charge."""
    frozen_until = Freeze.objects.filter(subscription=OuterRef("pk"), status=FreezeStatus.ACTIVE).values("ends_on")
    subscriptions = (
        current_subscriptions(subscriber).annotate(frozen_until=Subquery(frozen_until[:1])).order_by("started_on", "id")
    )
    return [_plan_line(s, today) for s in subscriptions]


def _plan_line(subscription, today: dt.date) -> PlanLine:
    plan = subscription.plan
    frozen = subscription.status == SubscriptionStatus.FROZEN
    # Fees resume on the freeze's last day + 1 (billing's unfreeze moves the cursor there); a cursor already
    # passed is charged by the next run, today.
    cursor = (subscription.frozen_until if frozen else None) or subscription.next_charge_on
    charge = next_charge(subscription, max(cursor, today), cursor=cursor)
    fixed_daily = plan.charge_mode == ChargeMode.DAILY and plan.daily_pricing == DailyPricing.FIXED
    return PlanLine(
        subscription_id=subscription.pk,
        plan_name=plan.name,
        status=subscription.status,
        status_label=str(SubscriptionStatus(subscription.status).label),
        download_kbps=plan.download_kbps,
        upload_kbps=plan.upload_kbps,
        monthly_fee=charge.price.monthly_fee if charge else None,
        daily_fee=charge.price.daily_fee if charge and fixed_daily else None,
        daily=plan.charge_mode == ChargeMode.DAILY,
        frozen_until=subscription.frozen_until if frozen else None,
        pending_plan_name=subscription.pending_plan.name if subscription.pending_plan_id else "",
        pending_plan_from=subscription.pending_plan_from,
        next_charge=charge.next if charge else None,
    )


@dataclass(frozen=True)
class _Priced:
    next: NextCharge
    price: PlanPrice


def next_charge(subscription, shown_on: dt.date, *, cursor: dt.date) -> _Priced | None:
    """The fee the billing run will charge from ``cursor`` (shown as due on ``shown_on``): the period and amount
    exactly as the run computes them, at the plan's price that day; a downgrade scheduled for that day or before
    charges the new plan. None when the plan has no price that day (the run parks such a subscription too)."""
    plan = subscription.plan
    downgrade = subscription.pending_plan_id is not None and subscription.pending_plan_from <= cursor
    if downgrade:
        plan = subscription.pending_plan
    try:
        price = price_on(plan, cursor)
    except NoPriceError:
        return None
    start, end, full_start = period_for(plan, cursor, subscription.anchor_day)
    amount = amount_for(plan, price, start, end, full_start)[0]
    return _Priced(NextCharge(shown_on, amount, plan.name, downgrade), price)


def _mbit(kbps: int) -> Decimal | None:
    """kbit/s as Mbit/s (1 Mbit = 1,000 kbit, as ISPs sell it); None for "not limited"."""
    if not kbps:
        return None
    return (Decimal(kbps) / 1000).normalize() if kbps % 1000 == 0 else (Decimal(kbps) / 1000).quantize(Decimal("0.1"))


def connection_of(subscriber_id: int) -> Connection:
    """Online now (the newest open session) or when last seen, and today's traffic: two queries whatever the
    history. The newest session and the open ones are read together: an open session older than the newest (a
    second device still online) still counts as online."""
    sessions = Session.objects.filter(subscriber_id=subscriber_id)
    newest = sessions.order_by("-started_at", "-id").values("pk")[:1]
    rows = list(
        sessions.filter(Q(status=SessionStatus.OPEN) | Q(pk=Subquery(newest)))
        .order_by("-started_at", "-id")
        .values("status", "started_at", "stopped_at", "updated_at", "framed_ip")[:2]
    )
    today = timezone.localdate(clock.now())
    usage = UsageDay.objects.filter(subscriber_id=subscriber_id, day=today).values_list("input_octets", "output_octets")
    upload, download = next(iter(usage), (0, 0))
    open_row = next((r for r in rows if r["status"] == SessionStatus.OPEN), None)
    if open_row is not None:
        return Connection(True, open_row["started_at"], open_row["framed_ip"] or "", None, download, upload)
    last = rows[0] if rows else None
    last_seen = (last["stopped_at"] or last["updated_at"]) if last else None
    return Connection(False, None, "", last_seen, download, upload)
