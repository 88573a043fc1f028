"""Subscribers walked through months with a movable clock, with the exact amounts an operator would check."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from abonent.billing import actions, selectors
from abonent.billing.engine import BillingRun
from abonent.billing.ledger import verify
from abonent.billing.models import Charge, ChargeKind, LedgerTransaction, PromisedPayment, Subscription
from abonent.billing.testing import balance, run_on

D = Decimal


def fees(subscription) -> list[tuple[dt.date, Decimal]]:
    return list(
        Charge.objects.filter(subscription=subscription, kind=ChargeKind.FEE)
        .order_by("period_start")
        .values_list("period_start", "amount")
    )


def assert_no_more_to_bill(day):
    assert run_on(day).charges == 0
    assert verify() == []


def test_internet_100_monthly_650(make_plan, subscriber, admin, on):
    plan = make_plan("internet-100", "650.00", name="Интернет-100")
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    assert fees(subscription) == [(dt.date(2026, 11, 1), D("650.00"))]
    assert balance(subscriber) == D("-650.00")
    assert_no_more_to_bill(dt.date(2026, 11, 30))
    run_on(dt.date(2026, 12, 1))
    run_on(dt.date(2027, 1, 1))
    assert [a for _d, a in fees(subscription)] == [D("650.00")] * 3
    assert balance(subscriber) == D("-1950.00")
    assert_no_more_to_bill(dt.date(2027, 1, 31))


def test_activation_mid_month_charges_the_rest_of_the_month(make_plan, subscriber, admin, on):
    plan = make_plan("internet-100", "650.00")
    with on(dt.date(2026, 11, 15)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    charge = Charge.objects.get(subscription=subscription)
    # 16 of November's 30 days: 650 × 16 / 30 = 346.666… → 346.67
    assert (charge.amount, charge.proration_numerator, charge.proration_denominator) == (D("346.67"), 16, 30)
    run_on(dt.date(2026, 12, 1))
    assert balance(subscriber) == D("-996.67")


@pytest.mark.parametrize(
    ("month", "days"),
    [(dt.date(2026, 11, 1), 30), (dt.date(2026, 12, 1), 31), (dt.date(2027, 2, 1), 28), (dt.date(2028, 2, 1), 29)],
)
def test_daily_charges_of_a_month_add_up_to_the_fee_exactly(make_plan, subscriber, admin, on, month, days):
    plan = make_plan("internet-100-daily", "650.00", charge_mode="daily")
    with on(month):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    for offset in range(days):
        run_on(month + dt.timedelta(days=offset))
    amounts = [a for _d, a in fees(subscription)]
    assert len(amounts) == days
    assert sum(amounts) == D("650.00")
    assert max(amounts) - min(amounts) <= D("0.01")
    assert balance(subscriber) == D("-650.00")
    assert_no_more_to_bill(month + dt.timedelta(days=days - 1))


def test_missed_days_are_caught_up_with_the_same_amounts(make_plan, make_subscriber, admin, on):
    plan = make_plan("daily", "650.00", charge_mode="daily")
    daily_run, catch_up = make_subscriber(phone="+79161110001"), make_subscriber(phone="+79161110002")
    with on(dt.date(2026, 12, 1)):
        a = actions.do_activate_subscription(daily_run, plan=plan, acting_user=admin)
        b = actions.do_activate_subscription(catch_up, plan=plan, acting_user=admin)
    for day in range(2, 11):
        with on(dt.date(2026, 12, day)):
            BillingRun(dt.date(2026, 12, day)).charge_subscriptions([a.pk])
    run_on(dt.date(2026, 12, 10))  # the worker was down for nine days; b catches up in one run
    assert fees(a) == fees(b)
    assert balance(daily_run) == balance(catch_up) == D("-209.68")  # 650 × 10 / 31, cumulatively rounded


def test_upgrade_domashniy_to_igrovoy_mid_month(make_plan, subscriber, admin, on):
    home = make_plan("domashniy", "500.00", name="Домашний")
    gamer = make_plan("igrovoy", "900.00", name="Игровой", download_kbps=500_000)
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=home, acting_user=admin)
    with on(dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)):
        preview = selectors.preview_plan_change(subscription, gamer)
        # 15 of 30 days unused: credit 500 × 15/30 = 250.00, charge 900 × 15/30 = 450.00
        assert (preview.immediate, preview.credit, preview.charge, preview.net) == (
            True,
            D("250.00"),
            D("450.00"),
            D("200.00"),
        )
        actions.do_change_plan(subscription, plan=gamer, acting_user=admin)
    subscription.refresh_from_db()
    assert subscription.plan == gamer
    assert balance(subscriber) == D("-700.00")  # −500 −450 +250
    assert balance(subscriber) == preview.balance_after
    run_on(dt.date(2026, 12, 1))
    assert fees(subscription)[-1] == (dt.date(2026, 12, 1), D("900.00"))
    assert_no_more_to_bill(dt.date(2026, 12, 1))


def test_upgrade_then_same_day_downgrade_nets_to_zero(make_plan, subscriber, admin, on):
    home = make_plan("domashniy", "500.00")
    gamer = make_plan("igrovoy", "900.00")
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=home, acting_user=admin)
    with on(dt.date(2026, 11, 16)):
        actions.do_change_plan(subscription, plan=gamer, acting_user=admin)
        actions.do_change_plan(subscription, plan=home, acting_user=admin, force=True)
    assert balance(subscriber) == D("-500.00")


def test_downgrade_waits_for_the_next_period(make_plan, subscriber, admin, on):
    home = make_plan("domashniy", "500.00")
    gamer = make_plan("igrovoy", "900.00")
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=gamer, acting_user=admin)
    with on(dt.date(2026, 11, 20)):
        actions.do_change_plan(subscription, plan=home, acting_user=admin)
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.pending_plan, subscription.pending_plan_from) == (
        gamer,
        home,
        dt.date(2026, 12, 1),
    )
    assert balance(subscriber) == D("-900.00")
    run_on(dt.date(2026, 12, 1))
    subscription.refresh_from_db()
    assert subscription.plan == home and subscription.pending_plan is None
    assert fees(subscription)[-1] == (dt.date(2026, 12, 1), D("500.00"))


def test_freeze_for_10_days(make_plan, subscriber, admin, on, freeze_policy):
    plan = make_plan("internet-100", "650.00", freeze_policy=freeze_policy)
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        actions.do_adjust_balance(subscriber, amount="1000.00", reason="opening balance", acting_user=admin)
    with on(dt.date(2026, 11, 11)):
        actions.do_freeze_subscription(subscription, days=10, acting_user=admin)
    # 20 unused days of 30 returned (433.33), 10 days × 3 ₽ freeze fee.
    assert balance(subscriber) == D("1000.00") - D("650.00") + D("433.33") - D("30.00")
    assert run_on(dt.date(2026, 11, 15)).charges == 0  # frozen: nothing charged
    with on(dt.date(2026, 11, 21)):
        assert actions.do_finish_due_freezes() == 1
    subscription.refresh_from_db()
    assert subscription.status == "active"
    # Back on the 21st: 10 of 30 days, 650 × 10/30 = 216.67
    assert fees(subscription)[-1] == (dt.date(2026, 11, 21), D("216.67"))
    assert balance(subscriber) == D("536.66")
    run_on(dt.date(2026, 12, 1))
    assert balance(subscriber) == D("-113.34")
    assert_no_more_to_bill(dt.date(2026, 12, 1))


def test_freeze_beyond_the_policy_writes_nothing(make_plan, subscriber, admin, on, freeze_policy):
    plan = make_plan("internet-100", "650.00", freeze_policy=freeze_policy)
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        actions.do_post_payment(subscriber, amount="1000.00", channel="cash", external_id="1")
    before = (balance(subscriber), LedgerTransaction.objects.count())
    with on(dt.date(2026, 11, 2)), pytest.raises(ValidationError) as too_long:
        actions.do_freeze_subscription(subscription, days=61, acting_user=admin)
    assert too_long.value.error_dict["days"][0].code == "freeze_days_out_of_range"
    assert (balance(subscriber), LedgerTransaction.objects.count()) == before
    with on(dt.date(2026, 11, 2)):
        actions.do_freeze_subscription(subscription, days=20, acting_user=admin)
    run_on(dt.date(2026, 11, 22))  # the freeze runs out, fees resume
    after_first = (balance(subscriber), LedgerTransaction.objects.count())
    with on(dt.date(2026, 11, 23)), pytest.raises(ValidationError) as quota:
        actions.do_freeze_subscription(subscription, days=11, acting_user=admin)  # 20 + 11 > 30 a year
    assert quota.value.error_dict["days"][0].code == "freeze_quota_exceeded"
    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert (balance(subscriber), LedgerTransaction.objects.count()) == after_first


def test_promised_payment_taken_and_repaid_by_the_next_payment(make_plan, subscriber, admin, on, promised_policy):
    plan = make_plan("internet-100", "650.00", promised_payment_policy=promised_policy)
    with on(dt.date(2026, 11, 1)):
        actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        actions.do_post_payment(subscriber, amount="400.00", channel="cash", external_id="1")
    assert balance(subscriber) == D("-250.00")
    with on(dt.date(2026, 11, 5)):
        promised = actions.do_take_promised_payment(subscriber, acting_user=admin)
    assert (promised.amount, promised.due_on) == (D("500.00"), dt.date(2026, 11, 8))
    assert balance(subscriber) == D("250.00")
    with on(dt.date(2026, 11, 6)):
        actions.do_post_payment(subscriber, amount="1000.00", channel="cash", external_id="2")
    promised.refresh_from_db()
    assert promised.status == "repaid"
    assert balance(subscriber) == D("750.00")  # 250 + 1000 − 500 returned
    assert verify() == []


def test_promised_payment_expires_unpaid(make_plan, subscriber, admin, on, promised_policy):
    plan = make_plan("internet-100", "650.00", promised_payment_policy=promised_policy)
    with on(dt.date(2026, 11, 1)):
        actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        actions.do_post_payment(subscriber, amount="500.00", channel="cash", external_id="1")
    with on(dt.date(2026, 11, 5)):
        actions.do_take_promised_payment(subscriber, acting_user=admin, amount="200.00")
    with on(dt.date(2026, 11, 8)):
        assert actions.do_expire_promised_payments() == 0  # the 8th is still its last day
    with on(dt.date(2026, 11, 9)):
        assert actions.do_expire_promised_payments() == 1
    assert PromisedPayment.objects.get().status == "expired"
    assert balance(subscriber) == D("-150.00")


def test_promised_payment_beyond_the_policy_writes_nothing(make_plan, subscriber, admin, on, promised_policy):
    plan = make_plan("internet-100", "650.00", promised_payment_policy=promised_policy)
    with on(dt.date(2026, 11, 1)):
        actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    count = LedgerTransaction.objects.count()
    with on(dt.date(2026, 11, 2)):
        with pytest.raises(ValidationError) as too_much:
            actions.do_take_promised_payment(subscriber, acting_user=admin, amount="501.00")
        assert too_much.value.error_dict["amount"][0].code == "promised_amount_too_large"
        with pytest.raises(ValidationError) as in_debt:  # owes 650, the policy allows up to 300
            actions.do_take_promised_payment(subscriber, acting_user=admin)
        assert in_debt.value.code == "promised_debt_too_large"
    assert LedgerTransaction.objects.count() == count
    assert not PromisedPayment.objects.exists()


def test_change_to_a_plan_not_offered_is_refused(make_plan, subscriber, admin, on, internet):
    plan = make_plan("home", "500.00")
    hidden = make_plan("corporate", "5000.00", is_public=False)
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        with pytest.raises(ValidationError) as refused:
            actions.do_change_plan(subscription, plan=hidden, acting_user=admin)
    assert refused.value.error_dict["plan"][0].code == "plan_not_offered"
    assert Subscription.objects.get().plan == plan


@pytest.mark.parametrize("amount", ["0", "-5", "abc"])
def test_bad_amounts_are_refused(subscriber, admin, amount):
    with pytest.raises(ValidationError):
        actions.do_post_payment(subscriber, amount=amount, channel="cash", external_id="x")
    with pytest.raises(ValidationError):
        actions.do_adjust_balance(subscriber, amount="0" if amount != "abc" else amount, reason="r", acting_user=admin)
    assert not LedgerTransaction.objects.exists()


def test_the_same_payment_twice_is_credited_once(subscriber):
    actions.do_post_payment(subscriber, amount="100.00", channel="terminal", external_id="T-1")
    actions.do_post_payment(subscriber, amount="100.00", channel="terminal", external_id="T-1")
    assert balance(subscriber) == D("100.00")


def test_closing_the_account_terminates_and_credits_the_unused_month(
    make_plan, make_subscriber, admin, on, django_capture_on_commit_callbacks
):
    from abonent.subscribers.actions import do_close_subscriber

    subscriber = make_subscriber()
    plan = make_plan("internet-100", "600.00")
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    with on(dt.date(2026, 11, 21)), django_capture_on_commit_callbacks(execute=True):
        do_close_subscriber(subscriber, reason="переезд", acting_user=admin)
    subscription.refresh_from_db()
    assert subscription.status == "terminated" and subscription.ended_on == dt.date(2026, 11, 21)
    assert balance(subscriber) == D("-400.00")  # 10 unused days of 30 returned: 200


def test_a_mistaken_adjustment_is_reversed_once(subscriber, admin, make_staff):
    tx = actions.do_adjust_balance(subscriber, amount="150.00", reason="ошибка кассира", acting_user=admin)
    actions.do_reverse_transaction(tx, reason="двойной ввод", acting_user=admin)
    assert balance(subscriber) == D("0.00")
    with pytest.raises(ValidationError) as again:
        actions.do_reverse_transaction(tx, reason="ещё раз", acting_user=admin)
    assert again.value.code == "already_reversed"
    payment = actions.do_post_payment(subscriber, amount="10.00", channel="cash", external_id="p1")
    with pytest.raises(ValidationError) as not_here:
        actions.do_reverse_transaction(payment, reason="refund", acting_user=admin)
    assert not_here.value.code == "not_reversible"  # refunds are the payments issue's, with a fiscal receipt
    assert verify() == []


def test_a_scheduled_downgrade_can_be_cancelled(make_plan, subscriber, admin, on):
    home = make_plan("domashniy", "500.00")
    gamer = make_plan("igrovoy", "900.00")
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=gamer, acting_user=admin)
    with on(dt.date(2026, 11, 20)):
        actions.do_change_plan(subscription, plan=home, acting_user=admin)
        actions.do_cancel_pending_plan_change(subscription, acting_user=admin, reason="передумал")
        with pytest.raises(ValidationError):
            actions.do_cancel_pending_plan_change(subscription, acting_user=admin)
    run_on(dt.date(2026, 12, 1))
    subscription.refresh_from_db()
    assert subscription.plan == gamer and fees(subscription)[-1] == (dt.date(2026, 12, 1), D("900.00"))
