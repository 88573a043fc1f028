"""Time rating: sessions of subscribers on time plans charged per started unit, split at local midnight (and so
at every billing period boundary), each part at its day's price, exactly once."""

import datetime as dt
import logging

import pytest

from abonent.billing import actions
from abonent.billing.ledger import verify
from abonent.billing.models import Charge, LedgerTransaction, TimeRating, TransactionKind
from abonent.billing.testing import balance, run_on
from abonent.catalog import actions as catalog
from abonent.core import clock

from .time_helpers import D, local, rate, session, time_charges


def test_a_session_across_midnight_and_a_period_boundary_is_two_charges_on_two_days(on_time, subscriber, nas):
    # 23:50 on 30 November to 00:20 on 1 December: the calendar period ends at midnight.
    session(nas, subscriber, local(2026, 11, 30, 23, 50), local(2026, 12, 1, 0, 20))
    result = rate(local(2026, 12, 1, 0, 25))
    assert (result.parts, result.charges, result.amount) == (2, 2, D("30.00"))
    assert time_charges(on_time) == [(dt.date(2026, 11, 30), D("10.00"), 600), (dt.date(2026, 12, 1), D("20.00"), 1200)]
    assert balance(subscriber) == D("470.00")
    txs = LedgerTransaction.objects.filter(kind=TransactionKind.TIME).order_by("effective_date")
    assert [t.effective_date for t in txs] == [dt.date(2026, 11, 30), dt.date(2026, 12, 1)]
    assert [sorted(p.amount for p in t.postings.all()) for t in txs] == [
        [D("-10.00"), D("10.00")],
        [D("-20.00"), D("20.00")],
    ]
    assert verify() == []


def test_rating_again_charges_nothing_more(on_time, subscriber, nas):
    session(nas, subscriber, local(2026, 11, 30, 23, 50), local(2026, 12, 1, 0, 20))
    rate(local(2026, 12, 1, 0, 25))
    again = rate(local(2026, 12, 1, 0, 30))
    later = rate(local(2026, 12, 20, 0, 0))
    assert (again.parts, again.charges, later.parts) == (0, 0, 0)
    assert balance(subscriber) == D("470.00")
    assert TimeRating.objects.count() == 2


def test_a_price_change_at_midnight_prices_each_day_with_its_own(on_time, time_plan, subscriber, nas, admin):
    with clock.travel_to(dt.date(2026, 11, 20)):
        catalog.do_add_plan_price(
            time_plan, valid_from=dt.date(2026, 11, 22), monthly_fee=D("0"), unit_price=D("2.50"), acting_user=admin
        )
    session(nas, subscriber, local(2026, 11, 21, 23, 55), local(2026, 11, 22, 0, 3))
    rate(local(2026, 11, 22, 1, 0))
    assert time_charges(on_time) == [(dt.date(2026, 11, 21), D("5.00"), 300), (dt.date(2026, 11, 22), D("7.50"), 180)]


def test_a_unit_started_before_midnight_is_charged_once(on_time, subscriber, nas):
    # 90 s before midnight and 30 s after: two started minutes over the session, the second begun on the first day.
    session(nas, subscriber, local(2026, 11, 21, 23, 58, 30), local(2026, 11, 22, 0, 0, 30))
    rate(local(2026, 11, 22, 1, 0))
    assert time_charges(on_time) == [(dt.date(2026, 11, 21), D("2.00"), 90)]
    part = TimeRating.objects.get(day=dt.date(2026, 11, 22))
    assert (part.seconds, part.money_seconds, part.units, part.amount, part.charge_id) == (30, 30, 0, D("0.00"), None)


def test_free_minutes_come_off_the_start_of_each_session(on_time, time_plan, subscriber, nas):
    time_plan.free_minutes = 5
    time_plan.save()
    session(nas, subscriber, local(2026, 11, 10, 12, 0), local(2026, 11, 10, 12, 4, 59))  # all free
    session(nas, subscriber, local(2026, 11, 10, 13, 0), local(2026, 11, 10, 13, 7, 1))  # 2 min 1 s paid: 3 units
    # Free minutes span midnight: the second day pays only past them.
    session(nas, subscriber, local(2026, 11, 10, 23, 58), local(2026, 11, 11, 0, 10))
    rate(local(2026, 11, 11, 1, 0))
    assert time_charges(on_time) == [(dt.date(2026, 11, 10), D("3.00"), 421), (dt.date(2026, 11, 11), D("7.00"), 600)]
    assert TimeRating.objects.filter(amount=0, day=dt.date(2026, 11, 10)).count() == 2


def test_the_minimum_charge_applies_once_where_the_paid_time_begins(on_time, time_plan, subscriber, nas):
    time_plan.minimum_session_charge = D("15.00")
    time_plan.save()
    session(nas, subscriber, local(2026, 11, 10, 12, 0), local(2026, 11, 10, 12, 3))  # 3.00 → 15.00
    session(nas, subscriber, local(2026, 11, 10, 14, 0), local(2026, 11, 10, 14, 20))  # 20.00 stays
    session(nas, subscriber, local(2026, 11, 10, 23, 58), local(2026, 11, 11, 0, 2))  # 2.00 → 15.00, then 2.00
    rate(local(2026, 11, 11, 1, 0))
    assert [c[1] for c in time_charges(on_time)] == [D("15.00"), D("20.00"), D("15.00"), D("2.00")]


