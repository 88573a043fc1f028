"""Autopay through a month: reminder, debit, soft-decline retries, hard declines, lost answers, reruns and races.

The gateway is ``payments.testing.FakeGateway``: it keeps one payment per idempotence key, as YooKassa does, so
"charged once" is checked on the provider's side too (``fake.taken``), not only in our ledger.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from abonent.billing import ledger
from abonent.billing import testing as billing_testing
from abonent.billing.actions import do_activate_subscription
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.payments import actions
from abonent.payments.models import (
    AttemptStatus,
    AutopayAttempt,
    AutopayMode,
    AutopayPlan,
    NoticeKind,
    Payment,
    PaymentMethod,
    PaymentNotice,
    SavedMethod,
)
from abonent.payments.testing import fake_gateway
from abonent.staff.permissions import Role

D = Decimal
JAN = 2027


@pytest.fixture
def fakepay():
    with fake_gateway() as fake:
        yield fake


@pytest.fixture
def plan650(make_plan):
    return make_plan("internet-100", "650.00", name="Интернет-100")


def at(day: dt.date, hour: int = 10):
    return clock.travel_to(dt.datetime.combine(day, dt.time(hour, 0)))


def jan(d: int) -> dt.date:
    return dt.date(JAN, 1, d)


def link(subscriber, method_id="pm-1", provider="fakepay"):
    return actions.do_link_method(
        subscriber,
        provider=provider,
        method_id=method_id,
        method_type="bank_card",
        title="Bank card *4444",
        consent_text="I agree to autopay of my account on the 5th of each month; I can turn it off in my cabinet.",
        consented_at=clock.now(),
        consent_source="portal",
    )


def cash(subscriber, amount, ref):
    return actions.do_receive_payment(
        channel="cash", external_id=ref, amount=amount, method=PaymentMethod.CASH, subscriber=subscriber
    )


@pytest.fixture
def customer(subscriber, plan650, admin, fakepay):
    """Paid 650 ₽ cash on 31 December, on Интернет-100 from 1 January (balance 0), card saved, autopay on the 5th."""
    with at(dt.date(JAN - 1, 12, 31)):
        cash(subscriber, "650.00", "c-1")
    with at(jan(1), 9):
        do_activate_subscription(subscriber, plan=plan650, acting_user=admin)
        method = link(subscriber)
        actions.do_enable_autopay(subscriber, method=method, debit_day=5, acting_user=admin)
    assert get_balance(subscriber).balance == D("0.00")
    return subscriber


def live(day: dt.date) -> dict:
    """A worker's day: the billing run after midnight, the autopay run at 10:00."""
    billing_testing.run_on(day)
    with at(day):
        return actions.do_run_autopay()


def notices(subscriber):
    # Autopay's own notices ("payment received" is queued for every payment credited, the opening ones included).
    autopay = PaymentNotice.objects.filter(subscriber=subscriber).exclude(kind=NoticeKind.PAYMENT_RECEIVED)
    return [(n.kind, n.created_at.date(), n.payload) for n in autopay]


