"""Computing access states from money and subscriptions, for one subscriber or a million.

``evaluate(subscriber_ids)`` (after a balance change) and ``sweep()`` (every few minutes in the worker) share
one path: the facts of a range of subscribers are read in one set-based query (``facts``), the state each
should be in is decided in Python (``decide``: the same rule whatever the engine), and only the subscribers
whose state, debt, exemption or reminder changed are written, in one transaction per chunk.

Concurrency: an evaluation after a payment and a sweep can read the same subscriber at once. The writer locks
the rows it is about to change and drops those whose state moved since it read them (the other writer won;
the next sweep re-reads them), so a transition is written once and its notice queued once (the notices are
also unique by key).

Days of money left (``days_left``): for daily plans, the money divided by the day's fees; for monthly plans
(charged in advance), the days to the next charge plus a month for every further monthly fee the money
covers, so a subscriber paid up to the end of the month is not "running out" on the 2nd. A subscriber with
both kinds takes the smaller. Several monthly plans are charged as one (the earliest charge date, their
fees together): an approximation that errs towards warning earlier.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction

from abonent.core import clock, events
from abonent.core.deadlines import db_deadline
from abonent.notifications.models import Event
from abonent.notifications.queueing import Notice, notify_many

from .models import (
    STAFF_STATES,
    AccessState,
    AccessStateKind,
    AccessTransition,
    DunningRule,
    Exemption,
    TransitionCause,
)

logger = logging.getLogger(__name__)

State = AccessStateKind
# Subscribers read per query and written per transaction by the sweep.
CHUNK = 50_000
# A monthly plan's period in days, for "how many days does the money last".
MONTH_DAYS = 30
ZERO = Decimal("0.00")
NO_SUSPEND = 32767  # a rule's "never suspend", as a number the SQL can take the largest of


@dataclass(slots=True)
class Facts:
    """What ``decide`` needs to know of one subscriber, as ``facts`` reads it."""

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


@dataclass(slots=True)
class Verdict:
    state: str
    days_left: int | None
    runout_on: dt.date | None
    owed: Decimal
    restricted_since: dt.datetime | None
    remind: int | None = None  # a run-out reminder to send: "N days left"


def days_left(facts: Facts, today: dt.date) -> int | None:
    """Whole days the money lasts at today's fees (module docstring); None without recurring fees."""
    if facts.active == 0:
        return None
    available = max(facts.available, ZERO)
    candidates = []
    if facts.daily_rate > 0:
        candidates.append(int(available // facts.daily_rate))
    if facts.monthly_due > 0 and facts.monthly_next is not None:
        until_charge = max((facts.monthly_next - today).days, 0)
        candidates.append(until_charge + MONTH_DAYS * int(available // facts.monthly_due))
    return min(candidates) if candidates else None


def decide(facts: Facts, *, today: dt.date, now: dt.datetime, remind_days: Iterable[int] = ()) -> Verdict:
    """The state ``facts`` put the subscriber in. Staff states (blocked, terminated) are kept as they are."""
    owed = max(-facts.available, ZERO)
    left = days_left(facts, today)
    runout_on = today + dt.timedelta(days=left) if left is not None else None
    current = facts.state or State.ACTIVE
    if current in STAFF_STATES:
        return Verdict(current, left, runout_on, owed, facts.restricted_since)
    if facts.active == 0 and facts.frozen > 0:
        return Verdict(State.FROZEN, None, None, owed, None)
    if facts.available < 0:
        if facts.exempt:
            return Verdict(State.WARNED, 0, today, owed, None)
        in_debt = current in (State.RESTRICTED, State.SUSPENDED) and facts.restricted_since is not None
        since = facts.restricted_since if in_debt else now
        if facts.suspend_days is not None and now - since >= dt.timedelta(days=facts.suspend_days):
            return Verdict(State.SUSPENDED, 0, today, owed, since)
        return Verdict(State.RESTRICTED, 0, today, owed, since)
    state = State.WARNED if left is not None and left <= facts.warn_days else State.ACTIVE
    verdict = Verdict(state, left, runout_on, owed, None)
    verdict.remind = _reminder_due(facts, left, runout_on, remind_days)
    return verdict


def _reminder_due(facts: Facts, left: int | None, runout_on: dt.date | None, remind_days: Iterable[int]) -> int | None:
    """The "N days left" reminder to send now, if any: the smallest threshold reached, once per run-out date.
    A date within a day of the one reminded counts as the same (daily fees are split by the kopeck, and the
    floor of the money over them moves the date back and forth by a day)."""
    if left is None or runout_on is None:
        return None
    reached = [days for days in remind_days if left <= days]
    if not reached:
        return None
    level = min(reached)
    if facts.reminded_for is not None and abs((facts.reminded_for - runout_on).days) <= 1:
        if facts.reminded_days is not None and facts.reminded_days <= level:
            return None
    return level


# --- reading the facts ---------------------------------------------------------------------------------------


def _rule_defaults() -> tuple[int, int | None]:
    default = DunningRule.objects.filter(is_default=True).first()
    if default is not None:
        return default.warn_days, default.suspend_after_days
    suspend = settings.ABONENT_DUNNING_SUSPEND_DAYS
    return settings.ABONENT_DUNNING_WARN_DAYS, (suspend or None)


def _facts_sql(*, by_ids: bool, group_rules: bool, plan_rules: bool, exemptions: bool, id_count: int = 0) -> str:
    """One statement over a range of subscriber ids (``%(lo)s < id <= %(hi)s``) or a list of them. The parts for
    rules and exemptions are left out when there are none, as there usually are not: then it is a scan of the
    subscribers, their ledger accounts and subscriptions, and a small price table."""
    if by_ids:
        placeholders = ", ".join(["%s"] * id_count)
        sub_filter = f"sub.id IN ({placeholders})"
        subscription_filter = f"s.subscriber_id IN ({placeholders})"
    else:
        sub_filter = "sub.id > %s AND sub.id <= %s"
        subscription_filter = "s.subscriber_id > %s AND s.subscriber_id <= %s"
    live_exemption = "e.revoked_at IS NULL AND e.starts_on <= %s AND e.expires_on >= %s"
    group_warn = group_suspend = plan_warn = plan_suspend = "NULL"
    if group_rules:
        scope = (
            "FROM dunning_dunningrule r JOIN subscribers_subscriber_groups g ON g.subscribergroup_id = r.group_id "
            "WHERE g.subscriber_id = sub.id"
        )
        group_warn = f"(SELECT MAX(r.warn_days) {scope})"
        group_suspend = f"(SELECT MAX(COALESCE(r.suspend_after_days, {NO_SUSPEND})) {scope})"
    if plan_rules:
        scope = (
            "FROM dunning_dunningrule r JOIN billing_subscription s2 ON s2.plan_id = r.plan_id "
            "WHERE s2.subscriber_id = sub.id AND s2.status = 'active'"
        )
        plan_warn = f"(SELECT MAX(r.warn_days) {scope})"
        plan_suspend = f"(SELECT MAX(COALESCE(r.suspend_after_days, {NO_SUSPEND})) {scope})"
    exempt = "0"
    if exemptions:
        exempt = (
            f"CASE WHEN EXISTS (SELECT 1 FROM dunning_exemption e WHERE {live_exemption} AND e.subscriber_id = sub.id)"
            f" OR EXISTS (SELECT 1 FROM dunning_exemption e JOIN subscribers_subscriber_groups g"
            f" ON g.subscribergroup_id = e.group_id WHERE {live_exemption} AND g.subscriber_id = sub.id)"
            " THEN 1 ELSE 0 END"
        )
    return f"""
        WITH price AS (
            SELECT pp.plan_id, pp.monthly_fee, pp.daily_fee
            FROM catalog_planprice pp
            WHERE pp.valid_from = (
                SELECT MAX(p2.valid_from) FROM catalog_planprice p2
                WHERE p2.plan_id = pp.plan_id AND p2.valid_from <= %s
            )
        ),
        fees AS (
            SELECT s.subscriber_id,
                SUM(CASE WHEN s.status = 'active' AND pl.charge_mode = 'monthly' THEN pr.monthly_fee ELSE 0 END)
                    AS monthly_due,
                MIN(CASE WHEN s.status = 'active' AND pl.charge_mode = 'monthly' THEN s.next_charge_on END)
                    AS monthly_next,
                SUM(CASE WHEN s.status = 'active' AND pl.charge_mode = 'daily'
                    THEN COALESCE(pr.daily_fee, pr.monthly_fee / 30) ELSE 0 END) AS daily_rate,
                SUM(CASE WHEN s.status = 'active' THEN 1 ELSE 0 END) AS active,
                SUM(CASE WHEN s.status = 'frozen' THEN 1 ELSE 0 END) AS frozen
            FROM billing_subscription s
            JOIN catalog_plan pl ON pl.id = s.plan_id
            LEFT JOIN price pr ON pr.plan_id = s.plan_id
            WHERE s.status IN ('active', 'frozen') AND {subscription_filter}
            GROUP BY s.subscriber_id
        )
        SELECT sub.id, la.balance + la.credit_limit, f.monthly_due, f.monthly_next, f.daily_rate,
            f.active, f.frozen, st.state, st.restricted_since, st.owed, st.exempt, st.reminded_for,
            st.reminded_days, {exempt}, COALESCE({group_warn}, {plan_warn}),
            COALESCE({group_suspend}, {plan_suspend})
        FROM subscribers_subscriber sub
        JOIN billing_ledgeraccount la ON la.subscriber_id = sub.id
        LEFT JOIN fees f ON f.subscriber_id = sub.id
        LEFT JOIN dunning_accessstate st ON st.subscriber_id = sub.id
        WHERE sub.status <> 'closed' AND {sub_filter}
        ORDER BY sub.id
    """


def _money(value) -> Decimal:
    if value is None:
        return ZERO
    return Decimal(value).quantize(Decimal("0.0001")) if not isinstance(value, Decimal) else value


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


def facts(*, subscriber_ids: list[int] | None = None, id_range: tuple[int, int] | None = None, today: dt.date):
    """The facts of the subscribers listed or in ``(lo, hi]``, in id order."""
    group_rules = DunningRule.objects.filter(group__isnull=False).exists()
    plan_rules = DunningRule.objects.filter(plan__isnull=False).exists()
    exemptions = Exemption.objects.filter(revoked_at__isnull=True, expires_on__gte=today).exists()
    warn_default, suspend_default = _rule_defaults()
    by_ids = subscriber_ids is not None
    ids = list(subscriber_ids or ())
    sql = _facts_sql(
        by_ids=by_ids, group_rules=group_rules, plan_rules=plan_rules, exemptions=exemptions, id_count=len(ids)
    )
    scope = ids if by_ids else list(id_range)
    params: list = [today, *scope]
    if exemptions:
        params += [today, today, today, today]
    params += scope
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    for row in rows:
        (sid, available, monthly_due, monthly_next, daily_rate, active, frozen, state, restricted_since, owed,
         was_exempt, reminded_for, reminded_days, exempt, warn, suspend) = row  # fmt: skip
        if suspend is None:
            suspend = suspend_default
        elif suspend == NO_SUSPEND:
            suspend = None
        yield Facts(
            subscriber_id=sid,
            available=_money(available),
            monthly_due=_money(monthly_due),
            monthly_next=_date(monthly_next),
            daily_rate=_money(daily_rate),
            active=int(active or 0),
            frozen=int(frozen or 0),
            state=state,
            restricted_since=_moment(restricted_since),
            owed=_money(owed),
            exempt=bool(exempt),
            was_exempt=bool(was_exempt),
            reminded_for=_date(reminded_for),
            reminded_days=reminded_days,
            warn_days=warn_default if warn is None else int(warn),
            suspend_days=suspend,
        )


# --- writing the changes -------------------------------------------------------------------------------------


def _changed(f: Facts, v: Verdict) -> bool:
    current = f.state or State.ACTIVE
    if v.state != current or v.remind is not None or f.exempt != f.was_exempt:
        return True
    # The debt of a restricted or suspended subscriber grows with each day's fees: the queue shows it.
    return v.state in (State.RESTRICTED, State.SUSPENDED, State.FROZEN) and v.owed != _money(f.owed)


_NOTICE_FOR = {
    State.RESTRICTED: Event.RESTRICTED,
    State.SUSPENDED: Event.SUSPENDED,
}
_DEBT_STATES = frozenset({State.RESTRICTED, State.SUSPENDED})


def _notices(f: Facts, v: Verdict, now: dt.datetime) -> list[Notice]:
    current = f.state or State.ACTIVE
    notices = []
    stamp = now.strftime("%Y%m%d%H%M")
    if v.state != current and v.state in _NOTICE_FOR:
        context = {"balance": _fmt(f.available), "amount_due": _fmt(v.owed)}
        notices.append(
            Notice(f.subscriber_id, _NOTICE_FOR[v.state], f"dunning:{v.state}:{f.subscriber_id}:{stamp}", context)
        )
    if current in _DEBT_STATES and v.state in (State.ACTIVE, State.WARNED):
        context = {"balance": _fmt(f.available)}
        notices.append(Notice(f.subscriber_id, Event.RESTORED, f"dunning:restored:{f.subscriber_id}:{stamp}", context))
    if v.remind is not None:
        amount_due = max(f.monthly_due + f.daily_rate * MONTH_DAYS - max(f.available, ZERO), ZERO)
        context = {
            "balance": _fmt(f.available),
            "days_left": v.days_left,
            "runout_on": v.runout_on.strftime("%d.%m.%Y") if v.runout_on else "",
            "amount_due": _fmt(amount_due.quantize(Decimal("0.01"))),
        }
        key = f"runout:{f.subscriber_id}:{v.runout_on.isoformat()}:{v.remind}"
        notices.append(Notice(f.subscriber_id, Event.RUNOUT_SOON, key, context))
    return notices


def _fmt(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01')):.2f}".replace(".", ",")


def _write(pairs: list[tuple[Facts, Verdict]], *, cause: str, now: dt.datetime, actor=None) -> list[int]:
    """Write the changes of one chunk; returns the subscribers whose state changed."""
    if not pairs:
        return []
    with transaction.atomic():
        db_deadline(lock=5, statement=60)
        ids = [f.subscriber_id for f, _v in pairs]
        locked = dict(
            AccessState.objects.select_for_update().filter(subscriber_id__in=ids).values_list("subscriber_id", "state")
        )
        # Drop what another writer changed since it was read (see the module docstring).
        pairs = [(f, v) for f, v in pairs if locked.get(f.subscriber_id) == f.state]
        rows, transitions, notices, moved = [], [], [], []
        for f, v in pairs:
            current = f.state or State.ACTIVE
            rows.append(
                AccessState(
                    subscriber_id=f.subscriber_id,
                    state=v.state,
                    # A new row or a new state starts now; ``since`` is left alone otherwise (_upsert).
                    since=now if v.state != current or f.state is None else None,
                    restricted_since=v.restricted_since,
                    runout_on=v.runout_on,
                    owed=v.owed,
                    exempt=f.exempt,
                    reminded_for=v.runout_on if v.remind is not None else f.reminded_for,
                    reminded_days=v.remind if v.remind is not None else f.reminded_days,
                    evaluated_at=now,
                )
            )
            if v.state != current:
                moved.append(f.subscriber_id)
                transitions.append(
                    AccessTransition(
                        subscriber_id=f.subscriber_id,
                        from_state=current,
                        to_state=v.state,
                        at=now,
                        cause=cause,
                        available=f.available.quantize(Decimal("0.01")),
                        actor=actor,
                    )
                )
            notices.extend(_notices(f, v, now))
        _upsert(rows)
        AccessTransition.objects.bulk_create(transitions, batch_size=2000)
        notify_many(notices)
        if moved:
            events.emit("dunning.states_changed", subscriber_ids=moved)
    return moved


_UPDATED = ["state", "restricted_since", "runout_on", "owed", "exempt", "reminded_for", "reminded_days", "evaluated_at"]


def _upsert(rows: list[AccessState]) -> None:
    """Insert the new rows and update the rest; ``since`` only where the state changed."""
    moved = [row for row in rows if row.since is not None]
    kept = [row for row in rows if row.since is None]
    for batch_start in range(0, len(moved), 2000):
        AccessState.objects.bulk_create(
            moved[batch_start : batch_start + 2000],
            update_conflicts=True,
            unique_fields=["subscriber"],
            update_fields=[*_UPDATED, "since"],
        )
    for batch_start in range(0, len(kept), 2000):
        batch = kept[batch_start : batch_start + 2000]
        AccessState.objects.bulk_update(batch, _UPDATED, batch_size=2000)


def _remind_days() -> list[int]:
    return sorted({int(d) for d in settings.ABONENT_DUNNING_REMIND_DAYS if int(d) >= 0})


def evaluate(subscriber_ids: Iterable[int], *, cause: str = TransitionCause.BALANCE, actor=None) -> list[int]:
    """Bring the listed subscribers' states up to date now; returns those whose state changed."""
    ids = sorted({int(sid) for sid in subscriber_ids})
    if not ids:
        return []
    now, today = clock.now(), clock.today()
    remind = _remind_days()
    moved = []
    for start in range(0, len(ids), 500):
        pairs = []
        for f in facts(subscriber_ids=ids[start : start + 500], today=today):
            v = decide(f, today=today, now=now, remind_days=remind)
            if _changed(f, v):
                pairs.append((f, v))
        moved += _write(pairs, cause=cause, actor=actor, now=now)
    return moved


def sweep(*, chunk: int = CHUNK) -> dict[str, int]:
    """Every subscriber, chunk by chunk of ids; returns counts for the job's log."""
    from abonent.subscribers.models import Subscriber

    now, today = clock.now(), clock.today()
    remind = _remind_days()
    top = Subscriber.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    seen = written = moved = 0
    for lo in range(0, top, chunk):
        pairs = []
        for f in facts(id_range=(lo, lo + chunk), today=today):
            seen += 1
            v = decide(f, today=today, now=now, remind_days=remind)
            if _changed(f, v):
                pairs.append((f, v))
        written += len(pairs)
        moved += len(_write(pairs, cause=TransitionCause.SWEEP, now=now))
    return {"subscribers": seen, "written": written, "moved": moved}
