"""Attack review of time rating (pay-as-you-go plans): each test states the correct behaviour and fails today."""

import datetime as dt

from abonent.billing import actions
from abonent.billing.ledger import verify
from abonent.billing.models import Charge, ChargeKind
from abonent.billing.rating.time_budget import TimeBudget, seconds_left
from abonent.billing.testing import balance
from abonent.core import clock
from abonent.network.accounting import INTERIM, START, STOP, AcctRecord, sweep_stale_sessions, write_batch
from abonent.network.models import Session

from .time_helpers import D, local, rate, session, time_charges


def _acct(nas, subscriber, status, at, seconds, **fields):
    return AcctRecord(
        status=status,
        nas_id=nas.pk,
        event_time=at,
        unique_id="hotspot-1",
        acct_session_id="81000001",
        username=f"user{subscriber.pk}",
        subscriber_id=subscriber.pk,
        session_time=seconds,
        **fields,
    )


def _time_total(subscription, day=None):
    charges = Charge.objects.filter(subscription=subscription, kind=ChargeKind.TIME)
    if day is not None:
        charges = charges.filter(period_start=day)
    return sum(charges.values_list("amount", flat=True), D("0"))


# --- money created: the same day charged twice ------------------------------------------------------------------


def test_started_at_moving_back_one_second_does_not_charge_the_rated_day_again(on_time, subscriber, nas):
    """accounting.py:419 keeps ``started_at = min(started_at, event_time - session_time)``: a NAS whose session
    counter runs one second ahead of the server clock moves the start back by a second. The day already rated
    up to midnight (part keyed by the old start) must not be charged a second time."""
    start = local(2026, 11, 20, 23, 0)
    with clock.travel_to(start):
        write_batch([_acct(nas, subscriber, START, start, 0)])
    with clock.travel_to(local(2026, 11, 21, 1, 0)):
        write_batch([_acct(nas, subscriber, INTERIM, local(2026, 11, 21, 1, 0), 7200)])
    rate(local(2026, 11, 21, 1, 0, 30))
    assert _time_total(on_time, dt.date(2026, 11, 20)) == D("60.00")
    # The next interim: the NAS counts one second more than the wall clock did.
    with clock.travel_to(local(2026, 11, 21, 1, 30)):
        write_batch([_acct(nas, subscriber, INTERIM, local(2026, 11, 21, 1, 30), 9001)])
    assert Session.objects.get().started_at == local(2026, 11, 20, 22, 59, 59)
    rate(local(2026, 11, 21, 2, 0))
    # 60 min + 1 s on the 20th: at most one more started minute, never the whole evening again.
    assert _time_total(on_time, dt.date(2026, 11, 20)) <= D("61.00")
    assert verify() == []


def test_a_monthly_subscriber_moving_to_a_time_plan_pays_no_time_for_the_days_before(
    subscribed, subscriber, nas, time_plan, admin
):
    """Plan change is in place (plan_changes.py:176): the subscription's started_on stays 1 November, so rating
    (time.py:103, _subscription_for by started_on) prices every unrated session of the last 62 days, used under the
    monthly plan whose fee was paid, by the minute."""
    for day in range(2, 6):  # four evenings online on the monthly plan, December already paid
        session(nas, subscriber, local(2026, 12, day, 19, 0), local(2026, 12, day, 23, 0))
    before = balance(subscriber)
    with clock.travel_to(local(2026, 12, 6, 12, 0)):
        actions.do_change_plan(subscribed, plan=time_plan, acting_user=admin, force=True)
    after_change = balance(subscriber)
    rate(local(2026, 12, 6, 12, 5))
    assert time_charges(subscribed) == []
    assert balance(subscriber) == after_change
    assert before - after_change < D("100.00")  # only the plan change's own proration, not 960 minutes


# --- money lost: time online never charged ----------------------------------------------------------------------


