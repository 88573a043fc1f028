"""Bonus points: earned on time, for tenure and for referrals, expired first in first out, spent on services, taken
back with a cancelled payment; every movement in the ledger, each cause once."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from abonent.billing import actions as billing
from abonent.billing import ledger
from abonent.bonuses import actions, selectors
from abonent.bonuses.models import BonusEntry, EntryKind
from abonent.bonuses.tasks import accrue_missed
from abonent.core import clock
from abonent.payments.actions import do_cancel_payment
from abonent.vouchers.testing import balance, balance_of

NOV_1 = dt.date(2026, 11, 1)


def points(subscriber) -> Decimal:
    return selectors.balance_of(subscriber.pk)


def test_a_referral_bonus_over_three_months(rules, pay, make_subscriber, monthly_plan, admin):
    """The issue's scenario: 10 % of the referred subscriber's payments for three months from the day recorded."""
    rules(referral_enabled=True, referral_percent=Decimal("10.00"), referral_months=3)
    referrer = make_subscriber(last_name="Старожилов", phone="+79160000001")
    friend = make_subscriber(last_name="Новиков", phone="+79160000002")
    actions.do_set_referrer(friend, referrer_ref=referrer.account_number, acting_user=admin, since=NOV_1)
    pay(friend, "650.00", on=NOV_1, ref="f-1")
    pay(friend, "650.00", on=dt.date(2026, 12, 1), ref="f-2")
    pay(friend, "700.00", on=dt.date(2027, 1, 15), ref="f-3")
    pay(friend, "650.00", on=dt.date(2027, 2, 1), ref="f-4")  # the period ended on 31 January
    assert list(BonusEntry.objects.filter(subscriber=referrer).order_by("pk").values_list("kind", "points")) == [
        ("referral", Decimal("65.00")),
        ("referral", Decimal("65.00")),
        ("referral", Decimal("70.00")),
    ]
    assert points(referrer) == Decimal("200.00")
    assert points(friend) == Decimal("0.00")
    assert balance_of("bonus") == Decimal("200.00")
    assert balance_of("revenue:bonus") == Decimal("-200.00")
    assert balance(friend) == Decimal("2650.00")  # the friend's money untouched by the referrer's bonus
    assert ledger.verify() == []


def test_paying_on_time_earns_points_and_paying_in_debt_does_not(rules, pay, make_subscriber, monthly_plan, admin):
    rules(on_time_enabled=True, on_time_points=Decimal("10.00"), on_time_percent=Decimal("1.00"))
    subscriber = make_subscriber()
    pay(subscriber, "100.00", on=NOV_1, ref="p-1")  # balance 0 before: not in debt
    assert points(subscriber) == Decimal("11.00")
    with clock.travel_to(NOV_1):
        billing.do_activate_subscription(subscriber, plan=monthly_plan, acting_user=admin)  # −650
    assert balance(subscriber) == Decimal("-550.00")
    pay(subscriber, "600.00", on=dt.date(2026, 11, 3), ref="p-2")  # in debt when it came
    assert points(subscriber) == Decimal("11.00")
    pay(subscriber, "650.00", on=dt.date(2026, 11, 25), ref="p-3")  # 50 ₽ up again
    assert points(subscriber) == Decimal("11.00") + Decimal("16.50")
    assert ledger.verify() == []


def test_a_payment_retried_accrues_once(rules, pay, make_subscriber):
    rules(on_time_enabled=True, on_time_points=Decimal("25.00"))
    subscriber = make_subscriber()
    payment = pay(subscriber, "300.00", on=NOV_1, ref="same")
    again = pay(subscriber, "300.00", on=NOV_1, ref="same")
    assert again.pk == payment.pk
    assert actions.do_accrue_for_payment(payment.pk) == []
    with clock.travel_to(dt.datetime(2026, 11, 2, tzinfo=dt.UTC)):
        assert accrue_missed.call() == 0
    assert BonusEntry.objects.filter(subscriber=subscriber).count() == 1
    assert points(subscriber) == Decimal("25.00")


def test_the_sweep_accrues_a_payment_whose_event_never_came(rules, make_subscriber):
    from abonent.payments.actions import do_receive_payment

    rules(on_time_enabled=True, on_time_points=Decimal("5.00"))
    subscriber = make_subscriber()
    with clock.travel_to(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)):
        do_receive_payment(channel="cash", external_id="quiet", amount="100.00", method="cash", subscriber=subscriber)
        assert points(subscriber) == Decimal("0.00")  # the after-commit event did not run
        assert accrue_missed.call() == 1
        assert accrue_missed.call() == 0
    assert points(subscriber) == Decimal("5.00")


def test_a_cancelled_payment_takes_its_points_back(
    rules, pay, make_subscriber, admin, django_capture_on_commit_callbacks
):
    rules(on_time_enabled=True, on_time_points=Decimal("30.00"))
    subscriber = make_subscriber()
    payment = pay(subscriber, "500.00", on=NOV_1, ref="oops")
    assert points(subscriber) == Decimal("30.00")
    moment = dt.datetime(2026, 11, 1, 13, tzinfo=dt.UTC)
    with clock.travel_to(moment), django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        do_cancel_payment(payment, reason="не тот счёт", acting_user=admin)
    assert points(subscriber) == Decimal("0.00")
    assert actions.do_take_back_for_payment(payment.pk) == []  # once
    assert balance_of("bonus") == Decimal("0.00")
    assert ledger.verify() == []


def test_tenure_points_once_per_anniversary(rules, make_subscriber, monthly_plan, admin):
    rules(tenure_enabled=True, tenure_unit="year", tenure_points=Decimal("100.00"))
    subscriber = make_subscriber()
    with clock.travel_to(dt.date(2025, 11, 20)):
        billing.do_post_payment(subscriber, amount="10000.00", channel="test", external_id="t")
        billing.do_activate_subscription(subscriber, plan=monthly_plan, acting_user=admin)
    assert actions.do_accrue_tenure(dt.date(2026, 11, 19)) == 0
    assert actions.do_accrue_tenure(dt.date(2026, 11, 20)) == 1
    assert actions.do_accrue_tenure(dt.date(2026, 11, 21)) == 0
    assert actions.do_accrue_tenure(dt.date(2027, 6, 1)) == 0
    assert points(subscriber) == Decimal("100.00")
    assert actions.tenure_of(dt.date(2025, 1, 31), dt.date(2025, 2, 28), "month") == 1


def test_points_expire_first_in_first_out(rules, pay, make_subscriber):
    rules(on_time_enabled=True, on_time_points=Decimal("50.00"), expiry_months=1)
    subscriber = make_subscriber()
    pay(subscriber, "100.00", on=NOV_1, ref="e-1")  # 50, last day 1 December
    rules(on_time_points=Decimal("30.00"))
    pay(subscriber, "100.00", on=dt.date(2026, 11, 15), ref="e-2")  # 30, last day 15 December
    with clock.travel_to(dt.date(2026, 11, 20)):
        assert selectors.expiring_soon(subscriber.pk, dt.date(2026, 11, 20)) == [
            (dt.date(2026, 12, 1), Decimal("50.00")),
            (dt.date(2026, 12, 15), Decimal("30.00")),
        ]
        actions.do_spend_points(subscriber, points="60", key="s-1", acting_user=None)  # the 50 and 10 of the 30
    assert actions.do_expire_points(dt.date(2026, 12, 2)) == 0
    assert actions.do_expire_points(dt.date(2026, 12, 16)) == 1
    assert actions.do_expire_points(dt.date(2026, 12, 16)) == 0
    assert list(BonusEntry.objects.filter(kind=EntryKind.EXPIRY).values_list("points", flat=True)) == [
        Decimal("-20.00")
    ]
    assert points(subscriber) == Decimal("0.00")
    assert balance(subscriber) == Decimal("260.00")  # 200 paid + 60 spent
    assert balance_of("bonus") == Decimal("0.00")
    assert balance_of("revenue:bonus") == Decimal("-60.00")  # 80 granted, 20 back
    assert ledger.verify() == []


def test_spending_more_than_the_points_is_refused_and_writes_nothing(rules, pay, make_subscriber):
    rules(on_time_enabled=True, on_time_points=Decimal("11.00"))
    subscriber = make_subscriber()
    pay(subscriber, "100.00", on=NOV_1, ref="x")
    for absurd in ("11.01", "0", "-5", "99999999999999"):
        with pytest.raises(ValidationError) as exc:
            actions.do_spend_points(subscriber, points=absurd, key=str(uuid.uuid4()), acting_user=None)
        assert exc.value.error_dict["points"][0].code in {
            "bonus_insufficient",
            "amount_not_positive",
            "amount_too_large",
        }
    assert points(subscriber) == Decimal("11.00")
    assert balance(subscriber) == Decimal("100.00")
    entry = actions.do_spend_points(subscriber, points="11", key="k", acting_user=None)
    assert actions.do_spend_points(subscriber, points="11", key="k", acting_user=None).pk == entry.pk
    with pytest.raises(ValidationError):
        actions.do_spend_points(subscriber, points="5", key="k", acting_user=None)
    assert balance(subscriber) == Decimal("111.00")


def test_another_subscriber_cannot_be_their_own_referrer_or_twice(make_subscriber, admin):
    one = make_subscriber()
    with pytest.raises(ValidationError) as exc:
        actions.do_set_referrer(one, referrer_ref=one.account_number, acting_user=admin)
    assert exc.value.error_dict["referrer"][0].code == "referrer_self"
    with pytest.raises(ValidationError) as exc:
        actions.do_set_referrer(one, referrer_ref="NOSUCH", acting_user=admin)
    assert exc.value.error_dict["referrer"][0].code == "referrer_unknown"
    two = make_subscriber(phone="+79160000009")
    code = actions.ensure_referral_code(two.pk)
    actions.do_set_referrer(one, referrer_ref=code.lower(), acting_user=admin)
    with pytest.raises(ValidationError):
        actions.do_set_referrer(one, referrer_ref=two.account_number, acting_user=admin)


@pytest.mark.django_db(transaction=True)
def test_concurrent_spends_cannot_overdraw(postgres_only, rules, make_subscriber):
    rules(on_time_enabled=True, on_time_points=Decimal("100.00"))
    subscriber = make_subscriber()
    from abonent.payments.actions import do_receive_payment

    do_receive_payment(channel="cash", external_id="c", amount="10.00", method="cash", subscriber=subscriber)
    actions.do_accrue_for_payment(subscriber.payments.get().pk)
    assert points(subscriber) == Decimal("100.00")
    barrier = threading.Barrier(4)
    outcomes = []

    def spend(i):
        try:
            barrier.wait()
            actions.do_spend_points(subscriber, points="40", key=f"race-{i}", acting_user=None)
            outcomes.append("ok")
        except ValidationError as exc:
            outcomes.append(exc.error_dict["points"][0].code)
        finally:
            connection.close()

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["bonus_insufficient", "bonus_insufficient", "ok", "ok"]
    assert points(subscriber) == Decimal("20.00")
    assert balance(subscriber) == Decimal("90.00")
    assert ledger.verify() == []


def test_partial_refunds_take_back_their_share_and_spent_points_come_off_the_account(
    rules, pay, make_subscriber, admin
):
    """1000 ₽ earns 100 points; 60 are spent (+60 ₽). A refund of 300 ₽ takes back 30 of the 40 unused; a further
    refund of 500 ₽ takes back the other 10 points and 40 ₽ of the spent ones off the account; a repeat takes
    nothing more. The liability follows the points and the ledger stays balanced."""
    from abonent.payments.actions.refunds import do_refund_payment

    rules(on_time_enabled=True, on_time_percent=Decimal("10.00"))
    subscriber = make_subscriber()
    payment = pay(subscriber, "1000.00", on=NOV_1, ref="part")
    with clock.travel_to(dt.datetime(2026, 11, 1, 13, tzinfo=dt.UTC)):
        actions.do_spend_points(subscriber, points="60", key="part-spend", acting_user=None)
        do_refund_payment(payment, amount="300.00", reason="частично", acting_user=admin, key="part-1")
        assert points(subscriber) == Decimal("10.00")
        assert balance(subscriber) == Decimal("760.00")
        do_refund_payment(payment, amount="500.00", reason="ещё", acting_user=admin, key="part-2")
        assert actions.do_take_back_for_payment(payment.pk) == []
        assert accrue_missed.call() == 0
    assert points(subscriber) == Decimal("0.00")
    assert balance(subscriber) == Decimal("220.00")  # 1000 + 60 − 800 − 40: 200 kept earns 20 points, all spent
    takes = BonusEntry.objects.filter(kind=EntryKind.CLAWBACK).order_by("pk")
    assert list(takes.values_list("points", "charged_points")) == [
        (Decimal("-30.00"), Decimal("0.00")),
        (Decimal("-10.00"), Decimal("40.00")),
    ]
    assert balance_of("bonus") == Decimal("0.00")
    assert ledger.verify() == []


def test_the_sweep_takes_back_what_a_failed_refund_handler_left(rules, pay, make_subscriber, admin, monkeypatch):
    """The in-transaction take-back fails (here: raises); the refund still succeeds and the hourly sweep takes the
    refunded share back."""
    from abonent.payments.actions.refunds import do_refund_payment

    rules(on_time_enabled=True, on_time_points=Decimal("50.00"))
    subscriber = make_subscriber()
    payment = pay(subscriber, "500.00", on=NOV_1, ref="fail")
    real = actions.do_take_back_for_payment

    def broken(payment_id):
        raise RuntimeError("lock deadline")

    monkeypatch.setattr(actions, "do_take_back_for_payment", broken)
    with clock.travel_to(dt.datetime(2026, 11, 1, 13, tzinfo=dt.UTC)):
        do_refund_payment(payment, amount="250.00", reason="половина", acting_user=admin, key="fail-1")
    assert points(subscriber) == Decimal("50.00")
    monkeypatch.setattr(actions, "do_take_back_for_payment", real)
    with clock.travel_to(dt.datetime(2026, 11, 1, 14, tzinfo=dt.UTC)):
        assert accrue_missed.call() == 1
        assert accrue_missed.call() == 0
    assert points(subscriber) == Decimal("25.00")
