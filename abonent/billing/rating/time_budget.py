"""How much time online a subscriber on a time plan has left: what the RADIUS server's Session-Timeout is.

``time_budgets`` reads, per subscription on a time plan, the few numbers the answer needs (money available,
package time left, today's price, the time online not charged yet); the RADIUS policy store keeps them with the
login's policy and reloads them through the policy-change feed when the balance or the packages change.
``seconds_left`` turns them into seconds at the moment of a request, with no query: the time the open sessions
have used since the numbers were read is taken off first (from packages, then money), so a store a few minutes
old still answers right.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from django.db.models import F, Max, Sum
from django.utils import timezone

from abonent.catalog.models import TIME_UNIT_SECONDS, ChargeMode, PlanPrice
from abonent.core import clock

from ..models import LedgerAccount, Subscription, SubscriptionStatus, TimePackagePurchase, TimeRating


class TimeBudget(NamedTuple):
    """Plain numbers (cents, seconds, Unix times), so the RADIUS snapshot stores them as they are."""

    money_cents: int  # balance + credit limit when read
    package_seconds: int  # left in the packages in effect when read
    unit_seconds: int
    unit_price_cents: int
    free_seconds: int
    minimum_cents: int
    # Time online not charged yet: (since, until or None while open[, paid seconds of the session rated before]),
    # Unix seconds.
    pending: tuple = ()
    # The packages in effect, (seconds left, expires at): a package past its end counts no more, with no reload.
    # Empty: ``package_seconds`` as it is (a budget built by hand).
    packages: tuple = ()
    # The price from the next local midnight on, and that midnight (Unix time); 0: no change known.
    next_price_cents: int = 0
    next_price_at: float = 0.0
    as_of: float = 0.0  # Unix time the numbers were read


def _cents(value) -> int:
    return round(value * 100)


def _started_units(seconds: int, unit: int) -> int:
    return -(-seconds // unit)


def seconds_left(budget: TimeBudget, now: float, *, open_reserve: int = 0) -> int | None:
    """Seconds a new session may last: its free minutes, then the package time left, then what the money buys in
    whole units at the price in force now; 0 when nothing is left but free minutes; ``None`` when time costs
    nothing.

    The time not charged yet is taken off as rating will charge it: packages first, then each session's own
    started units, at least its minimum charge. ``open_reserve``: seconds an open session is counted as going on
    for from its start (sessions side by side: the one online keeps what it was given)."""
    price = budget.unit_price_cents
    if budget.next_price_at and now >= budget.next_price_at:
        price = budget.next_price_cents
    if price <= 0:
        return None
    if budget.packages:
        packages = sum(seconds for seconds, expires_at in budget.packages if expires_at > now)
    else:
        packages = budget.package_seconds
    unit = budget.unit_seconds
    money = budget.money_cents
    for since, until, *rest in budget.pending:
        end = until if until is not None else max(now, since + open_reserve)
        used = max(0, int(end - since))
        from_packages = min(used, packages)
        packages -= from_packages
        paid = used - from_packages
        if paid <= 0:
            continue
        paid_before = int(rest[0]) if rest else 0
        cost = (_started_units(paid_before + paid, unit) - _started_units(paid_before, unit)) * price
        if paid_before == 0:
            cost = max(cost, budget.minimum_cents)
        money -= cost
    units = max(0, money // price)
    if money < budget.minimum_cents:
        units = 0  # the paid time of a new session would not cover its minimum charge
    left = packages + units * unit
    return left + budget.free_seconds if left > 0 else 0


def time_budgets(subscriber_ids=None, *, now: dt.datetime | None = None) -> dict[int, TimeBudget]:
    """Subscription id → its ``TimeBudget``, for the active subscriptions on time plans (of ``subscriber_ids``).
    A handful of queries whatever the count."""
    from abonent.network.models import Session  # the network app imports billing, not the reverse

    from .time import LOOKBACK, shared_logins, time_plan_since

    now = now or clock.now()
    subs = Subscription.objects.filter(status=SubscriptionStatus.ACTIVE, plan__charge_mode=ChargeMode.TIME)
    if subscriber_ids is not None:
        subs = subs.filter(subscriber_id__in=list(subscriber_ids))
    rows = list(
        subs.values_list(
            "id", "subscriber_id", "plan_id", "plan__time_unit", "plan__free_minutes", "plan__minimum_session_charge"
        )
    )
    if not rows:
        return {}
    today = timezone.localdate(now)
    tomorrow = today + dt.timedelta(days=1)
    midnight = timezone.make_aware(dt.datetime.combine(tomorrow, dt.time.min)).timestamp()
    prices: dict[int, int] = {}
    next_prices: dict[int, int] = {}
    for plan_id, valid_from, unit_price in (
        PlanPrice.objects.filter(plan_id__in={row[2] for row in rows}, valid_from__lte=tomorrow)
        .order_by("plan_id", "-valid_from")
        .values_list("plan_id", "valid_from", "unit_price")
    ):
        cents = _cents(unit_price) if unit_price is not None else 0
        if valid_from == tomorrow:
            next_prices[plan_id] = cents  # a new price from midnight: the store knows it without a reload
        else:
            prices.setdefault(plan_id, cents)
    # Subqueries rather than lists of ids: every hotspot subscriber at once would pass SQLite's parameter limit.
    whose = subs.values("subscriber_id")
    money = {
        subscriber_id: _cents(balance + credit)
        for subscriber_id, balance, credit in LedgerAccount.objects.filter(subscriber_id__in=whose).values_list(
            "subscriber_id", "balance", "credit_limit"
        )
    }
    packages: dict[int, list[tuple[int, float]]] = {}
    for sub_id, seconds, used, expires_at in TimePackagePurchase.objects.filter(
        subscription_id__in=subs.values("pk"), starts_at__lte=now, expires_at__gt=now, used_seconds__lt=F("seconds")
    ).values_list("subscription_id", "seconds", "used_seconds", "expires_at"):
        packages.setdefault(sub_id, []).append((seconds - used, expires_at.timestamp()))
    subscriptions = {row[0]: row[1] for row in rows}
    pending = _pending(
        Session, subs, subscriptions, now - LOOKBACK, shared_logins(whose), time_plan_since(subs.values("pk"))
    )
    result = {}
    for sub_id, subscriber_id, plan_id, unit, free_minutes, minimum in rows:
        price = prices.get(plan_id, 0)
        next_price = next_prices.get(plan_id)
        held = sorted(packages.get(sub_id, ()), key=lambda p: p[1])
        result[sub_id] = TimeBudget(
            money_cents=money.get(subscriber_id, 0),
            package_seconds=sum(p[0] for p in held),
            unit_seconds=TIME_UNIT_SECONDS[unit],
            unit_price_cents=price,
            free_seconds=free_minutes * 60,
            minimum_cents=_cents(minimum),
            pending=tuple(sorted(pending.get(sub_id, ()))),
            packages=tuple(held),
            next_price_cents=next_price if next_price is not None else 0,
            next_price_at=midnight if next_price is not None else 0.0,
            as_of=now.timestamp(),
        )
    return result


def _pending(Session, subs, subscriptions, horizon, shared, since) -> dict[int, list[tuple]]:
    """Subscription → its sessions' time not rated yet: from the end of the last rated part (or the start, or when
    its time plan took effect), with the paid seconds rated before. The sessions are the time subscription's as
    rating takes them (``time.owner``): a home session of the same subscriber is not."""
    from .time import time_sessions, unfinished

    unfinished_sessions = (
        time_sessions(Session, subs.values("subscriber_id")).filter(started_at__gte=horizon).filter(unfinished(Session))
    )
    sessions = list(
        unfinished_sessions.values_list("id", "subscriber_id", "started_at", "stopped_at", "login__subscription_id")
    )
    if not sessions:
        return {}
    rated: dict[int, tuple] = {}
    for session_id, until, paid in (
        TimeRating.objects.filter(session_id__in=unfinished_sessions.values("pk"))
        .values("session_id")
        .annotate(until=Max("part_end"), paid=Sum("money_seconds"))
        .values_list("session_id", "until", "paid")
    ):
        rated[session_id] = (until, paid or 0)
    time_subs: dict[int, list[int]] = {}
    for sub_id, subscriber_id in subscriptions.items():
        time_subs.setdefault(subscriber_id, []).append(sub_id)
    result: dict[int, list[tuple]] = {}
    for session_id, subscriber_id, started_at, stopped_at, login_sub in sessions:
        if login_sub is not None:
            sub_id = login_sub if login_sub in subscriptions else None
        elif subscriber_id in shared or len(time_subs.get(subscriber_id, ())) != 1:
            sub_id = None
        else:
            sub_id = time_subs[subscriber_id][0]
        if sub_id is None:
            continue
        until, paid = rated.get(session_id, (None, 0))
        start = max(started_at, until or started_at, since.get(sub_id, started_at))
        if stopped_at is not None and stopped_at <= start:
            continue
        result.setdefault(sub_id, []).append(
            (start.timestamp(), stopped_at.timestamp() if stopped_at is not None else None, paid)
        )
    return result
