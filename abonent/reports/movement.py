"""How the subscriber base moves, month by month: who came, who left, who returned (``subscriber_movement``); and who
moved between plans (``plan_migrations``). Reads of billing's subscriptions and their history, computed by the worker
(the reports that use them say ``in_worker``); every function takes ``using`` and writes nothing.

**A subscriber's time with us** is the union of the days their subscriptions ran: each subscription runs from
``started_on`` to ``ended_on`` (its termination day, or on while it is not terminated; a frozen subscription is not
terminated, so a freeze is no churn); subscriptions that overlap or follow within a day are one stretch. Closing the
subscriber ends the stretch that day if its subscriptions were left running. Then:

* **new** in a month: the subscriber's first stretch began in it (the first activation of a subscriber's first
  subscription);
* **returned**: a later stretch began in it (a subscriber who had left came back);
* **churned**: a stretch ended in it (the last live subscription terminated, or the subscriber closed);
* **active at the start** of a month: a stretch began before the month's first day and had not ended before it;
* churn rate = churned ÷ active at the start; net growth = new + returned − churned, so next month's active at the
  start = this month's + net growth.

With a plan filter, new and returned count under the plan the stretch's first subscription was activated on,
churned under the plan the ending subscription was on, and active at the start under the plan the subscription
running on the month's first day was on then (from the plan-change history). Moves between plans are no churn
(``plan_migrations``), so with a plan filter the months need not add up.

**Scale.** One pass over the subscriptions in subscriber order (about 1,000,000 rows at the scale designed for:
seconds, in the worker) and one over the plan changes; at most a few hundred counters are kept, not the rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from abonent.billing.models import Subscription, SubscriptionEvent, SubscriptionEventKind
from abonent.catalog.models import ChargeMode, Plan, PlanPrice
from abonent.core.money import quantize

from .pages import month_start, next_month

ONE_DAY = dt.timedelta(days=1)


@dataclass
class Stretch:
    """One unbroken stretch of a subscriber's time with us: its first and last day (``None``: still running), and
    the subscriptions in it as ``(id, started_on, ended_on, plan_id)``."""

    start: dt.date
    end: dt.date | None
    parts: list[tuple] = field(default_factory=list)

    def covers(self, day: dt.date) -> bool:
        return self.start < day and (self.end is None or self.end >= day)


def stretches(rows: list[tuple], closed_on: dt.date | None) -> list[Stretch]:
    """A subscriber's subscriptions ``(id, started_on, ended_on, plan_id)``, in ``started_on`` order, merged into
    stretches (module docstring). Pure."""
    result: list[Stretch] = []
    for row in rows:
        _id, started_on, ended_on, _plan = row
        if ended_on is not None and ended_on < started_on:
            ended_on = started_on
        last = result[-1] if result else None
        if last is not None and (last.end is None or started_on <= last.end + ONE_DAY):
            last.end = None if last.end is None or ended_on is None else max(last.end, ended_on)
            last.parts.append((row[0], started_on, ended_on, row[3]))
        else:
            result.append(Stretch(started_on, ended_on, [(row[0], started_on, ended_on, row[3])]))
    if closed_on is not None and result:
        last = result[-1]
        if last.end is None or last.end > closed_on:
            last.end = max(closed_on, last.start)
    return result


def _plan_history(using: str, subscription_ids=None) -> dict[int, list[tuple[dt.date, int, int]]]:
    """Each subscription's plan changes ``(day, from_plan_id, to_plan_id)`` in order (a scheduled downgrade counts
    when it took effect: the billing run writes its ``plan_changed``)."""
    events = SubscriptionEvent.objects.using(using).filter(kind=SubscriptionEventKind.PLAN_CHANGED)
    if subscription_ids is not None:
        events = events.filter(subscription_id__in=subscription_ids)
    history: dict[int, list] = defaultdict(list)
    for sid, at, from_plan, to_plan in events.order_by("effective_at", "id").values_list(
        "subscription_id", "effective_at", "from_plan_id", "to_plan_id"
    ):
        history[sid].append((timezone.localtime(at).date(), from_plan, to_plan))
    return history


def _plan_on(part: tuple, history, day: dt.date | None) -> int:
    """The plan a subscription was on at ``day`` (``None``: when it began)."""
    changes = history.get(part[0])
    if not changes:
        return part[3]
    plan = changes[0][1]
    for changed_on, _from_plan, to_plan in changes:
        if day is None or changed_on > day:
            break
        plan = to_plan
    return plan


@dataclass
class Movement:
    """Per month: subscribers active at its start, new, returned, churned."""

    months: list[dt.date]
    active: dict[dt.date, int]
    new: dict[dt.date, int]
    returned: dict[dt.date, int]
    churned: dict[dt.date, int]


def subscriber_movement(
    first_month: dt.date, end: dt.date, *, using: str, branch_ids=None, plan_id: int | None = None
) -> Movement:
    """The movement of the months from ``first_month`` to the one holding ``end - 1 day`` (module docstring)."""
    months, month = [], month_start(first_month)
    while month < end:
        months.append(month)
        month = next_month(month)
    index = {m: n for n, m in enumerate(months)}
    new, returned, churned = defaultdict(int), defaultdict(int), defaultdict(int)
    # Active at the start: +1 at the first month a stretch covers, −1 after the last (a running sum over months).
    delta = [0] * (len(months) + 1)
    subs = Subscription.objects.using(using)
    if branch_ids is not None:
        subs = subs.filter(subscriber__branch_id__in=branch_ids)
    history = _plan_history(using) if plan_id else {}
    rows = subs.order_by("subscriber_id", "started_on", "id").values_list(
        "subscriber_id", "subscriber__closed_at", "id", "started_on", "ended_on", "plan_id"
    )

    def count(subscriber_rows: list[tuple], closed_at) -> None:
        closed_on = timezone.localtime(closed_at).date() if closed_at else None
        for number, stretch in enumerate(stretches(subscriber_rows, closed_on)):
            began = month_start(stretch.start)
            if began in index and (not plan_id or _plan_on(stretch.parts[0], history, None) == plan_id):
                (returned if number else new)[began] += 1
            if stretch.end is not None and month_start(stretch.end) in index:
                ending = max(stretch.parts, key=lambda p: (p[2] is None, p[2] or p[1]))
                if not plan_id or _plan_on(ending, history, stretch.end) == plan_id:
                    churned[month_start(stretch.end)] += 1
            if plan_id:
                for m in months:
                    if stretch.covers(m) and any(
                        p[1] < m and (p[2] is None or p[2] >= m) and _plan_on(p, history, m) == plan_id
                        for p in stretch.parts
                    ):
                        delta[index[m]] += 1
                        delta[index[m] + 1] -= 1
                continue
            # The first month whose first day the stretch covers, and the first it no longer does.
            first = next_month(stretch.start)
            after = next_month(stretch.end) if stretch.end is not None else None
            lo = 0 if first <= months[0] else index.get(first, len(months))
            hi = len(months) if after is None or after > months[-1] else index.get(after, 0)
            if lo < hi:
                delta[lo] += 1
                delta[hi] -= 1

    current, pending, closed_at = None, [], None
    for subscriber_id, closed, sid, started_on, ended_on, plan in rows.iterator(chunk_size=20_000):
        if subscriber_id != current:
            if pending:
                count(pending, closed_at)
            current, pending, closed_at = subscriber_id, [], closed
        pending.append((sid, started_on, ended_on, plan))
    if pending:
        count(pending, closed_at)
    active, running = {}, 0
    for n, m in enumerate(months):
        running += delta[n]
        active[m] = running
    return Movement(months, active, dict(new), dict(returned), dict(churned))


# --- plan migrations ----------------------------------------------------------------------------------------------


def monthly_price(prices: list[PlanPrice], day: dt.date) -> Decimal | None:
    """The plan's fee for a month at the list price in force on ``day``: the monthly fee, or a daily plan's fixed
    daily fee times the days of that month; ``None`` before its first price."""
    found = None
    for price in prices:
        if price.valid_from <= day:
            found = price
    if found is None:
        return None
    if found.daily_fee is not None:
        return quantize(found.daily_fee * (next_month(day) - month_start(day)).days)
    return found.monthly_fee


@dataclass(frozen=True)
class PlanChange:
    day: dt.date
    from_plan_id: int
    to_plan_id: int
    count: int
    # New minus old monthly list price; ``None`` when either plan has no monthly fee (time-rated, or not priced).
    price_delta: Decimal | None


def plan_changes(start: dt.date, end: dt.date, *, using: str, branch_ids=None, plan_id=None) -> list[PlanChange]:
    """The plan changes that took effect on the days ``[start, end)``, counted per day and pair of plans (a
    scheduled downgrade on the day it took effect, not the day it was asked for)."""
    tz = timezone.get_current_timezone()
    start_at = timezone.make_aware(dt.datetime.combine(start, dt.time.min), tz)
    end_at = timezone.make_aware(dt.datetime.combine(end, dt.time.min), tz)
    events = SubscriptionEvent.objects.using(using).filter(
        kind=SubscriptionEventKind.PLAN_CHANGED, effective_at__gte=start_at, effective_at__lt=end_at
    )
    if branch_ids is not None:
        events = events.filter(subscription__subscriber__branch_id__in=branch_ids)
    if plan_id:
        events = events.filter(Q(from_plan_id=plan_id) | Q(to_plan_id=plan_id))
    grouped = (
        events.annotate(day=TruncDate("effective_at", tzinfo=tz))
        .values("day", "from_plan_id", "to_plan_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    prices: dict[int, list[PlanPrice]] = defaultdict(list)
    for price in PlanPrice.objects.using(using).order_by("plan_id", "valid_from"):
        prices[price.plan_id].append(price)
    time_rated = set(Plan.objects.using(using).filter(charge_mode=ChargeMode.TIME).values_list("id", flat=True))
    result = []
    for row in grouped:
        day = row["day"] if isinstance(row["day"], dt.date) else dt.date.fromisoformat(str(row["day"]))
        old, new = row["from_plan_id"], row["to_plan_id"]
        delta = None
        if old not in time_rated and new not in time_rated:
            old_price, new_price = monthly_price(prices[old], day), monthly_price(prices[new], day)
            if old_price is not None and new_price is not None:
                delta = new_price - old_price
        result.append(PlanChange(day, old, new, row["n"], delta))
    return result