def test_per_started_hour(make_plan, subscriber, nas, admin):
    plan = make_plan("wifi-hour", "0", charge_mode="time", time_unit="hour", unit_price=D("30.00"))
    with clock.travel_to(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    session(nas, subscriber, local(2026, 11, 10, 10, 0), local(2026, 11, 10, 11, 0, 1))  # 2 started hours
    session(nas, subscriber, local(2026, 11, 10, 12, 0), local(2026, 11, 10, 12, 1))  # 1
    rate(local(2026, 11, 10, 13, 0))
    assert [c[1] for c in time_charges(subscription)] == [D("60.00"), D("30.00")]
    assert balance(subscriber) == D("-90.00")


def test_an_open_session_is_charged_up_to_each_midnight_it_lasted_past(on_time, subscriber, nas):
    started = local(2026, 11, 30, 22, 0)
    live = session(nas, subscriber, started, None, seconds=3 * 3600)  # last interim at 01:00 on 1 December
    rate(local(2026, 11, 30, 23, 30))
    assert time_charges(on_time) == []
    rate(local(2026, 12, 1, 1, 0))
    assert time_charges(on_time) == [(dt.date(2026, 11, 30), D("120.00"), 7200)]
    # It stops at 02:00: the rest is charged on the new period's day, nothing twice.
    live.status, live.stopped_at, live.session_time = "closed", local(2026, 12, 1, 2, 0), 4 * 3600
    live.save()
    rate(local(2026, 12, 1, 2, 5))
    assert time_charges(on_time) == [
        (dt.date(2026, 11, 30), D("120.00"), 7200),
        (dt.date(2026, 12, 1), D("120.00"), 7200),
    ]
    assert balance(subscriber) == D("260.00")


def test_the_billing_run_charges_no_fee_for_a_time_plan(on_time, subscriber):
    result = run_on(dt.date(2026, 12, 1))
    assert result.parked == []
    assert Charge.objects.filter(subscription=on_time).count() == 0
    on_time.refresh_from_db()
    assert on_time.next_charge_on == dt.date(2027, 1, 1)
    assert balance(subscriber) == D("500.00")


@pytest.mark.parametrize(
    ("start", "end", "seconds", "why"),
    [
        (local(2026, 11, 10, 12, 0), local(2026, 11, 10, 11, 0), 60, "stopped before it started"),
        (local(2026, 11, 10, 12, 0), local(2026, 11, 10, 12, 5), -300, "negative duration"),
        (local(2026, 11, 1, 12, 0), local(2026, 12, 5, 12, 0), None, "absurd duration"),
        (local(2026, 11, 10, 12, 0), local(2026, 11, 12, 12, 0), None, "in the future"),
        (local(2026, 11, 10, 12, 0), local(2030, 1, 1, 0, 0), None, "absurd duration"),
    ],
)
def test_a_broken_session_is_skipped_with_its_reason_once(on_time, subscriber, nas, caplog, start, end, seconds, why):
    broken = session(nas, subscriber, start, end, seconds=seconds)
    session(nas, subscriber, local(2026, 11, 10, 15, 0), local(2026, 11, 10, 15, 10))
    with caplog.at_level(logging.WARNING, logger="abonent.billing.rating.time"):
        first = rate(local(2026, 11, 10, 16, 0))
    assert first.skipped == [(broken.pk, why)]
    assert why in caplog.text
    assert time_charges(on_time) == [(dt.date(2026, 11, 10), D("10.00"), 600)]
    assert rate(local(2026, 11, 10, 16, 5)).skipped == []
    assert TimeRating.objects.get(session_id=broken.pk).skipped == why


def test_other_plans_sessions_are_not_rated(subscribed, subscriber, nas):
    session(nas, subscriber, local(2026, 12, 2, 12, 0), local(2026, 12, 2, 13, 0))
    assert rate(local(2026, 12, 2, 14, 0)).parts == 0
    assert TimeRating.objects.count() == 0


def test_a_time_plan_needs_a_unit_price(make_plan):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        make_plan("wifi-free", "0", charge_mode="time")
    assert caught.value.error_dict["unit_price"][0].code == "required"
    with pytest.raises(ValidationError) as caught:
        make_plan("wifi-neg", "0", charge_mode="time", unit_price=D("-1.00"))
    assert caught.value.error_dict["unit_price"][0].code == "amount_negative"


def test_the_rate_time_command_prints_what_it_did(on_time, subscriber, nas):
    import io
    import json

    from django.core.management import call_command

    session(nas, subscriber, local(2026, 11, 10, 12, 0), local(2026, 11, 10, 12, 30))
    out = io.StringIO()
    with clock.travel_to(local(2026, 11, 10, 13, 0)):
        call_command("rate_time", stdout=out)
    assert json.loads(out.getvalue()) == {
        "parts": 1,
        "charges": 1,
        "amount": "30.00",
        "package_seconds": 0,
        "skipped": 0,
    }
    assert balance(subscriber) == D("470.00")