# --- the month ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_month_of_autopay_reminds_retries_soft_declines_and_credits_once(customer, fakepay):
    fakepay.script += [("declined", "insufficient_funds", True), ("declined", "insufficient_funds", True)]
    for d in range(1, 32):
        live(jan(d))
        if d == 1:
            assert notices(customer) == []
        if d == 2:
            assert [n[0] for n in notices(customer)] == [NoticeKind.AUTOPAY_REMINDER]
        if d in (3, 4):
            assert fakepay.charges() == []
        if d == 7:
            assert len(fakepay.charges()) == 2 and get_balance(customer).balance == D("0.00")

    # Tries on the 5th and 6th were declined, the 8th went through; one key each, 650 ₽ each time.
    attempts = list(AutopayAttempt.objects.order_by("number"))
    assert [(a.number, a.scheduled_for, a.status) for a in attempts] == [
        (1, jan(5), AttemptStatus.DECLINED),
        (2, jan(6), AttemptStatus.DECLINED),
        (3, jan(8), AttemptStatus.SUCCEEDED),
    ]
    assert all(a.due_on == jan(5) and a.amount == D("650.00") for a in attempts)
    assert [c[1] for c in fakepay.charges()] == [a.key for a in attempts]
    assert attempts[0].decline_code == "insufficient_funds" and attempts[0].decline_soft is True

    # Credited once, through the intake, as an autopay payment of the gateway's channel.
    payment = Payment.objects.get(method=PaymentMethod.AUTOPAY)
    assert attempts[2].payment == payment and payment.external_id == attempts[2].provider_payment_id
    assert payment.channel == "fakepay" and payment.amount == D("650.00")
    assert fakepay.taken == D("650.00")
    assert get_balance(customer).balance == D("650.00")  # paid ahead for February

    assert notices(customer) == [
        (
            NoticeKind.AUTOPAY_REMINDER,
            jan(2),
            {"amount": "650.00", "due_on": "2027-01-05", "method": "Bank card *4444"},
        ),
        (
            NoticeKind.AUTOPAY_RETRY_SCHEDULED,
            jan(5),
            {
                "amount": "650.00",
                "due_on": "2027-01-05",
                "method": "Bank card *4444",
                "reason": "insufficient_funds",
                "next_try_on": "2027-01-06",
            },
        ),
        (
            NoticeKind.AUTOPAY_RETRY_SCHEDULED,
            jan(6),
            {
                "amount": "650.00",
                "due_on": "2027-01-05",
                "method": "Bank card *4444",
                "reason": "insufficient_funds",
                "next_try_on": "2027-01-08",
            },
        ),
        (
            NoticeKind.AUTOPAY_SUCCEEDED,
            jan(8),
            {"amount": "650.00", "due_on": "2027-01-05", "method": "Bank card *4444"},
        ),
    ]
    assert all(n.delivered_at is None for n in PaymentNotice.objects.all())

    # February's fee takes what autopay paid ahead; February's reminder comes on the 2nd.
    live(dt.date(JAN, 2, 1))
    live(dt.date(JAN, 2, 2))
    assert get_balance(customer).balance == D("0.00")
    assert PaymentNotice.objects.filter(kind=NoticeKind.AUTOPAY_REMINDER).count() == 2
    assert ledger.verify() == []


