"""Hypothesis properties of the pure charging arithmetic (abonent/billing/calculations.py)."""

import datetime as dt
from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

from abonent.billing import calculations as calc

fees = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
days = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31))


@given(fees, days)
def test_daily_charges_of_any_month_add_up_to_the_fee(fee, day):
    start = day.replace(day=1)
    n = calc.days_in_month(start)
    parts = [calc.daily_split(fee, start + dt.timedelta(days=i)) for i in range(n)]
    assert sum(parts) == fee
    assert all(abs(p - fee / n) < Decimal("0.01") for p in parts)
    assert all(p >= 0 for p in parts)


@given(fees, days, days)
def test_proration_never_exceeds_the_fee_nor_goes_below_zero(fee, day, used_from):
    period = calc.monthly_period(day)
    part = calc.prorate(fee, period=period, used_from=used_from)
    assert Decimal("0.00") <= part <= fee


@given(fees, days, st.integers(0, 31))
def test_prorated_parts_of_a_split_period_sum_to_the_fee_within_a_kopeck(fee, day, offset):
    start, end = calc.monthly_period(day)
    split = min(start + dt.timedelta(days=offset), end)
    used_before = fee - calc.prorate(fee, period=(start, end), used_from=split)
    assert abs(used_before + calc.prorate(fee, period=(start, end), used_from=split) - fee) <= Decimal("0.01")


@given(fees, fees, days, st.integers(0, 31))
def test_upgrade_credit_plus_new_charge_never_exceeds_both_fees(old_fee, new_fee, day, offset):
    period = calc.monthly_period(day)
    change = min(period[0] + dt.timedelta(days=offset), period[1])
    credit, charge = calc.plan_change_amounts(
        old_fee=old_fee, new_fee=new_fee, already_charged=old_fee, period=period, change_at=change
    )
    assert credit <= old_fee and charge <= new_fee
    assert credit + charge <= old_fee + new_fee


@given(fees, days, st.integers(0, 31))
def test_credit_never_exceeds_what_was_charged(fee, day, offset):
    period = calc.monthly_period(day)
    change = min(period[0] + dt.timedelta(days=offset), period[1])
    charged = calc.prorate(fee, period=period, used_from=period[0] + dt.timedelta(days=offset // 2))
    credit, _charge = calc.plan_change_amounts(
        old_fee=fee, new_fee=fee, already_charged=charged, period=period, change_at=change
    )
    assert credit <= charged


@given(fees, st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 12, 31)))
def test_proration_by_seconds_is_bounded_and_monotonic(fee, moment):
    start = dt.datetime.combine(moment.date().replace(day=1), dt.time.min)
    end = dt.datetime.combine(calc.add_months(start.date(), 1), dt.time.min)
    later = min(moment + dt.timedelta(hours=1), end)
    a = calc.prorate(fee, period=(start, end), used_from=moment)
    b = calc.prorate(fee, period=(start, end), used_from=later)
    assert Decimal("0.00") <= b <= a <= fee


@given(st.integers(1, 31), st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2096, 1, 1)))
def test_anniversary_periods_cover_time_without_gaps_or_overlaps_and_return_to_the_anchor(anchor, day):
    start, end = calc.monthly_period(day, anniversary_day=anchor)
    assert start <= day < end
    for _ in range(48):  # four years of periods, February and leap years included
        next_start, next_end = calc.monthly_period(end, anniversary_day=anchor)
        assert next_start == end
        assert next_start.day == min(anchor, calc.days_in_month(next_start))
        start, end = next_start, next_end


@given(days, st.integers(-600, 600))
def test_add_months_clamps_to_month_end(day, months):
    moved = calc.add_months(day, months)
    assume(moved.year < 9999)
    assert moved.day == min(day.day, calc.days_in_month(moved))
