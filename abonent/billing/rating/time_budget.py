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

from django.db.models import Exists, F, Max, OuterRef

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
    # Time online not charged yet: (since, until or None while open), Unix seconds.
    pending: tuple = ()


def _cents(value) -> int:
    return round(value * 100)


def seconds_left(budget: TimeBudget, now: float) -> int | None:
    """Seconds a new session may last: its free minutes, then the package time left, then what the money buys in
    whole units at today's price; 0 when nothing is left but free minutes; ``None`` when time costs nothing."""
    if budget.unit_price_cents <= 0:
        return None
    used = 0
    for since, until in budget.pending:
        used += max(0, int((until if until is not None else now) - since))
    packages = budget.package_seconds - used
    paid = 0
    if packages < 0:
        paid, packages = -packages, 0
    unit = budget.unit_seconds
    money = budget.money_cents - (-(-paid // unit)) * budget.unit_price_cents
    units = max(0, money // budget.unit_price_cents)
    if packages == 0 and money < budget.minimum_cents:
        units = 0  # not even the minimum charge of a session is covered
    left = packages + units * unit
    return left + budget.free_seconds if left > 0 else 0


def time_budgets(subscriber_ids=None, *, now: dt.datetime | None = None) -> dict[int, TimeBudget]:
    """Subscription id → its ``TimeBudget``, for the active subscriptions on time plans (of ``subscriber_ids``).
    A handful of queries whatever the count."""
    from abonent.network.models import Session  # the network app imports billing, not the reverse

    from .time import LOOKBACK

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
    today = clock.today()
    prices: dict[int, int] = {}
    for plan_id, unit_price in (
        PlanPrice.objects.filter(plan_id__in={row[2] for row in rows}, valid_from__lte=today)
        .order_by("plan_id", "-valid_from")
        .values_list("plan_id", "unit_price")
    ):
        prices.setdefault(plan_id, _cents(unit_price) if unit_price is not None else 0)
    # Subqueries rather than lists of ids: every hotspot subscriber at once would pass SQLite's parameter limit.
    whose = subs.values("subscriber_id")
    money = {
        subscriber_id: _cents(balance + credit)
        for subscriber_id, balance, credit in LedgerAccount.objects.filter(subscriber_id__in=whose).values_list(
            "subscriber_id", "balance", "credit_limit"
        )
    }
    packages: dict[int, int] = {}
    for sub_id, seconds, used in TimePackagePurchase.objects.filter(
        subscription_id__in=subs.values("pk"), starts_at__lte=now, expires_at__gt=now, used_seconds__lt=F("seconds")
    ).values_list("subscription_id", "seconds", "used_seconds"):
        packages[sub_id] = packages.get(sub_id, 0) + seconds - used
    pending = _pending(Session, whose, now - LOOKBACK)
    result = {}
    for sub_id, subscriber_id, plan_id, unit, free_minutes, minimum in rows:
        result[sub_id] = TimeBudget(
            money_cents=money.get(subscriber_id, 0),
            package_seconds=packages.get(sub_id, 0),
            unit_seconds=TIME_UNIT_SECONDS[unit],
            unit_price_cents=prices.get(plan_id, 0),
            free_seconds=free_minutes * 60,
            minimum_cents=_cents(minimum),
            pending=tuple(pending.get(subscriber_id, ())),
        )
    return result


def _pending(Session, whose, horizon: dt.datetime) -> dict[int, list[tuple]]:
    """Subscriber → its sessions' time not rated yet: from the end of the last rated part (or the start)."""
    finished = TimeRating.objects.filter(session_id=OuterRef("pk"), final=True)
    unfinished = Session.objects.filter(subscriber_id__in=whose, started_at__gte=horizon).exclude(Exists(finished))
    sessions = list(unfinished.values_list("id", "subscriber_id", "started_at", "stopped_at"))
    if not sessions:
        return {}
    rated_until = dict(
        TimeRating.objects.filter(session_id__in=unfinished.values("pk"))
        .values("session_id")
        .annotate(until=Max("part_end"))
        .values_list("session_id", "until")
    )
    result: dict[int, list[tuple]] = {}
    for session_id, subscriber_id, started_at, stopped_at in sessions:
        since = max(started_at, rated_until.get(session_id) or started_at)
        if stopped_at is not None and stopped_at <= since:
            continue
        result.setdefault(subscriber_id, []).append(
            (since.timestamp(), stopped_at.timestamp() if stopped_at is not None else None)
        )
    return result
