"""Deciding a subscriber's access state from its facts: pure, the same whatever the engine.

Days of money left (``days_left``) never claim more than the money pays for (a property test holds it):

- monthly plans (charged in advance): the days to the first charge the money cannot pay, which is the next
  charge moved on by a calendar month for each monthly fee the money covers (a subscriber paid up to the end of
  the month is not "running out" on the 2nd; 30-day months would have claimed two days too many from February);
- daily plans: the money divided by the day's fees, a split plan's day at its dearest (a 28-day February's,
  ``facts``), so the day it runs out comes no later than it will;
- a subscriber with both kinds takes the smaller; several monthly plans are charged as one (the earliest charge
  date, their fees together): an approximation that errs towards warning earlier;
- at most ``MAX_DAYS_LEFT`` (ten years): 100,000 ₽ on a 1 ₽ plan is 8,000 years of money, and a run-out date past
  the year 9999 does not exist (``OverflowError``, which once stopped a whole sweep chunk). Every threshold is far
  below the cap (a rule's ``warn_days`` ≤ 365, reminders a few days), so the cap never changes a state.

The debt episode (``restricted_since``, which counts the D days to suspension) starts when the money rules first
restrict and lasts while balance + credit limit stays below zero, through a freeze and an operator's block or
termination: unfreezing or lifting a block does not give a debtor another D days.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .facts import ZERO, Facts
from .models import STAFF_STATES, AccessStateKind

State = AccessStateKind
# A month of fees, in days: for "pay this much to last a month" in the run-out reminder.
MONTH_DAYS = 30
# Money lasting longer than this counts as this (module docstring): "more than ten years".
MAX_DAYS_LEFT = 3650
MAX_MONTHS_LEFT = MAX_DAYS_LEFT // 28 + 1


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
    left = _lasts(facts, facts.available, today)
    if left is None or not facts.promised or facts.promised_due is None:
        return left
    # An open promised payment carries the subscriber to its last day and is withdrawn the day after: the money
    # then is what is left without it (a property test found the run-out date promised more than that).
    promise_ends = max((facts.promised_due - today).days + 1, 0)
    # Money below zero without the promise is a debt the promise hides: it runs out the day the promise ends (on a
    # monthly plan 0 ₽ would otherwise "last" until the next charge, read as a month).
    own = facts.available - facts.promised
    without = (_lasts(facts, own, today) or 0) if own >= 0 else 0
    return min(left, max(promise_ends, without))


def _lasts(facts: Facts, money: Decimal, today: dt.date) -> int | None:
    available = max(money, ZERO)
    candidates = []
    if facts.daily_rate > 0:
        candidates.append(int(available // facts.daily_rate))
    if facts.monthly_due > 0 and facts.monthly_next is not None:
        if (facts.monthly_next - today).days >= MAX_DAYS_LEFT:
            candidates.append(MAX_DAYS_LEFT)
        else:
            months = min(int(available // facts.monthly_due), MAX_MONTHS_LEFT)
            first_unpaid = add_months(facts.monthly_next, months)
            candidates.append(max((first_unpaid - today).days, 0))
    return min(*candidates, MAX_DAYS_LEFT) if candidates else None


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved on by ``months`` calendar months, its day of month clamped to the month's last."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return day.replace(year=year, month=month + 1, day=min(day.day, calendar.monthrange(year, month + 1)[1]))


def decide(facts: Facts, *, today: dt.date, now: dt.datetime, remind_days: Iterable[int] = ()) -> Verdict:
    """The state ``facts`` put the subscriber in. Staff states (blocked, terminated) are kept as they are."""
    owed = max(-facts.available, ZERO)
    left = days_left(facts, today)
    runout_on = today + dt.timedelta(days=left) if left is not None else None
    current = facts.state or State.ACTIVE
    # The debt episode goes on through the states that are not the money's (module docstring); paid, it ends.
    episode = facts.restricted_since if facts.available < 0 and not facts.exempt else None
    if current in STAFF_STATES:
        return Verdict(current, left, runout_on, owed, episode)
    if facts.active == 0 and facts.frozen > 0:
        return Verdict(State.FROZEN, None, None, owed, episode)
    if facts.available < 0:
        if facts.exempt:
            return Verdict(State.WARNED, 0, today, owed, None)
        since = episode or now
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
    same_date = facts.reminded_for is not None and abs((facts.reminded_for - runout_on).days) <= 1
    if same_date and facts.reminded_days is not None and facts.reminded_days <= level:
        return None
    return level
