"""Properties of the access-state rule itself (``decide``, ``days_left``), over random facts: no database, so
Hypothesis can try many. The same rules over real money, billing runs and actions are in
``test_properties_db.py``.

- (a) restricted or suspended exactly when balance + credit < 0 and nothing exempts (exemption, freeze, staff);
- (c) deciding again from what was written changes nothing;
- (e) the run-out date never claims more than the money pays: every charge the billing engine makes before it
  (a split daily plan's real day in its month, a monthly fee on each period start) is covered;
- (f) suspended exactly when restricted for at least D days.

CI runs a bounded number of examples; ``make test-properties`` runs many more (ABONENT_PROPERTY_EXAMPLES).
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import ROUND_UP, Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from abonent.billing.calculations import daily_split
from abonent.dunning.decide import add_months, days_left, decide
from abonent.dunning.facts import SPLIT_DAYS, Facts
from abonent.dunning.models import STAFF_STATES, AccessStateKind
from abonent.dunning.writing import changed

D = Decimal
State = AccessStateKind
settings.register_profile(
    "dunning-pure", max_examples=int(os.environ.get("ABONENT_PROPERTY_EXAMPLES", 25)) * 8, deadline=None
)
PROFILE = settings.get_profile("dunning-pure")

TODAY = dt.date(2026, 1, 20)
NOW = dt.datetime(2026, 1, 20, 9, 0, tzinfo=dt.UTC)
REMIND = (1, 3)

money = st.integers(min_value=-300_000, max_value=300_000).map(lambda k: D(k) / 100)
fees = st.sampled_from([D("0.00"), D("310.00"), D("399.00"), D("500.00"), D("650.00"), D("900.00"), D("1234.56")])
days = st.integers(min_value=0, max_value=400)


@st.composite
def facts(draw) -> Facts:
    active, frozen = draw(st.integers(0, 2)), draw(st.integers(0, 1))
    state = draw(st.none() | st.sampled_from(list(State)))
    in_debt_since = draw(st.none() | st.integers(0, 60 * 24).map(lambda h: NOW - dt.timedelta(hours=h)))
    reminded_for = draw(st.none() | days.map(lambda d: TODAY + dt.timedelta(days=d - 30)))
    return Facts(
        subscriber_id=1,
        available=draw(money),
        monthly_due=draw(fees),
        monthly_next=draw(st.none() | st.integers(-5, 45).map(lambda d: TODAY + dt.timedelta(days=d))),
        daily_rate=_split_rate(draw(fees)),
        active=active,
        frozen=frozen,
        state=state,
        restricted_since=in_debt_since,
        owed=draw(money.map(abs)),
        exempt=draw(st.booleans()),
        was_exempt=draw(st.booleans()),
        reminded_for=reminded_for,
        reminded_days=draw(st.none() | st.integers(0, 5)),
        warn_days=draw(st.integers(0, 10)),
        suspend_days=draw(st.none() | st.integers(0, 30)),
    )


def _split_rate(monthly_fee: Decimal) -> Decimal:
    """What ``facts`` reads for a split daily plan: the fee over 28 days, up to 1/100 of a kopeck."""
    return (monthly_fee / SPLIT_DAYS).quantize(D("0.0001"), rounding=ROUND_UP)


@settings(PROFILE)
@given(f=facts())
def test_a__restricted_or_suspended_exactly_when_in_debt_and_nothing_exempts(f):
    verdict = decide(f, today=TODAY, now=NOW, remind_days=REMIND)
    current = f.state or State.ACTIVE
    if current in STAFF_STATES:
        assert verdict.state == current  # staff states are staff's
        return
    frozen_only = f.active == 0 and f.frozen > 0
    in_debt = f.available < 0 and not f.exempt and not frozen_only
    assert (verdict.state in (State.RESTRICTED, State.SUSPENDED)) == in_debt
    if frozen_only:
        assert verdict.state == State.FROZEN
    assert verdict.owed == max(-f.available, D("0.00"))


@settings(PROFILE)
@given(f=facts())
def test_c_deciding_again_from_what_was_written_changes_nothing(f):
    verdict = decide(f, today=TODAY, now=NOW, remind_days=REMIND)
    written = Facts(
        **{
            **{name: getattr(f, name) for name in Facts.__slots__},
            "state": verdict.state,
            "restricted_since": verdict.restricted_since,
            "owed": verdict.owed,
            "was_exempt": f.exempt,
            "reminded_for": verdict.runout_on if verdict.remind is not None else f.reminded_for,
            "reminded_days": verdict.remind if verdict.remind is not None else f.reminded_days,
        }
    )
    again = decide(written, today=TODAY, now=NOW, remind_days=REMIND)
    assert not changed(written, again)
    assert (again.state, again.restricted_since, again.owed) == (verdict.state, verdict.restricted_since, verdict.owed)


@settings(PROFILE)
@given(
    f=facts(),
    debt_hours=st.integers(0, 40 * 24),
    was=st.sampled_from([None, State.ACTIVE, State.WARNED, State.RESTRICTED, State.SUSPENDED]),
)
def test_f_suspended_exactly_when_restricted_for_d_days(f, debt_hours, was):
    f.state, f.exempt, f.active = was, False, max(f.active, 1)
    f.available = -abs(f.available) - D("0.01")
    f.restricted_since = NOW - dt.timedelta(hours=debt_hours) if was in (State.RESTRICTED, State.SUSPENDED) else None
    verdict = decide(f, today=TODAY, now=NOW, remind_days=REMIND)
    episode_start = f.restricted_since or NOW  # a new debt episode starts now
    assert verdict.restricted_since == episode_start
    long_enough = f.suspend_days is not None and NOW - episode_start >= dt.timedelta(days=f.suspend_days)
    assert verdict.state == (State.SUSPENDED if long_enough else State.RESTRICTED)


@settings(PROFILE)
@given(
    available=st.integers(0, 400_000).map(lambda k: D(k) / 100),
    fee=fees.filter(lambda fee: fee > 0),
    monthly=st.booleans(),
    today=st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2028, 12, 31)),
    cursor_days=st.integers(-3, 31),
)
# February: 30-day months claimed a month of 650 ₽ lasts from 1 February to 3 March; the 1 March charge is unpaid.
@example(available=D("650.00"), fee=D("650.00"), monthly=True, today=dt.date(2027, 1, 31), cursor_days=1)
# A split day in February costs 650/28; at 650/30 a day 40 days of money were claimed where 37 are paid.
@example(available=D("866.67"), fee=D("650.00"), monthly=False, today=dt.date(2027, 1, 31), cursor_days=1)
def test_e_the_run_out_date_never_claims_more_than_the_money_pays(available, fee, monthly, today, cursor_days):
    """The billing engine's own day prices (``daily_split``) and period starts charge every day before the run-out
    date; the money must cover them all."""
    next_charge = today + dt.timedelta(days=cursor_days)
    if monthly:
        next_charge = next_charge.replace(day=1) if cursor_days > 0 else next_charge
    f = Facts(
        subscriber_id=1,
        available=available,
        monthly_due=fee if monthly else D("0.00"),
        monthly_next=next_charge if monthly else None,
        daily_rate=D("0.00") if monthly else _split_rate(fee),
        active=1,
        frozen=0,
        state=None,
        restricted_since=None,
        owed=D("0.00"),
        exempt=False,
        was_exempt=False,
        reminded_for=None,
        reminded_days=None,
        warn_days=3,
        suspend_days=14,
    )
    left = days_left(f, today)
    runout_on = today + dt.timedelta(days=left)
    if left == 0:
        return  # nothing claimed
    balance = available
    if monthly:
        # Every period start from the cursor on is still to be charged (one overdue, on the next run).
        month = 0
        while add_months(next_charge, month) < runout_on:
            balance -= fee
            month += 1
    else:
        # Today's day is charged already (the daily run at midnight); the days after it, until the run-out date.
        day = today + dt.timedelta(days=1)
        while day < runout_on:
            balance -= daily_split(fee, day)
            day += dt.timedelta(days=1)
    assert balance >= 0, f"{left} days claimed, {balance} left before {runout_on}"
