"""Autopay's rules on their own: the arithmetic (Hypothesis properties), the settings refused at start, the
periodic jobs, and the accounts autopay must leave alone."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from abonent.billing import ledger
from abonent.billing.actions import do_activate_subscription
from abonent.billing.calculations import days_in_month
from abonent.core import clock
from abonent.core.scheduler import registered_jobs
from abonent.payments import actions
from abonent.payments import calculations as calc
from abonent.payments.models import AttemptStatus, AutopayAttempt, AutopayPlan, NoticeKind, PaymentNotice
from abonent.payments.testing import fake_gateway
from abonent.subscribers import actions as subscribers

D = Decimal
money = st.decimals(min_value=-100_000, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
positive = st.decimals(min_value=D("0.01"), max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
days = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31))


@given(money, money, positive, st.one_of(st.none(), positive))
@example(D("650.00"), D("200.50"), D("100.00"), None)
def test_the_cover_amount_is_whole_roubles_within_bounds_and_covers_what_it_can(fees, available, minimum, maximum):
    amount = calc.cover_amount(fees, available, minimum=minimum, maximum=maximum)
    if fees <= available:
        assert amount == 0
        return
    assert amount > 0 or (maximum is not None and maximum < D("0.01"))
    if maximum is not None:
        assert amount <= maximum
    if maximum is None or maximum >= max(fees - available, minimum) + 1:
        assert available + amount >= fees  # covered
        assert amount >= minimum
        assert amount == amount.to_integral_value() or amount == minimum  # whole roubles unless the minimum isn't
        assert amount - (fees - available) < 1 or amount == minimum  # never a rouble more than needed


def test_the_cover_amount_examples():
    assert calc.cover_amount(D("650.00"), D("200.50"), minimum=D("100"), maximum=None) == D("450.00")
    assert calc.cover_amount(D("650.00"), D("600.00"), minimum=D("100"), maximum=None) == D("100.00")
    assert calc.cover_amount(D("650.00"), D("-20000"), minimum=D("100"), maximum=D("15000")) == D("15000.00")
    assert calc.cover_amount(D("650.00"), D("650.00"), minimum=D("100"), maximum=None) == D("0.00")


@given(days, st.integers(min_value=1, max_value=31))
def test_the_debit_day_is_in_the_month_and_clamped_to_its_end(day, debit_day):
    due = calc.cycle_due_on(day, debit_day)
    assert (due.year, due.month) == (day.year, day.month)
    assert due.day == min(debit_day, days_in_month(day))
    following = calc.next_cycle_due_on(due, debit_day)
    assert 28 <= (following - due).days <= 31
    assert following.day == min(debit_day, days_in_month(following))


def test_retries_follow_the_debit_day_and_end():
    due = dt.date(2027, 1, 5)
    assert [calc.retry_on(due, n, [1, 3, 5]) for n in (1, 2, 3, 4)] == [
        dt.date(2027, 1, 6),
        dt.date(2027, 1, 8),
        dt.date(2027, 1, 10),
        None,
    ]
    assert calc.retry_on(due, 1, []) is None


def test_the_low_balance_debit_comes_before_the_first_charge_not_covered():
    today = dt.date(2027, 1, 28)
    fees = [(dt.date(2027, 2, 1), D("650.00"))]
    assert calc.low_balance_debit_day(D("0.00"), fees, today, lead_days=1) == dt.date(2027, 1, 31)
    assert calc.low_balance_debit_day(D("650.00"), fees, today, lead_days=1) is None
    assert calc.low_balance_debit_day(D("-1.00"), [], today, lead_days=1) == today  # short already
    daily = [(today + dt.timedelta(days=i), D("21.00")) for i in range(1, 6)]
    assert calc.low_balance_debit_day(D("50.00"), daily, today, lead_days=1) == dt.date(2027, 1, 30)
    assert calc.low_balance_debit_day(D("0.00"), daily, today, lead_days=3) == today  # never in the past


@pytest.mark.parametrize("value", ["0", "1,1", "3,1", "x", "1,30"])
def test_bad_retry_days_are_refused_at_start(import_settings, value):
    result = import_settings({"ABONENT_AUTOPAY_RETRY_DAYS": value})
    assert result.returncode != 0 and "ABONENT_AUTOPAY_RETRY_DAYS" in result.stderr


@pytest.mark.parametrize(
    "env",
    [
        {"ABONENT_AUTOPAY_MIN_AMOUNT": "abc"},
        {"ABONENT_AUTOPAY_MIN_AMOUNT": "-5"},
        {"ABONENT_AUTOPAY_MAX_AMOUNT": "1.001"},
        {"ABONENT_AUTOPAY_MAX_AMOUNT": "NaN"},
        {"ABONENT_AUTOPAY_MAX_AMOUNT": "0"},
        {"ABONENT_AUTOPAY_MIN_AMOUNT": "500", "ABONENT_AUTOPAY_MAX_AMOUNT": "400"},
        {"ABONENT_AUTOPAY_LEAD_DAYS": "-1"},
        {"ABONENT_AUTOPAY_CATCH_UP_DAYS": "two"},
        {"ABONENT_AUTOPAY_REMINDER_DAYS": "0"},
    ],
)
def test_bad_amounts_and_days_are_refused_at_start(import_settings, env):
    result = import_settings(env)
    assert result.returncode != 0 and "ABONENT_AUTOPAY_" in result.stderr


def test_a_bad_run_time_is_refused_at_start(import_settings):
    result = import_settings({"ABONENT_AUTOPAY_RUN_AT": "25:00"})
    assert result.returncode != 0 and "ABONENT_AUTOPAY_RUN_AT" in result.stderr


def test_good_settings_are_read(import_settings):
    result = import_settings({"ABONENT_AUTOPAY_RETRY_DAYS": "2,4", "ABONENT_AUTOPAY_RUN_AT": "09:30"})
    assert result.returncode == 0, result.stderr


def test_the_jobs_are_registered():
    jobs = registered_jobs()
    assert jobs["payments.autopay"].daily_at == dt.time(10, 0)
    assert jobs["payments.autopay_follow_up"].every == dt.timedelta(minutes=15)


@pytest.mark.django_db
def test_a_closed_account_is_not_debited_and_its_autopay_stops(subscriber, make_plan, admin):
    plan = make_plan("internet-100", "650.00")
    with fake_gateway() as fake, clock.travel_to(dt.datetime(2027, 1, 1, 9)):
        do_activate_subscription(subscriber, plan=plan, acting_user=admin)  # balance −650
        method = actions.do_link_method(
            subscriber,
            provider="fakepay",
            method_id="pm-1",
            method_type="bank_card",
            title="Card",
            consent_text="yes",
            consented_at=clock.now(),
            consent_source="portal",
        )
        actions.do_enable_autopay(subscriber, method=method, debit_day=5, acting_user=admin)
        subscribers.do_close_subscriber(subscriber, reason="moved", acting_user=admin)
        with clock.travel_to(dt.datetime(2027, 1, 5, 10)):
            actions.do_run_autopay()
    assert fake.charges() == [] and AutopayAttempt.objects.count() == 0
    assert not AutopayPlan.objects.get().enabled
    assert PaymentNotice.objects.filter(kind=NoticeKind.AUTOPAY_STOPPED).count() == 1
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_gateway_no_longer_configured_fails_the_try_without_charging(subscriber, make_plan, admin):
    plan = make_plan("internet-100", "650.00")
    with fake_gateway(), clock.travel_to(dt.datetime(2027, 1, 1, 9)):
        do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        method = actions.do_link_method(
            subscriber,
            provider="fakepay",
            method_id="pm-1",
            method_type="bank_card",
            title="Card",
            consent_text="yes",
            consented_at=clock.now(),
            consent_source="portal",
        )
        actions.do_enable_autopay(subscriber, method=method, debit_day=5, acting_user=admin)
    # The operator removed the gateway's configuration.
    with clock.travel_to(dt.datetime(2027, 1, 5, 10)):
        actions.do_run_autopay()
    attempt = AutopayAttempt.objects.get()
    assert attempt.status == AttemptStatus.FAILED and "fakepay" in attempt.error


@pytest.mark.django_db
def test_the_outbox_is_drained_oldest_first_and_a_notice_is_queued_once(subscriber, make_subscriber):
    from abonent.payments.selectors.autopay import undelivered_notices

    other = make_subscriber(last_name="Петров")
    with clock.travel_to(dt.datetime(2027, 1, 2, 10)):
        actions.queue_notice(NoticeKind.AUTOPAY_REMINDER, subscriber.pk, "r:1", amount=D("650.00"))
    with clock.travel_to(dt.datetime(2027, 1, 2, 11)):
        actions.queue_notice(NoticeKind.AUTOPAY_REMINDER, other.pk, "r:2", due_on=dt.date(2027, 1, 5))
        actions.queue_notice(NoticeKind.AUTOPAY_REMINDER, subscriber.pk, "r:1", amount=D("999.00"))  # a rerun
    queued = undelivered_notices()
    assert [(n.dedup_key, n.payload) for n in queued] == [
        ("r:1", {"amount": "650.00"}),
        ("r:2", {"due_on": "2027-01-05"}),
    ]
    assert actions.do_mark_notices_delivered([queued[0].pk]) == 1
    assert actions.do_mark_notices_delivered([queued[0].pk, queued[1].pk]) == 1
    assert undelivered_notices() == []


def test_the_daily_run_reads_only_the_plans_whose_debit_day_is_near():
    from abonent.payments.actions.autopay_run import _days_in_play

    assert _days_in_play(dt.date(2027, 1, 2)) == {31, 1, 2, 3, 4, 5}
    # 28 February: plans on the 29th–31st debit today; those on 1–3 March get their reminder.
    assert _days_in_play(dt.date(2027, 2, 28)) == {26, 27, 28, 29, 30, 31, 1, 2, 3}
