"""Counters at the bigint's limit (issue 12): the reader accepts totals up to 2^63 - 1 octets ((2^31 - 1)
Gigawords + 2^32 - 1 octets), and every sum they go into saturates there instead of overflowing, on both
engines. An overflow used to make PostgreSQL refuse the row (the record lost: a Stop, the session left open),
SQLite store a float, and the FUP query (which the policy store runs to answer Access-Requests) raise."""

import datetime as dt

import pytest

from abonent.network.accounting import INTERIM, MAX_COUNTER, START, STOP, grown_counter, write_batch
from abonent.network.models import Session, SessionStatus, UsageDay
from abonent.network.selectors import subscribers_over_quota, usage_between

from .test_accounting import rec
from .test_fup import GB, NOV_1, fup_plan, on_fup_plan  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

BOUND = (((1 << 31) - 1) << 32) | ((1 << 32) - 1)  # the largest total acct_fields reads
DAY = dt.date(2026, 11, 20)  # T0's local day in test_accounting


def _usage(subscriber_id):
    usage = UsageDay.objects.get(subscriber_id=subscriber_id, day=DAY)
    return usage.input_octets, usage.output_octets


def test_the_bound_is_the_bigints():
    assert BOUND == MAX_COUNTER == 2**63 - 1


def test_a_session_at_the_bound_fills_the_day_and_the_next_session_is_still_written(make_nas, customer):
    nas = make_nas()
    sub = customer.pk
    write_batch([rec(nas, INTERIM, t=60, unique="big", i=BOUND, o=BOUND, sub=sub)])

    write_batch([rec(nas, START, unique="normal", sub=sub)])
    write_batch([rec(nas, STOP, t=60, unique="normal", i=1000, o=10, sub=sub, cause="User-Request")])

    normal = Session.objects.get(unique_id="normal")
    assert (normal.status, normal.input_octets, normal.output_octets) == (SessionStatus.CLOSED, 1000, 10)
    assert _usage(sub) == (MAX_COUNTER, MAX_COUNTER)
    assert all(type(value) is int for value in _usage(sub))  # SQLite made a float of the overflowing sum


def test_two_sessions_at_the_bound_in_one_batch_saturate_the_day(make_nas, customer):
    """The day's sum of one batch's deltas is past 2^63 before it meets the stored total."""
    nas = make_nas()
    sub = customer.pk
    write_batch([rec(nas, INTERIM, t=60, unique=name, i=BOUND, o=7, sub=sub, c32=False) for name in ("a", "b", "c")])

    assert Session.objects.filter(input_octets=BOUND).count() == 3
    assert _usage(sub) == (MAX_COUNTER, 21)


def test_a_32_bit_wrap_on_top_of_the_bound_saturates_and_the_stop_closes_the_session(make_nas, customer):
    """``((high + 1) << 32) | octets`` past bit 63: PostgreSQL's ``<<`` wrapped to a negative total."""
    nas = make_nas()
    sub = customer.pk
    top = ((1 << 31) - 1) << 32
    write_batch([rec(nas, INTERIM, t=60, i=top | 5, o=top | 9, sub=sub)])

    write_batch([rec(nas, STOP, t=120, i=3, o=9, sub=sub, cause="User-Request", c32=True)])

    session = Session.objects.get()
    assert (session.status, session.terminate_cause) == (SessionStatus.CLOSED, "User-Request")
    # Input wrapped (3 < 5): saturated. Output did not (9 = 9): unchanged.
    assert (session.input_octets, session.output_octets) == (MAX_COUNTER, top | 9)
    assert (session.last_delta_in, session.last_delta_out) == (MAX_COUNTER - (top | 5), 0)
    assert _usage(sub) == (MAX_COUNTER, top | 9)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ((((1 << 31) - 1) << 32) | 5, 3, MAX_COUNTER),  # the wrap would pass bit 63
        ((((1 << 31) - 1) << 32) | 5, 7, (((1 << 31) - 1) << 32) | 7),  # no wrap of the high word: fits
        (MAX_COUNTER, 0, MAX_COUNTER),
        ((1 << 32) + 10, 4, (2 << 32) + 4),  # an ordinary wrap, as before
    ],
)
def test_grown_counter_saturates_and_never_goes_below_the_previous_total(before, after, expected):
    assert grown_counter(before, after, 60, 120, True) == expected
    assert grown_counter(before, after, 60, 120, True) >= before


def test_the_fup_query_counts_days_at_the_bound(on_fup_plan):  # noqa: F811 - a fixture
    """input + output of a saturated day, and the month's sum of such days, are past 2^63: PostgreSQL raised
    "bigint out of range" and SQLite "integer overflow", and the policy store, which asks this to answer an
    Access-Request, could not load."""
    for day in (1, 2):
        UsageDay.objects.create(
            subscriber=on_fup_plan, day=dt.date(2026, 11, day), input_octets=MAX_COUNTER, output_octets=MAX_COUNTER
        )

    assert subscribers_over_quota(NOV_1) == {on_fup_plan.pk}
    assert subscribers_over_quota(NOV_1, [on_fup_plan.pk]) == {on_fup_plan.pk}
    assert usage_between(on_fup_plan.pk, NOV_1, dt.date(2026, 12, 1)) == {
        "input_octets": 2 * MAX_COUNTER,
        "output_octets": 2 * MAX_COUNTER,
    }