def test_a_late_stop_after_the_sweeper_closed_the_session_is_charged(on_time, subscriber, nas):
    """The sweeper closes a quiet session at its last update (accounting.py:507); rating marks it final within
    minutes. A spooled Stop arriving later extends it (accounting.py:433-435), but rating never reads a final
    session again (time.py:133), so the rest of the hour online is free."""
    start = local(2026, 11, 10, 10, 0)
    with clock.travel_to(start):
        write_batch([_acct(nas, subscriber, START, start, 0)])
    with clock.travel_to(start + dt.timedelta(minutes=5)):
        write_batch([_acct(nas, subscriber, INTERIM, start + dt.timedelta(minutes=5), 300)])
    with clock.travel_to(start + dt.timedelta(hours=3)):
        assert sweep_stale_sessions() == 1
    rate(start + dt.timedelta(hours=3, minutes=1))
    assert _time_total(on_time) == D("5.00")
    # The accounting spool delivers the real Stop: online for an hour.
    with clock.travel_to(start + dt.timedelta(hours=3, minutes=2)):
        write_batch([_acct(nas, subscriber, STOP, start + dt.timedelta(hours=1), 3600, terminate_cause="User-Request")])
    assert Session.objects.get().stopped_at == start + dt.timedelta(hours=1)
    rate(start + dt.timedelta(hours=3, minutes=5))
    assert _time_total(on_time) == D("60.00")
    assert balance(subscriber) == D("440.00")


def test_a_session_open_for_more_than_31_days_is_still_charged(on_time, subscriber, nas):
    """A session rated day by day for 31 days becomes "absurd duration" on day 32; _problem is checked before
    anything else and, since parts are rated, rate_session just returns (time.py:249-253): every later day is free,
    forever, and the session is never final."""
    start = local(2026, 11, 1, 12, 0)
    live = session(nas, subscriber, start, None, seconds=0)
    for days in range(1, 33):
        moment = start + dt.timedelta(days=days)
        Session.objects.filter(pk=live.pk).update(session_time=days * 86400, updated_at=moment)
        rate(moment + dt.timedelta(minutes=1))
    charged_days = set(
        Charge.objects.filter(subscription=on_time, kind=ChargeKind.TIME).values_list("period_start", flat=True)
    )
    # Every local day up to the last midnight passed (2 December) is charged.
    assert dt.date(2026, 12, 2) in charged_days
    assert len(charged_days) == 32


def test_switching_a_time_plan_to_monthly_in_the_evening_still_charges_the_day_online(
    on_time, subscriber, nas, monthly, admin
):
    """Docs: the plan in force when rating runs decides, "this is a few minutes at most". But the current day of an
    open session is rated only at its stop or at midnight (time.py:268), and after the change the subscription is
    skipped (time.py:178): a subscriber online on the time plan since 08:00 who switches at 22:00 never pays
    those 14 hours."""
    live = session(nas, subscriber, local(2026, 11, 10, 8, 0), None, seconds=0)
    for hour in range(9, 23):
        Session.objects.filter(pk=live.pk).update(
            session_time=(hour - 8) * 3600, updated_at=local(2026, 11, 10, hour, 0)
        )
        rate(local(2026, 11, 10, hour, 0, 30))
    with clock.travel_to(local(2026, 11, 10, 22, 1)):
        actions.do_change_plan(on_time, plan=monthly, acting_user=admin, force=True)
    Session.objects.filter(pk=live.pk).update(
        status="closed", stopped_at=local(2026, 11, 10, 22, 5), session_time=14 * 3600 + 300
    )
    rate(local(2026, 11, 10, 22, 10))
    rate(local(2026, 11, 11, 0, 10))
    assert _time_total(on_time) >= D("840.00")  # 14 hours at 1.00 a minute, used on the time plan


# --- Session-Timeout over-promising -----------------------------------------------------------------------------


def test_seconds_left_counts_the_minimum_charge_of_a_session_not_rated_yet():
    """A 1-minute session with a 15.00 minimum, closed but not rated yet, will cost 15.00. seconds_left
    (time_budget.py:54) takes off only its started minute (1.00): with 20.00 the next session is allowed 19 minutes,
    while only 5.00 is really left — less than the minimum, so the answer must be 0 (reject)."""
    budget = TimeBudget(
        money_cents=2000, package_seconds=0, unit_seconds=60, unit_price_cents=100, free_seconds=0,
        minimum_cents=1500, pending=((0.0, 60.0),),
    )  # fmt: skip
    assert seconds_left(budget, 100) == 0


def test_seconds_left_rounds_each_pending_session_up_on_its_own():
    """Two sessions of 30 s each, not rated yet, are two started minutes (2.00): rating rounds per session. The
    budget sums the seconds of all pending sessions first (time_budget.py:48-54) and takes off one minute."""
    budget = TimeBudget(
        money_cents=300, package_seconds=0, unit_seconds=60, unit_price_cents=100, free_seconds=0,
        minimum_cents=0, pending=((0.0, 30.0), (100.0, 130.0)),
    )  # fmt: skip
    assert seconds_left(budget, 200) == 60  # 3.00 − 2.00 buys one minute


