"""Working time over random calendars: the due moment and the elapsed working time are inverse, monotonic, and never
land on a day off."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abonent.helpdesk.working_time import (
    Calendar,
    CalendarError,
    add_working_time,
    is_working,
    working_time_between,
)

MSK = "Europe/Moscow"
UTC = dt.UTC
OFFICE = Calendar(time_zone=MSK, hours=dict.fromkeys(range(5), (dt.time(9), dt.time(18))))


def _msk(*args) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(*args, tzinfo=ZoneInfo(MSK))


@st.composite
def calendars(draw):
    zone = draw(st.sampled_from([MSK, "Asia/Vladivostok", "Europe/Berlin", "America/New_York", "UTC"]))
    days = draw(st.sets(st.integers(0, 6), min_size=1))
    hours = {}
    for day in days:
        # At least an hour a working day, so that the longest target fits in the calendar's search range.
        opens = draw(st.integers(0, 22 * 4))
        closes = draw(st.integers(opens + 4, 24 * 4 - 1))
        hours[day] = (dt.time(opens // 4, opens % 4 * 15), dt.time(closes // 4, closes % 4 * 15))
    holidays = draw(st.frozensets(st.dates(dt.date(2026, 1, 1), dt.date(2027, 3, 1)), max_size=20))
    return Calendar(time_zone=zone, hours=hours, holidays=holidays)


starts = st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2026, 12, 31), timezones=st.just(UTC))
durations = st.integers(0, 100 * 60).map(lambda m: dt.timedelta(minutes=m))


@settings(max_examples=200, deadline=None)
@given(calendars(), starts, durations)
def test_the_working_time_from_the_start_to_the_due_moment_is_the_target(calendar, start, duration):
    due = add_working_time(calendar, start, duration)
    assert working_time_between(calendar, start, due) == duration
    assert due >= start


@settings(max_examples=200, deadline=None)
@given(calendars(), starts, durations, durations)
def test_the_due_moment_never_moves_back_for_a_longer_target_or_a_later_start(calendar, start, a, b):
    shorter, longer = sorted([a, b])
    assert add_working_time(calendar, start, shorter) <= add_working_time(calendar, start, longer)
    assert add_working_time(calendar, start, a) <= add_working_time(calendar, start + shorter, a)


@settings(max_examples=200, deadline=None)
@given(calendars(), starts, durations.filter(lambda d: d > dt.timedelta(0)))
def test_a_due_moment_falls_in_working_hours_never_on_a_day_off_or_a_holiday(calendar, start, duration):
    due = add_working_time(calendar, start, duration)
    # The due moment is the end of a working minute: the instant just before it is working time.
    just_before = due - dt.timedelta(microseconds=1)
    assert is_working(calendar, just_before)
    local_day = just_before.astimezone(calendar.zone).date()
    assert local_day not in calendar.holidays
    assert local_day.weekday() in calendar.hours


@settings(max_examples=100, deadline=None)
@given(calendars(), starts, durations, durations)
def test_elapsed_working_time_adds_up_over_a_split(calendar, start, a, b):
    middle = start + a
    end = middle + b
    total = working_time_between(calendar, start, end)
    assert total == working_time_between(calendar, start, middle) + working_time_between(calendar, middle, end)
    assert total <= end - start


def test_eight_working_hours_from_friday_afternoon_end_on_monday():
    friday_15 = _msk(2026, 12, 4, 15, 0)
    due = add_working_time(OFFICE, friday_15, dt.timedelta(hours=8))
    assert due == _msk(2026, 12, 7, 14, 0)  # 3 h on Friday, 5 h on Monday from 09:00
    assert working_time_between(OFFICE, friday_15, due) == dt.timedelta(hours=8)


def test_a_holiday_is_skipped_like_a_weekend():
    calendar = Calendar(time_zone=MSK, hours=OFFICE.hours, holidays=frozenset({dt.date(2026, 12, 7)}))
    due = add_working_time(calendar, _msk(2026, 12, 4, 15, 0), dt.timedelta(hours=8))
    assert due == _msk(2026, 12, 8, 14, 0)


def test_a_start_outside_working_hours_counts_from_the_next_opening():
    saturday_night = _msk(2026, 12, 5, 23, 30)
    assert add_working_time(OFFICE, saturday_night, dt.timedelta(hours=1)) == _msk(2026, 12, 7, 10, 0)
    assert working_time_between(OFFICE, saturday_night, _msk(2026, 12, 7, 8, 59)) == dt.timedelta(0)


def test_a_target_that_ends_at_closing_time_is_due_at_closing_not_the_next_morning():
    assert add_working_time(OFFICE, _msk(2026, 12, 7, 9, 0), dt.timedelta(hours=9)) == _msk(2026, 12, 7, 18, 0)


def test_around_the_clock_is_plain_time_and_ignores_holidays():
    calendar = Calendar(time_zone=MSK, around_the_clock=True, holidays=frozenset({dt.date(2026, 12, 5)}))
    start = _msk(2026, 12, 5, 23, 0)
    assert add_working_time(calendar, start, dt.timedelta(hours=2)) == _msk(2026, 12, 6, 1, 0)


def test_across_a_dst_change_the_hours_are_local_hours():
    # Berlin moves to summer time on 29 March 2026: Monday 30 March still opens at 09:00 local (07:00 UTC).
    calendar = Calendar(time_zone="Europe/Berlin", hours=dict.fromkeys(range(5), (dt.time(9), dt.time(18))))
    friday = dt.datetime(2026, 3, 27, 16, 0, tzinfo=UTC)  # 17:00 in Berlin, an hour before closing
    assert add_working_time(calendar, friday, dt.timedelta(hours=2)) == dt.datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_a_calendar_without_any_working_day_is_refused_not_looped_over():
    with pytest.raises(CalendarError):
        Calendar(time_zone=MSK, hours={})
    every_day_off = Calendar(
        time_zone=MSK,
        hours={0: (dt.time(9), dt.time(10))},
        holidays=frozenset(dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(4 * 366)),
    )
    with pytest.raises(CalendarError):
        add_working_time(every_day_off, _msk(2026, 1, 1, 0, 0), dt.timedelta(minutes=1))
