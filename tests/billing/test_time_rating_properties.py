"""Property: what time rating charges depends on the sessions only, never on how often or when rating ran (open
sessions seen part-way, at any moments, or only once everything had stopped)."""

import datetime as dt
import os

from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abonent.billing.models import Charge, ChargeKind, TimeRating
from abonent.network.models import Session

from .time_helpers import D, local, rate, session

settings.register_profile(
    "time-rating", max_examples=int(os.environ.get("ABONENT_PROPERTY_EXAMPLES", 25)), deadline=None
)
START = local(2026, 11, 29, 20, 0)  # the night before a period boundary (1 December)

sessions_strategy = st.lists(
    st.tuples(st.integers(0, 3 * 24 * 60), st.integers(0, 30 * 60)),  # start (minutes after START), length (minutes)
    min_size=1,
    max_size=5,
)
plan_strategy = st.tuples(
    st.sampled_from(["minute", "hour"]), st.integers(0, 10), st.sampled_from([D("0"), D("5.00"), D("40.00")])
)
moments_strategy = st.lists(st.integers(0, 5 * 24 * 60), max_size=6)


def _play(subscriber, nas, spans, moments) -> tuple[dict, int]:
    """Sessions appear, run and stop as accounting would show them at each rating moment; then everything stops
    and rating runs once more. Returns the charges per day and the parts rated."""
    made: dict[int, Session] = {}
    end_of_all = START + dt.timedelta(days=5)
    for minute in [*sorted(moments), 5 * 24 * 60]:
        at = START + dt.timedelta(minutes=minute)
        for n, (offset, length) in enumerate(spans):
            start = START + dt.timedelta(minutes=offset)
            stop = start + dt.timedelta(minutes=length, seconds=7)
            if start > at:
                continue
            if n not in made:
                made[n] = session(nas, subscriber, start, None, seconds=0)
            s = made[n]
            if stop <= at:
                s.status, s.stopped_at, s.session_time = "closed", stop, int((stop - start).total_seconds())
            else:
                s.session_time = int((at - start).total_seconds())
            s.updated_at = min(at, stop)
            s.save()
        rate(max(at, end_of_all) if minute == 5 * 24 * 60 else at)
    per_day: dict = {}
    for day, amount in Charge.objects.filter(kind=ChargeKind.TIME).values_list("period_start", "amount"):
        per_day[day] = per_day.get(day, D("0")) + amount
    return per_day, TimeRating.objects.count()


@settings(
    settings.get_profile("time-rating"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spans=sessions_strategy, plan=plan_strategy, moments=moments_strategy)
def test_charges_do_not_depend_on_when_rating_ran(on_time, time_plan, subscriber, nas, spans, plan, moments):
    unit, free, minimum = plan
    time_plan.time_unit, time_plan.free_minutes, time_plan.minimum_session_charge = unit, free, minimum
    time_plan.save()
    results = []
    for schedule in (moments, []):
        with transaction.atomic():
            results.append(_play(subscriber, nas, spans, schedule))
            transaction.set_rollback(True)
    (often, parts_often), (once, parts_once) = results
    assert often == once
    assert parts_often == parts_once
