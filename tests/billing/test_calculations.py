"""Hypothesis properties of the pure charging arithmetic (abonent/billing/calculations.py)."""

import datetime as dt
from decimal import Decimal

from hypothesis import assume, example, given
from hypothesis import strategies as st

from abonent.billing import calculations as calc
from abonent.core.money import quantize

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


anchors = st.none() | st.integers(1, 31)  # a calendar period, or an anniversary one from that day of month


@given(fees, days, anchors)
def test_proration_is_the_whole_fee_from_the_period_start_and_nothing_from_its_end(fee, day, anchor):
    start, end = calc.monthly_period(day, anniversary_day=anchor)
    assert calc.prorate(fee, period=(start, end), used_from=start) == fee
    assert calc.prorate(fee, period=(start, end), used_from=end) == Decimal("0.00")
    # outside the period it is clamped to the same two values
    assert calc.prorate(fee, period=(start, end), used_from=start - dt.timedelta(days=40)) == fee
    assert calc.prorate(fee, period=(start, end), used_from=end + dt.timedelta(days=40)) == Decimal("0.00")


@given(fees, days, anchors, st.integers(0, 31), st.integers(0, 31))
def test_proration_falls_as_the_first_day_used_moves_later(fee, day, anchor, offset_a, offset_b):
    start, end = calc.monthly_period(day, anniversary_day=anchor)
    earlier, later = sorted(start + dt.timedelta(days=offset) for offset in (offset_a, offset_b))
    assert calc.prorate(fee, period=(start, end), used_from=earlier) >= calc.prorate(
        fee, period=(start, end), used_from=later
    )


@given(fees, days, anchors, st.integers(0, 30))
def test_each_day_later_takes_off_the_daily_fee_within_a_kopeck(fee, day, anchor, offset):
    start, end = calc.monthly_period(day, anniversary_day=anchor)
    used_from = start + dt.timedelta(days=offset)
    assume(used_from < end)
    step = calc.prorate(fee, period=(start, end), used_from=used_from) - calc.prorate(
        fee, period=(start, end), used_from=used_from + dt.timedelta(days=1)
    )
    assert abs(step - fee / (end - start).days) < Decimal("0.01")


@example(Decimal("650.00"), dt.date(2026, 11, 16))  # 650 × 15/30 = 325.00: no tie
@example(Decimal("0.01"), dt.date(2026, 11, 16))  # 0.01 × 15/30 = 0.005: the tie
@given(fees, days)
def test_proration_equals_the_daily_charges_it_replaces_except_on_a_half_kopeck(fee, day):
    # given a calendar month of n days, prorated from day k, and the daily charges of days k..n
    start, end = calc.monthly_period(day)
    n, k = (end - start).days, day.day
    daily = sum(calc.daily_split(fee, start + dt.timedelta(days=i)) for i in range(k - 1, n))
    prorated = calc.prorate(fee, period=(start, end), used_from=day)
    # daily charges sum to fee − round(y), proration is round(fee − y), y = fee·(k−1)/n; rounding half-up they
    # differ only when y is exactly half a kopeck, and then proration is one kopeck more.
    tie = (2 * int(fee * 100) * (k - 1)) % (2 * n) == n
    assert prorated - daily == (Decimal("0.01") if tie else Decimal("0.00"))


@given(fees, days, anchors, days)
def test_proration_by_seconds_from_midnights_equals_proration_by_days(fee, day, anchor, used_from):
    start, end = calc.monthly_period(day, anniversary_day=anchor)

    def midnight(d):
        return dt.datetime.combine(d, dt.time.min)

    by_days = calc.prorate(fee, period=(start, end), used_from=used_from)
    by_seconds = calc.prorate(fee, period=(midnight(start), midnight(end)), used_from=midnight(used_from))
    assert by_seconds == by_days


@given(fees, days, anchors, days)
def test_a_credit_is_prorated_as_the_charge_it_returns(fee, day, anchor, used_from):
    # the unused part of a charge and of a credit over the same span cancel to the kopeck (unused_credit relies
    # on it); half-up rounds ties away from zero, symmetrically
    period = calc.monthly_period(day, anniversary_day=anchor)
    assert calc.prorate(-fee, period=period, used_from=used_from) == -calc.prorate(
        fee, period=period, used_from=used_from
    )


@given(fees, days, anchors, days)
def test_the_stored_fraction_re_derives_the_prorated_amount(fee, day, anchor, used_from):
    start, end = calc.monthly_period(day, anniversary_day=anchor)
    part = calc.prorate(fee, period=(start, end), used_from=used_from)
    numerator, denominator = calc.proration_fraction(period=(start, end), used_from=used_from)
    assert denominator == (end - start).days and 0 <= numerator <= denominator
    assert quantize(fee * numerator / denominator) == part
    assert part.as_tuple().exponent == -2  # kopecks, as the ledger stores them


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
