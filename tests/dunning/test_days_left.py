"""Days of money left with an open promised payment: it carries the subscriber to its last day and is withdrawn
the day after, so the run-out date never promises what the money without it cannot pay (a property test found
one that did: 95 ₽ promised on a daily plan read as nine days of money)."""

import datetime as dt
from decimal import Decimal

from abonent.dunning.decide import days_left
from abonent.dunning.facts import Facts

TODAY = dt.date(2026, 1, 1)


def facts(available: str, *, promised: str = "0", due: dt.date | None = None) -> Facts:
    return Facts(
        subscriber_id=1,
        available=Decimal(available),
        monthly_due=Decimal("0"),
        monthly_next=None,
        daily_rate=Decimal("10.00"),
        active=1,
        frozen=0,
        state=None,
        restricted_since=None,
        owed=Decimal("0"),
        exempt=False,
        was_exempt=False,
        reminded_for=None,
        reminded_days=None,
        warn_days=3,
        suspend_days=14,
        promised=Decimal(promised),
        promised_due=due,
    )


def test_a_promise_alone_lasts_to_its_last_day_not_as_long_as_its_money():
    assert days_left(facts("95.00"), TODAY) == 9
    assert days_left(facts("95.00", promised="95.00", due=TODAY + dt.timedelta(days=2)), TODAY) == 3


def test_money_of_ones_own_beyond_the_promise_still_counts():
    # 195 ₽ of which 95 promised: 100 ₽ of one's own last 10 days, longer than the promise.
    assert days_left(facts("195.00", promised="95.00", due=TODAY + dt.timedelta(days=2)), TODAY) == 10


def test_a_promise_never_makes_the_money_last_longer_than_it_does():
    assert days_left(facts("20.00", promised="20.00", due=TODAY + dt.timedelta(days=30)), TODAY) == 2