def test_home_sessions_of_a_subscriber_who_also_has_hotspot_time_are_not_charged_by_the_minute(
    subscribed, subscriber, nas, make_plan, admin
):
    """One subscription per service: a home subscriber (monthly internet, paid) may also take Wi-Fi by time on a
    hotspot service. Rating picks sessions by subscriber only (time.py:136, _subscription_for by date), not by the
    login's subscription, so every home PPPoE session is charged per minute on top of the monthly fee (and
    time_budget._pending counts them against the hotspot budget)."""
    from abonent.catalog import actions as catalog
    from abonent.network import actions as network
    from abonent.network.models import LoginKind

    hotspot = catalog.do_create_service(code="hotspot", name="Hotspot", kind="internet", acting_user=admin)
    wifi = make_plan("wifi-m", "0.00", service=hotspot, charge_mode="time", time_unit="minute", unit_price=D("1.00"))
    with clock.travel_to(dt.date(2026, 12, 1)):
        actions.do_activate_subscription(subscriber, plan=wifi, acting_user=admin)
    home = network.do_create_login(
        subscriber, acting_user=admin, kind=LoginKind.PPPOE, username="home-1", password="pw-home-1",
        subscription=subscribed,
    )  # fmt: skip
    session(nas, subscriber, local(2026, 12, 2, 19, 0), local(2026, 12, 2, 23, 0), login=home, username="home-1")
    before = balance(subscriber)
    rate(local(2026, 12, 3, 0, 5))
    assert Charge.objects.filter(kind=ChargeKind.TIME).count() == 0
    assert balance(subscriber) == before


def test_with_a_package_the_charges_do_not_depend_on_when_rating_ran(on_time, time_plan, subscriber, nas, admin):
    """Docs: "Rating any number of times, at any moments, gives the same charges as rating once after everything
    stopped". The property test has no packages. Two overlapping sessions (simultaneous_use 2) and a 60-minute
    package, minimum 15.00: a pass at 10:45 rates the short session B first (all from the package, no minimum),
    then A pays 70 min; rated once at the end, A (earlier start) takes the package and B pays the 15.00 minimum.
    Packages go to sessions in the order passes happen to see them closed (time.py:186)."""
    from django.db import transaction

    from abonent.catalog import actions as catalog

    time_plan.minimum_session_charge = D("15.00")
    time_plan.save()
    package = catalog.do_create_time_package(
        code="hour", name="Час", seconds=3600, validity_days=30, price="0.00", plans=[time_plan], acting_user=admin
    )
    with clock.travel_to(local(2026, 11, 10, 9, 0)):
        actions.do_buy_time_package(on_time, package=package, acting_user=admin)

    def play(passes):
        a = session(nas, subscriber, local(2026, 11, 10, 10, 0), None, seconds=45 * 60)
        session(nas, subscriber, local(2026, 11, 10, 10, 30), local(2026, 11, 10, 10, 40))
        for at in passes:
            rate(at)
        Session.objects.filter(pk=a.pk).update(
            status="closed", stopped_at=local(2026, 11, 10, 12, 0), session_time=7200
        )
        rate(local(2026, 11, 10, 12, 5))
        return _time_total(on_time)

    results = []
    for passes in ([local(2026, 11, 10, 10, 45)], []):
        with transaction.atomic():
            results.append(play(passes))
            transaction.set_rollback(True)
    often, once = results
    assert often == once


def test_seconds_left_with_a_package_does_not_sell_money_minutes_below_the_minimum_charge():
    """Package 10 min, money 5.00, minimum 15.00: once the package runs out mid-session the paid time costs at
    least 15.00 (the minimum falls on the part where paid time begins). seconds_left checks the minimum only when
    no package time is left (time_budget.py:56), so it promises 10 + 5 minutes and the session ends at −10.00."""
    budget = TimeBudget(
        money_cents=500, package_seconds=600, unit_seconds=60, unit_price_cents=100, free_seconds=0,
        minimum_cents=1500, pending=(),
    )  # fmt: skip
    assert seconds_left(budget, 0) == 600