@pytest.mark.django_db
def test_soft_declines_stop_after_the_last_retry(customer, fakepay):
    fakepay.script += [("declined", "insufficient_funds", True)] * 6
    for d in range(1, 20):
        live(jan(d))
    assert [a.scheduled_for for a in AutopayAttempt.objects.order_by("number")] == [jan(5), jan(6), jan(8), jan(10)]
    assert len(fakepay.charges()) == 4 and fakepay.taken == 0
    kinds = [n[0] for n in notices(customer)]
    assert kinds == [NoticeKind.AUTOPAY_REMINDER] + [NoticeKind.AUTOPAY_RETRY_SCHEDULED] * 3 + [
        NoticeKind.AUTOPAY_DECLINED
    ]
    # The method stays: the card was fine, the money was not there. Autopay tries again next month.
    assert SavedMethod.objects.get().active and AutopayPlan.objects.get().enabled
    assert get_balance(customer).balance == D("0.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_retry_days_come_from_the_setting(customer, fakepay, settings):
    settings.ABONENT_AUTOPAY_RETRY_DAYS = [2]
    fakepay.script += [("declined", "insufficient_funds", True)] * 3
    for d in range(1, 12):
        live(jan(d))
    assert [a.scheduled_for for a in AutopayAttempt.objects.order_by("number")] == [jan(5), jan(7)]


@pytest.mark.django_db
def test_a_revoked_method_is_a_hard_decline_no_retry_and_autopay_stops(customer, fakepay):
    fakepay.script.append(("declined", "permission_revoked", False))
    for d in range(1, 12):
        live(jan(d))
    attempt = AutopayAttempt.objects.get()
    assert attempt.status == AttemptStatus.DECLINED and attempt.decline_soft is False
    assert len(fakepay.charges()) == 1 and fakepay.taken == 0
    method = SavedMethod.objects.get()
    assert not method.active and "permission_revoked" in method.unlink_reason
    plan = AutopayPlan.objects.get()
    assert not plan.enabled and plan.disabled_at is not None
    assert [n[0] for n in notices(customer)] == [
        NoticeKind.AUTOPAY_REMINDER,
        NoticeKind.AUTOPAY_DECLINED,
        NoticeKind.METHOD_UNLINKED,
        NoticeKind.AUTOPAY_STOPPED,
    ]
    # February: nothing is tried with the unlinked card.
    for d in range(1, 8):
        live(dt.date(JAN, 2, d))
    assert len(fakepay.charges()) == 1
    assert get_balance(customer).balance == D("-650.00")  # February's fee, unpaid: dunning's business now
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_hard_decline_that_is_not_a_revocation_keeps_the_method_for_next_month(customer, fakepay):
    fakepay.script.append(("declined", "fraud_suspected", False))
    for d in range(1, 32):
        live(jan(d))
    assert len(fakepay.charges()) == 1
    assert [n[0] for n in notices(customer)][-1] == NoticeKind.AUTOPAY_DECLINED
    assert SavedMethod.objects.get().active and AutopayPlan.objects.get().enabled
    for d in range(1, 6):
        live(dt.date(JAN, 2, d))
    # February's debit covers the unpaid February fee and March's.
    assert len(fakepay.charges()) == 2 and fakepay.taken == D("1300.00")
    assert get_balance(customer).balance == D("650.00")
    assert AutopayAttempt.objects.filter(due_on=dt.date(JAN, 2, 5), status=AttemptStatus.SUCCEEDED).count() == 1
    assert ledger.verify() == []


# --- lost answers, pending payments, reruns, races -----------------------------------------------------------


@pytest.mark.django_db
def test_a_timeout_is_followed_up_with_the_same_key_and_credited_once(customer, fakepay):
    fakepay.script.append("timeout")
    for d in range(1, 6):
        live(jan(d))
    attempt = AutopayAttempt.objects.get()
    # The provider took the money, the answer was lost: not credited yet, not declined, not retried as new.
    assert attempt.status == AttemptStatus.PROCESSING and "timed out" in attempt.error
    assert fakepay.taken == D("650.00") and get_balance(customer).balance == D("0.00")
    live(jan(5))  # a rerun the same minute leaves a try in flight to its sender
    assert len(fakepay.charges()) == 1

    with at(jan(5), 11):  # the follow-up job (every 15 minutes)
        assert actions.do_sync_autopay() == {"succeeded": 1}
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert [c[1] for c in fakepay.charges()] == [attempt.key, attempt.key]  # the same key, the same payment
    assert len(fakepay.payments) == 1 and fakepay.taken == D("650.00")
    assert get_balance(customer).balance == D("650.00")
    live(jan(6))
    assert AutopayAttempt.objects.count() == 1 and len(fakepay.charges()) == 2
    assert [n[0] for n in notices(customer)] == [NoticeKind.AUTOPAY_REMINDER, NoticeKind.AUTOPAY_SUCCEEDED]
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_timeout_answered_by_the_next_days_run_within_the_key_lifetime(customer, fakepay, settings):
    settings.ABONENT_AUTOPAY_RUN_AT = dt.time(10, 0)
    fakepay.script.append("timeout")
    for d in range(1, 6):
        live(jan(d))
    fakepay.unreachable = 1
    with at(jan(5), 11):  # the follow-up times out too
        assert actions.do_sync_autopay() == {"unknown": 1}
    billing_testing.run_on(jan(6))
    with clock.travel_to(dt.datetime(JAN, 1, 6, 8, 0)):  # 22 hours after it was sent
        actions.do_run_autopay()
    attempt = AutopayAttempt.objects.get()
    assert attempt.status == AttemptStatus.SUCCEEDED and len(fakepay.payments) == 1
    assert get_balance(customer).balance == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_pending_payment_is_synced_later_by_its_id(customer, fakepay):
    fakepay.script.append("pending")
    for d in range(1, 6):
        live(jan(d))
    attempt = AutopayAttempt.objects.get()
    assert attempt.status == AttemptStatus.PROCESSING and attempt.provider_payment_id == "fp-1"
    with at(jan(5), 11):
        assert actions.do_sync_autopay() == {"pending": 1}
        fakepay.settle("fp-1")
    with at(jan(5), 12):
        assert actions.do_sync_autopay() == {"succeeded": 1}
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED and get_balance(customer).balance == D("650.00")
    assert len(fakepay.charges()) == 1 and ("get", "fp-1") in fakepay.calls
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_pending_payment_the_provider_cancels_is_a_decline_with_its_retry(customer, fakepay):
    fakepay.script.append("pending")
    for d in range(1, 6):
        live(jan(d))
    fakepay.settle("fp-1", "canceled", decline_code="insufficient_funds", decline_soft=True)
    live(jan(6))
    assert [(a.number, a.status) for a in AutopayAttempt.objects.order_by("number")] == [
        (1, AttemptStatus.DECLINED),
        (2, AttemptStatus.SUCCEEDED),
    ]
    assert get_balance(customer).balance == D("650.00") and fakepay.taken == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_the_gateway_notice_and_autopay_credit_the_same_payment_once(customer, fakepay):
    fakepay.script.append("timeout")
    for d in range(1, 6):
        live(jan(d))
    # The provider's notice of the payment arrives first (the webhook path uses the same intake).
    with at(jan(5), 12):
        actions.do_receive_payment(
            channel="fakepay", external_id="fp-1", amount="650.00", method=PaymentMethod.AUTOPAY, subscriber=customer
        )
    with at(jan(5), 13):
        actions.do_sync_autopay()
    attempt = AutopayAttempt.objects.get()
    assert attempt.status == AttemptStatus.SUCCEEDED and attempt.payment == Payment.objects.get(channel="fakepay")
    assert get_balance(customer).balance == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_an_answer_lost_past_the_key_lifetime_is_left_to_staff_never_sent_with_a_new_key(customer, fakepay):
    fakepay.script.append("timeout")
    for d in range(1, 6):
        live(jan(d))
    with at(jan(6), 12):  # 26 hours later: the provider may have forgotten the key
        assert actions.do_sync_autopay() == {"failed": 1}
    attempt = AutopayAttempt.objects.get()
    assert attempt.status == AttemptStatus.FAILED and attempt.finished_at is not None
    assert len(fakepay.charges()) == 1 and get_balance(customer).balance == D("0.00")
    for d in range(7, 20):
        live(jan(d))
    assert len(fakepay.charges()) == 1


@pytest.mark.django_db
def test_a_gateway_refusing_the_request_fails_the_try_without_a_retry(customer, fakepay):
    fakepay.script.append("broken")
    for d in range(1, 12):
        live(jan(d))
    attempt = AutopayAttempt.objects.get()
    assert attempt.status == AttemptStatus.FAILED and "invalid_request" in attempt.error
    assert len(fakepay.charges()) == 1 and get_balance(customer).balance == D("0.00")


@pytest.mark.django_db
def test_running_twice_the_same_day_charges_once_and_notifies_once(customer, fakepay):
    for d in range(1, 6):
        live(jan(d))
        live(jan(d))
    with at(jan(5), 18):
        actions.do_run_autopay()
    assert len(fakepay.charges()) == 1 and AutopayAttempt.objects.count() == 1
    assert [n[0] for n in notices(customer)] == [NoticeKind.AUTOPAY_REMINDER, NoticeKind.AUTOPAY_SUCCEEDED]
    assert get_balance(customer).balance == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_subscriber_who_paid_meanwhile_is_not_debited(customer, fakepay):
    for d in range(1, 4):
        live(jan(d))
    assert [n[0] for n in notices(customer)] == [NoticeKind.AUTOPAY_REMINDER]
    with at(jan(4), 15):
        cash(customer, "700.00", "c-2")
    live(jan(5))
    attempt = AutopayAttempt.objects.get()
    assert attempt.status == AttemptStatus.SKIPPED and attempt.amount is None
    assert fakepay.charges() == [] and get_balance(customer).balance == D("700.00")


@pytest.mark.django_db
def test_a_partly_paid_month_is_topped_up_to_whole_roubles(customer, fakepay):
    for d in range(1, 5):
        live(jan(d))
    with at(jan(4), 15):
        cash(customer, "200.50", "c-2")
    live(jan(5))
    assert AutopayAttempt.objects.get().amount == D("450.00")  # 449.50 short, rounded up
    assert get_balance(customer).balance == D("650.50")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_turning_autopay_off_cancels_the_scheduled_retry(customer, fakepay, admin):
    fakepay.script.append(("declined", "insufficient_funds", True))
    for d in range(1, 6):
        live(jan(d))
    with at(jan(5), 15):
        actions.do_disable_autopay(customer, acting_user=admin, reason="the subscriber asked")
    for d in range(6, 12):
        live(jan(d))
    assert [(a.number, a.status) for a in AutopayAttempt.objects.order_by("number")] == [
        (1, AttemptStatus.DECLINED),
        (2, AttemptStatus.CANCELLED),
    ]
    assert len(fakepay.charges()) == 1
    assert notices(customer)[-1][0] == NoticeKind.AUTOPAY_STOPPED
    assert notices(customer)[-1][2]["reason"] == "the subscriber asked"


@pytest.mark.django_db
def test_autopay_turned_on_after_the_debit_day_starts_next_month(subscriber, plan650, admin, fakepay):
    with at(jan(10), 9):
        do_activate_subscription(subscriber, plan=plan650, acting_user=admin)
        actions.do_enable_autopay(subscriber, method=link(subscriber), debit_day=5, acting_user=admin)
    for d in range(10, 32):
        live(jan(d))
    assert fakepay.charges() == []
    for d in range(1, 6):
        live(dt.date(JAN, 2, d))
    assert AutopayAttempt.objects.get().due_on == dt.date(JAN, 2, 5)
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_missed_debit_day_is_caught_up_within_the_window_only(customer, fakepay, settings):
    settings.ABONENT_AUTOPAY_CATCH_UP_DAYS = 2
    live(jan(7))  # the worker was down from the 1st to the 6th
    assert AutopayAttempt.objects.get().due_on == jan(5)
    live(dt.date(JAN, 2, 8))  # three days late: skipped, March is next
    assert AutopayAttempt.objects.count() == 1


@pytest.mark.django_db
def test_a_method_unlinked_elsewhere_stops_autopay(customer, fakepay, operator, django_capture_on_commit_callbacks):
    with at(jan(3)), django_capture_on_commit_callbacks(execute=True):
        actions.do_unlink_method(SavedMethod.objects.get(), acting_user=operator, reason="the subscriber called")
    assert not AutopayPlan.objects.get().enabled
    assert [n[0] for n in notices(customer)][-2:] == [NoticeKind.METHOD_UNLINKED, NoticeKind.AUTOPAY_STOPPED]
    live(jan(5))
    assert fakepay.charges() == []


@pytest.mark.django_db
def test_the_run_stops_autopay_whose_method_was_unlinked_without_the_event(customer, fakepay, operator):
    with at(jan(3)):
        actions.do_unlink_method(SavedMethod.objects.get(), acting_user=operator)  # on-commit handlers not run
    live(jan(5))
    assert fakepay.charges() == [] and not AutopayPlan.objects.get().enabled
    assert NoticeKind.AUTOPAY_STOPPED in [n[0] for n in notices(customer)]


@pytest.mark.django_db
def test_low_balance_mode_debits_the_day_before_the_fee_the_balance_will_not_cover(customer, fakepay, admin):
    with at(jan(1), 11):
        actions.do_enable_autopay(
            customer, method=SavedMethod.objects.get(), mode=AutopayMode.LOW_BALANCE, acting_user=admin
        )
    for d in range(1, 32):
        live(jan(d))
    reminder = PaymentNotice.objects.get(kind=NoticeKind.AUTOPAY_REMINDER)
    assert reminder.created_at.date() == jan(28) and reminder.payload["due_on"] == "2027-01-31"
    attempt = AutopayAttempt.objects.get()
    assert (attempt.due_on, attempt.amount, attempt.status) == (jan(31), D("650.00"), AttemptStatus.SUCCEEDED)
    live(dt.date(JAN, 2, 1))
    assert get_balance(customer).balance == D("0.00") and AutopayAttempt.objects.count() == 1
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_fixed_amount_with_a_cap(customer, fakepay, admin):
    with at(jan(1), 11):
        actions.do_enable_autopay(
            customer,
            method=SavedMethod.objects.get(),
            debit_day=5,
            amount_mode="fixed",
            fixed_amount="1000",
            max_amount="1000",
            acting_user=admin,
        )
    for d in range(1, 6):
        live(jan(d))
    assert AutopayAttempt.objects.get().amount == D("1000.00") and get_balance(customer).balance == D("1000.00")
    assert ledger.verify() == []


@pytest.fixture
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises the whole database")


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_charge_once(postgresql_only, customer, fakepay, together):
    for d in range(1, 5):
        live(jan(d))
    billing_testing.run_on(jan(5))

    def worker():
        with at(jan(5)):
            return actions.do_run_autopay()

    out = together(worker, worker, worker)
    assert all(isinstance(o, dict) for o in out), out
    assert len(fakepay.charges()) == 1 and AutopayAttempt.objects.count() == 1
    assert sum(o.get("succeeded", 0) for o in out) == 1
    assert PaymentNotice.objects.filter(kind=NoticeKind.AUTOPAY_SUCCEEDED).count() == 1
    assert get_balance(customer).balance == D("650.00") and fakepay.taken == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_following_up_a_lost_answer_credit_once(postgresql_only, customer, fakepay, together):
    fakepay.script.append("timeout")
    for d in range(1, 6):
        live(jan(d))

    def worker():
        with at(jan(5), 11):
            return actions.do_run_autopay()

    out = together(worker, worker)
    assert all(isinstance(o, dict) for o in out), out
    assert AutopayAttempt.objects.get().status == AttemptStatus.SUCCEEDED
    assert Payment.objects.filter(channel="fakepay").count() == 1 and len(fakepay.payments) == 1
    assert get_balance(customer).balance == D("650.00")
    assert ledger.verify() == []


# --- turning it on: who may, with what ------------------------------------------------------------------------


@pytest.mark.django_db
def test_turning_autopay_on_checks_the_method_the_day_and_the_amounts(
    subscriber, make_subscriber, make_staff, admin, fakepay
):
    mine = link(subscriber)
    other = make_subscriber(last_name="Петров")
    theirs = link(other, method_id="pm-2")

    def refused(**kw):
        kw.setdefault("method", mine)
        kw.setdefault("debit_day", 5)
        with pytest.raises(ValidationError) as exc:
            actions.do_enable_autopay(subscriber, acting_user=admin, **kw)
        return {field: [e.code for e in errors] for field, errors in exc.value.error_dict.items()}

    assert refused(method=theirs) == {"method": ["method_foreign"]}
    assert refused(debit_day=0) == {"debit_day": ["debit_day_invalid"]}
    assert refused(debit_day=32) == {"debit_day": ["debit_day_invalid"]}
    assert refused(mode="weekly") == {"mode": ["invalid_choice"]}
    assert refused(amount_mode="fixed") == {"fixed_amount": ["required"]}
    assert refused(amount_mode="fixed", fixed_amount="-5") == {"fixed_amount": ["amount_not_positive"]}
    assert refused(amount_mode="fixed", fixed_amount="20000") == {"fixed_amount": ["amount_over_cap"]}
    assert refused(max_amount="abc") == {"max_amount": ["invalid"]}
    assert AutopayPlan.objects.count() == 0

    cashier = make_staff(Role.CASHIER)
    with pytest.raises(PermissionDenied):
        actions.do_enable_autopay(subscriber, method=mine, debit_day=5, acting_user=cashier)
    assert AutopayPlan.objects.count() == 0

    actions.do_unlink_method(mine, acting_user=admin)
    assert refused() == {"method": ["method_unlinked"]}


@pytest.mark.django_db
def test_changing_the_method_cancels_tries_scheduled_with_the_old_one(customer, fakepay, admin):
    fakepay.script.append(("declined", "insufficient_funds", True))
    for d in range(1, 6):
        live(jan(d))
    with at(jan(5), 15):
        actions.do_enable_autopay(customer, method=link(customer, method_id="pm-new"), debit_day=5, acting_user=admin)
    assert AutopayAttempt.objects.get(number=2).status == AttemptStatus.CANCELLED
    assert [c[3] for c in fakepay.charges()] == ["pm-1"]


@pytest.mark.django_db
def test_a_debit_day_past_the_months_end_is_its_last_day(customer, fakepay, admin):
    with at(jan(1), 11):
        actions.do_enable_autopay(customer, method=SavedMethod.objects.get(), debit_day=31, acting_user=admin)
    for d in range(1, 32):
        live(jan(d))
    for d in range(1, 29):
        live(dt.date(JAN, 2, d))
    assert [(a.due_on, a.amount) for a in AutopayAttempt.objects.order_by("due_on")] == [
        (jan(31), D("650.00")),
        (dt.date(JAN, 2, 28), D("650.00")),
    ]
    reminders = PaymentNotice.objects.filter(kind=NoticeKind.AUTOPAY_REMINDER).order_by("created_at")
    assert [r.created_at.date() for r in reminders] == [jan(28), dt.date(JAN, 2, 25)]
    assert get_balance(customer).balance == D("650.00")  # March paid ahead
    assert ledger.verify() == []
