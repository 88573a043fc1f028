"""Attack review of bonus points: each test asserts the correct behaviour and fails on the reviewed commit."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from abonent.billing import actions as billing
from abonent.billing import ledger
from abonent.bonuses import actions, selectors
from abonent.bonuses.tasks import accrue_missed
from abonent.catalog.models import PromisedPaymentPolicy
from abonent.core import clock
from abonent.payments.actions import do_cancel_payment, do_receive_payment
from abonent.payments.actions.refunds import do_refund_payment
from abonent.portal.models import SessionKind
from abonent.portal.sessions import open_session
from abonent.vouchers.testing import balance, balance_of

NOV_1 = dt.date(2026, 11, 1)


def points(subscriber) -> Decimal:
    return selectors.balance_of(subscriber.pk)


def at(day: dt.date, hour: int = 12):
    return clock.travel_to(dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC))


def cancel(payment, admin, django_capture_on_commit_callbacks, *, on=NOV_1):
    with at(on, 14), django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        do_cancel_payment(payment, reason="ошибка", acting_user=admin)


def app_of(subscriber):
    from django.test import Client

    _session, token = open_session(subscriber, kind=SessionKind.API)
    return Client(headers={"Authorization": f"Bearer {token}"})


# --- money created ------------------------------------------------------------------------------------------------


def test_a_refunded_payment_keeps_the_points_it_earned(rules, pay, make_subscriber, admin):
    """A full refund gives the money back, but the 10 % on-time points stay and can be spent: 100 ₽ created.
    (A partial refund likewise keeps all the points.)"""
    rules(on_time_enabled=True, on_time_percent=Decimal("10.00"))
    subscriber = make_subscriber()
    payment = pay(subscriber, "1000.00", on=NOV_1, ref="r-1")
    assert points(subscriber) == Decimal("100.00")
    with at(NOV_1, 13):
        do_refund_payment(payment, amount="1000.00", reason="передумал", acting_user=admin, key="refund-1")
    assert balance(subscriber) == Decimal("0.00")
    assert points(subscriber) == Decimal("0.00")  # nothing was paid in the end: nothing earned
    assert ledger.verify() == []


def test_points_spent_then_the_payment_cancelled_leaves_money_that_was_never_paid(
    rules, pay, make_subscriber, admin, django_capture_on_commit_callbacks
):
    """Pay 1000 (10 % = 100 points), spend the points (+100 ₽), the payment is cancelled: the subscriber is left
    with +100 ₽ on the account although nothing was ever paid."""
    rules(on_time_enabled=True, on_time_percent=Decimal("10.00"))
    subscriber = make_subscriber()
    payment = pay(subscriber, "1000.00", on=NOV_1, ref="c-1")
    with at(NOV_1, 13):
        actions.do_spend_points(subscriber, points="100", key="c-spend", acting_user=None)
    cancel(payment, admin, django_capture_on_commit_callbacks)
    assert balance(subscriber) + points(subscriber) <= Decimal("0.00")
    assert ledger.verify() == []


def test_a_point_worth_half_a_rouble_spent_a_hundredth_at_a_time_pays_double(rules, pay, make_subscriber, settings):
    """ABONENT_BONUS_POINT_VALUE=0.50: 0.10 points are a 0.05 ₽ liability, but ten spends of 0.01 point each
    round 0.005 up to 0.01 ₽ and put 0.10 ₽ on the account; the liability goes negative."""
    settings.ABONENT_BONUS_POINT_VALUE = "0.50"
    rules(on_time_enabled=True, on_time_points=Decimal("0.10"))
    subscriber = make_subscriber()
    pay(subscriber, "100.00", on=NOV_1, ref="h-1")
    assert balance_of("bonus") == Decimal("0.05")
    with at(NOV_1, 13):
        for i in range(10):
            actions.do_spend_points(subscriber, points="0.01", key=f"h-{i}", acting_user=None)
    assert points(subscriber) == Decimal("0.00")
    assert balance_of("bonus") == Decimal("0.00")
    assert balance(subscriber) == Decimal("100.05")


def test_turning_the_on_time_rule_on_pays_for_payments_made_while_it_was_off(rules, pay, make_subscriber):
    """The hourly sweep uses today's rules for the last two days' payments: a payment made while the rule was off
    earns points an hour after the rule is switched on."""
    subscriber = make_subscriber()
    pay(subscriber, "1000.00", on=dt.date(2026, 11, 19), ref="before")  # the rule is off: nothing
    with at(dt.date(2026, 11, 20), 9):
        rules(on_time_enabled=True, on_time_percent=Decimal("10.00"))
        accrue_missed.call()
    assert points(subscriber) == Decimal("0.00")


def test_a_subscriber_in_debt_on_a_promised_payment_earns_on_time_points(rules, pay, make_subscriber, make_plan, admin):
    """−250 ₽ in debt, a promised payment lifts the balance to +250 with the ISP's money: the next payment is late,
    yet it counts as 'paid on time' because the promised credit is in the balance before it."""
    rules(on_time_enabled=True, on_time_points=Decimal("50.00"))
    policy = PromisedPaymentPolicy.objects.create(
        name="До 500 ₽", max_amount=Decimal("500.00"), days=3, max_debt=Decimal("300.00")
    )
    plan = make_plan("internet-p", "650.00", promised_payment_policy=policy)
    subscriber = make_subscriber()
    with at(NOV_1):
        billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        billing.do_post_payment(subscriber, amount="400.00", channel="test", external_id="seed")
    assert balance(subscriber) == Decimal("-250.00")
    with at(dt.date(2026, 11, 5)):
        billing.do_take_promised_payment(subscriber, acting_user=admin)
    pay(subscriber, "1000.00", on=dt.date(2026, 11, 6), ref="late")
    assert points(subscriber) == Decimal("0.00")


def test_a_payment_cancelled_while_its_accrual_waits_for_the_lock_keeps_its_points(
    rules, pay, make_subscriber, admin, django_capture_on_commit_callbacks, monkeypatch
):
    """do_accrue_for_payment reads the payment as credited, then waits for the account's lock; the cancel holding
    that lock commits and its take-back finds nothing yet; the accrual then writes points for a cancelled payment.
    (Interleaving forced deterministically: the cancel runs where the accrual takes the lock.)"""
    rules(on_time_enabled=True, on_time_points=Decimal("30.00"))
    subscriber = make_subscriber()
    with at(NOV_1):
        intake = do_receive_payment(channel="cash", external_id="race", amount="500.00", method="cash",
                                    subscriber=subscriber)  # fmt: skip
    payment = intake.payment
    real_lock = actions._lock
    state = {"done": False}

    def lock_after_a_cancel(subscriber_id):
        if not state["done"]:
            state["done"] = True
            with at(NOV_1, 13):
                do_cancel_payment(payment, reason="не тот счёт", acting_user=admin)
                actions.do_take_back_for_payment(payment.pk)  # its after-commit handler: nothing to take yet
        return real_lock(subscriber_id)

    monkeypatch.setattr(actions, "_lock", lock_after_a_cancel)
    with at(NOV_1, 13):
        actions.do_accrue_for_payment(payment.pk)
    payment.refresh_from_db()
    assert payment.status == "cancelled"
    assert points(subscriber) == Decimal("0.00")


def test_a_cancel_whose_take_back_never_ran_is_never_caught_up(rules, pay, make_subscriber, admin):
    """The take-back runs only in the after-commit handler (exceptions are logged and dropped, e.g. the 3 s lock
    deadline); unlike accruals there is no sweep, so the points of a cancelled payment stay for good."""
    rules(on_time_enabled=True, on_time_points=Decimal("30.00"))
    subscriber = make_subscriber()
    payment = pay(subscriber, "500.00", on=NOV_1, ref="lost")
    with at(NOV_1, 13), transaction.atomic():
        do_cancel_payment(payment, reason="ошибка", acting_user=admin)  # its event lost (a crash after commit)
    with at(NOV_1, 14):
        accrue_missed.call()
    with at(dt.date(2026, 11, 2), 1):
        actions.do_accrue_tenure()
        actions.do_expire_points()
    assert points(subscriber) == Decimal("0.00")


def test_points_past_their_last_day_can_be_spent_before_the_job_expires_them(rules, pay, make_subscriber):
    """Earned 1 Nov with a 1-month expiry: the last day is 1 Dec. On 2 Dec at 00:10 (the job runs at 00:40, or
    did not run) the whole balance is still spendable: expired points turned into money."""
    rules(on_time_enabled=True, on_time_points=Decimal("50.00"), expiry_months=1)
    subscriber = make_subscriber()
    pay(subscriber, "100.00", on=NOV_1, ref="x-1")
    with clock.travel_to(dt.datetime(2026, 12, 1, 21, 10, tzinfo=dt.UTC)):  # 00:10 on 2 Dec in Moscow
        assert clock.today() == dt.date(2026, 12, 2)
        with pytest.raises(ValidationError) as exc:
            actions.do_spend_points(subscriber, points="50", key="late-spend", acting_user=None)
    assert exc.value.error_dict["points"][0].code == "bonus_insufficient"
    assert balance(subscriber) == Decimal("100.00")


def test_points_taken_back_are_charged_to_the_earliest_lot_so_lapsed_points_survive(
    rules, pay, make_subscriber, admin, django_capture_on_commit_callbacks
):
    """100 points (last day 1 Dec), then 30 points from a payment that is cancelled (taken back). On 2 Dec all of
    the 100 have lapsed and nothing else is left, but the FIFO formula counts the take-back against the 100:
    only 70 expire and 30 points from the cancelled payment stay spendable until 16 Dec."""
    rules(on_time_enabled=True, on_time_points=Decimal("100.00"), expiry_months=1)
    subscriber = make_subscriber()
    pay(subscriber, "100.00", on=NOV_1, ref="lot-1")
    rules(on_time_points=Decimal("30.00"))
    second = pay(subscriber, "100.00", on=dt.date(2026, 11, 15), ref="lot-2")
    cancel(second, admin, django_capture_on_commit_callbacks, on=dt.date(2026, 11, 15))
    assert points(subscriber) == Decimal("100.00")
    actions.do_expire_points(dt.date(2026, 12, 2))
    assert points(subscriber) == Decimal("0.00")
    assert ledger.verify() == []


def test_an_expiry_shortened_later_never_lapses_points_earned_after_a_spend(rules, pay, make_subscriber):
    """100 points earned with a 12-month expiry, 60 spent; the rule is shortened to 1 month and 50 points are
    earned (last day 15 Dec). Those 50 were never touched by the spend, yet on 16 Dec none expire: the spend made
    before they existed is counted against them."""
    rules(on_time_enabled=True, on_time_points=Decimal("100.00"), expiry_months=12)
    subscriber = make_subscriber()
    pay(subscriber, "100.00", on=NOV_1, ref="long")
    with at(dt.date(2026, 11, 2)):
        actions.do_spend_points(subscriber, points="60", key="early", acting_user=None)
    rules(on_time_points=Decimal("50.00"), expiry_months=1)
    pay(subscriber, "100.00", on=dt.date(2026, 11, 15), ref="short")
    assert points(subscriber) == Decimal("90.00")
    actions.do_expire_points(dt.date(2026, 12, 16))
    assert points(subscriber) == Decimal("40.00")  # the 50 lapsed, 40 of the first 100 remain


# --- 500s and stalls ----------------------------------------------------------------------------------------------


def test_a_spend_worth_less_than_a_kopeck_is_a_500_in_the_api(rules, pay, make_subscriber, settings):
    """ABONENT_BONUS_POINT_VALUE=0.10: 0.04 points are worth 0.004 ₽, rounded to 0.00; ledger.post refuses a
    zero leg with LedgerError (not a ValidationError): the API answers 500 instead of 422."""
    settings.ABONENT_BONUS_POINT_VALUE = "0.10"
    rules(on_time_enabled=True, on_time_points=Decimal("10.00"))
    subscriber = make_subscriber()
    pay(subscriber, "100.00", on=NOV_1, ref="tiny")
    app = app_of(subscriber)
    app.raise_request_exception = False
    answer = app.post("/api/v1/my/bonuses/spend", json.dumps({"points": "0.04"}), content_type="application/json",
                      headers={"Idempotency-Key": "tiny-1"})  # fmt: skip
    assert answer.status_code == 422
    assert points(subscriber) == Decimal("10.00")


def test_one_payment_worth_less_than_a_kopeck_in_points_stalls_the_sweep(rules, make_subscriber, settings):
    """ABONENT_BONUS_POINT_VALUE=0.10 and 0.04 % of a payment: 100 ₽ earns 0.04 points = 0.00 ₽; LedgerError
    aborts accrue_missed (an unordered scan), so every payment after it in the sweep (here 10 000 ₽ → 4 points)
    is never accrued, hour after hour for the two days the payment stays in the window."""
    settings.ABONENT_BONUS_POINT_VALUE = "0.10"
    rules(on_time_enabled=True, on_time_percent=Decimal("0.04"))
    small, big = make_subscriber(), make_subscriber(phone="+79160000042")
    with at(NOV_1):  # events not run: the terminal fast path, or a crash after commit
        do_receive_payment(channel="cash", external_id="s", amount="100.00", method="cash", subscriber=small)
        do_receive_payment(channel="cash", external_id="b", amount="10000.00", method="cash", subscriber=big)
    with at(NOV_1, 13):
        accrue_missed.call()  # raises LedgerError: the rest of the scan is skipped every hour
    assert points(big) == Decimal("4.00")


# --- referrals ----------------------------------------------------------------------------------------------------


def test_circular_referrals_are_refused(make_subscriber, admin):
    """A referred B and B 'referred' A: both earn on each other's payments (and a payment of either locks both
    accounts in opposite orders: a deadlock between their concurrent payments)."""
    a = make_subscriber(phone="+79160000101")
    b = make_subscriber(phone="+79160000102")
    actions.do_set_referrer(b, referrer_ref=a.account_number, acting_user=admin)
    with pytest.raises(ValidationError) as exc:
        actions.do_set_referrer(a, referrer_ref=b.account_number, acting_user=admin)
    assert exc.value.error_dict["referrer"][0].code.startswith("referr")


def test_a_closed_subscriber_cannot_be_recorded_as_a_referrer(make_subscriber, admin):
    """A closed account can never spend points: recording it as the referrer only grows a liability that can never
    be used (and a typo'd old account number is accepted silently)."""
    from abonent.subscribers.actions.subscriber import do_close_subscriber

    gone = make_subscriber(phone="+79160000201")
    do_close_subscriber(gone, reason="переехал", acting_user=admin)
    gone.refresh_from_db()
    assert gone.is_closed
    newcomer = make_subscriber(phone="+79160000202")
    with pytest.raises(ValidationError):
        actions.do_set_referrer(newcomer, referrer_ref=gone.account_number, acting_user=admin)


def test_staff_of_one_branch_cannot_name_a_subscriber_of_another_as_referrer(
    make_subscriber, make_staff, branch, other_branch, client
):
    """find_referrer searches every branch: an operator of Тверь learns that an account number exists in Клин
    ('Referrer recorded') and links to a card they cannot open; get_subscriber answers 404 for the same number."""
    from django.urls import reverse

    from abonent.staff.permissions import Role

    mine = make_subscriber(phone="+79160000301")
    elsewhere = make_subscriber(phone="+79160000302", branch_obj=other_branch)
    operator = make_staff(Role.OPERATOR, branches=[branch])
    client.force_login(operator)
    answer = client.post(reverse("bonuses:referrer", args=[mine.pk]), {"referrer": elsewhere.account_number},
                         HTTP_HX_REQUEST="true")  # fmt: skip
    assert answer.status_code == 422
    from abonent.bonuses.models import Referral

    assert not Referral.objects.filter(referred=mine).exists()


# --- input and settings -------------------------------------------------------------------------------------------


def test_the_api_spend_takes_points_only_as_ascii_money_text(rules, pay, make_subscriber):
    """Every other money input of the API is a string matching MONEY_IN; points are a pydantic Decimal: "٥"
    (Arabic-Indic five) spends 5 points, a JSON float is taken, "0.005" silently spends 0.01."""
    rules(on_time_enabled=True, on_time_points=Decimal("40.00"))
    subscriber = make_subscriber()
    pay(subscriber, "100.00", on=NOV_1, ref="ascii")
    app = app_of(subscriber)
    for i, body in enumerate(['{"points": "\\u0665"}', '{"points": 15.5}', '{"points": "0.005"}']):
        answer = app.post("/api/v1/my/bonuses/spend", body, content_type="application/json",
                          headers={"Idempotency-Key": f"ascii-{i}"})  # fmt: skip
        assert answer.status_code == 422, body
    assert points(subscriber) == Decimal("40.00")


@pytest.mark.parametrize("value", ["-1.00", "0", "0.333", "one"])
def test_a_point_value_setting_out_of_bounds_is_refused_at_start(import_settings, value):
    """ABONENT_BONUS_POINT_VALUE is read unchecked: -1 turns every accrual and spend around (a spend takes money
    off the account), 0 or "one" makes every movement fail (LedgerError / MoneyError, a 500 and a dead sweep),
    0.333 is silently used as 0.33. Other amounts in settings are refused with ImproperlyConfigured."""
    result = import_settings({"ABONENT_BONUS_POINT_VALUE": value})
    assert result.returncode != 0
    assert "ABONENT_BONUS_POINT_VALUE" in result.stderr
