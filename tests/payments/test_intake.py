"""The one intake every channel uses: once per (channel, external id), never lost, conflicts kept for staff."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from abonent.billing import ledger
from abonent.billing.models import PromisedPayment
from abonent.billing.selectors import get_balance as balance_of
from abonent.core import clock
from abonent.payments import actions
from abonent.payments.models import Payment, PaymentConflict, PaymentMethod, PaymentStatus, Refund
from abonent.subscribers import actions as subscribers

D = Decimal


def receive(**kw):
    kw.setdefault("channel", "agent:qiwi")
    kw.setdefault("method", PaymentMethod.TERMINAL)
    return actions.do_receive_payment(**kw)


def suspense_total():
    return sum(p.amount for p in ledger.system_account("suspense").postings.all())


@pytest.mark.django_db
def test_a_payment_credits_the_account_once(subscriber):
    first = receive(external_id="t1", amount="650.00", account_ref=subscriber.account_number)
    again = receive(external_id="t1", amount="650", account_ref=f" {subscriber.account_number} ")
    assert first.created and not again.created and again.conflict is None
    assert again.payment.pk == first.payment.pk
    assert balance_of(subscriber).balance == D("650.00")
    assert first.payment.status == PaymentStatus.CREDITED and first.payment.subscriber == subscriber
    assert ledger.verify() == []


@pytest.mark.django_db
def test_the_same_id_with_another_amount_is_a_conflict_not_a_credit(subscriber):
    receive(external_id="t1", amount="650.00", account_ref=subscriber.account_number)
    for _ in range(3):
        other = receive(external_id="t1", amount="6500.00", account_ref=subscriber.account_number)
    assert other.conflict is not None and other.conflict.amount == D("6500.00")
    assert other.conflict.times == 3
    assert PaymentConflict.objects.count() == 1
    assert balance_of(subscriber).balance == D("650.00")
    # Another account with the same id is a conflict too: the terminal reused an id.
    assert receive(external_id="t1", amount="650.00", account_ref="999").conflict is not None


@pytest.mark.django_db
def test_unknown_and_closed_accounts_go_to_suspense_and_staff_assign_or_return(
    subscriber, make_subscriber, cashier, admin
):
    lost = receive(external_id="t2", amount="300.00", account_ref="12345")
    assert lost.payment.status == PaymentStatus.SUSPENSE and lost.payment.suspense_reason == "unknown_account"
    assert lost.payment.subscriber is None and suspense_total() == D("300.00")

    actions.do_assign_payment(lost.payment, subscriber=subscriber, acting_user=cashier, reason="called the payer")
    assert balance_of(subscriber).balance == D("300.00") and suspense_total() == 0
    # A wrong assignment undone puts it back in suspense; it can be assigned again.
    actions.do_cancel_payment(Payment.objects.get(pk=lost.payment.pk), reason="wrong person", acting_user=admin)
    assert balance_of(subscriber).balance == 0 and suspense_total() == D("300.00")
    again = actions.do_assign_payment(lost.payment, subscriber=subscriber, acting_user=cashier)
    assert again.status == PaymentStatus.CREDITED and balance_of(subscriber).balance == D("300.00")

    closed = make_subscriber(last_name="Петров")
    subscribers.do_close_subscriber(closed, reason="moved", acting_user=admin)
    gone = receive(external_id="t3", amount="100.00", account_ref=closed.account_number)
    assert gone.payment.suspense_reason == "closed_account" and gone.payment.subscriber == closed
    with pytest.raises(PermissionDenied):
        actions.do_return_payment(gone.payment, reason="returned by transfer", acting_user=cashier)
    refund = actions.do_return_payment(gone.payment, reason="returned by transfer", acting_user=admin)
    assert refund.amount == D("100.00")
    assert Payment.objects.get(pk=gone.payment.pk).status == PaymentStatus.RETURNED
    assert suspense_total() == 0
    assert ledger.verify() == []


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["-5", "0", "0.001", "abc", "1e3", "99999999999999", "NaN"])
def test_bad_amounts_are_refused_before_anything_is_written(subscriber, amount):
    with pytest.raises(ValidationError) as err:
        receive(external_id="bad", amount=amount, account_ref=subscriber.account_number)
    assert "amount" in err.value.error_dict
    assert not Payment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("external_id", ["", "   ", "x" * 101, "a\x00b"])
def test_bad_ids_are_refused(subscriber, external_id):
    with pytest.raises(ValidationError) as err:
        receive(external_id=external_id, amount="1", account_ref=subscriber.account_number)
    assert "external_id" in err.value.error_dict


@pytest.mark.django_db
def test_a_payment_repays_an_open_promised_payment(subscriber, make_plan, admin):
    from abonent.billing import actions as billing
    from abonent.catalog.models import PromisedPaymentPolicy

    policy = PromisedPaymentPolicy.objects.create(name="p", max_amount=D("500"), days=3, max_debt=D("1000"))
    plan = make_plan("p", "650.00", promised_payment_policy=policy)
    billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    billing.do_take_promised_payment(subscriber, acting_user=admin, amount="300")
    receive(external_id="t9", amount="1000.00", account_ref=subscriber.account_number)
    assert PromisedPayment.objects.get().status == "repaid"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_payment_the_balance_cannot_hold_waits_in_suspense(subscriber):
    # BALANCE_LIMIT is what the balance column holds: two payments near it overflow it.
    for n in range(10):
        receive(external_id=f"big{n}", amount="9999999999.99", account_ref=subscriber.account_number)
    over = receive(external_id="big10", amount="9999999999.99", account_ref=subscriber.account_number)
    assert over.payment.status == PaymentStatus.SUSPENSE and over.payment.suspense_reason == "balance_limit"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_refunds_stay_within_the_payment_and_the_balance(subscriber, admin, cashier):
    paid = receive(external_id="r1", amount="1000.00", account_ref=subscriber.account_number).payment
    with pytest.raises(PermissionDenied):
        actions.do_refund_payment(paid, amount="100", reason="x", acting_user=cashier, key="k0")
    first = actions.do_refund_payment(paid, amount="400", reason="double payment", acting_user=admin, key="k1")
    assert actions.do_refund_payment(paid, amount="400", reason="double payment", acting_user=admin, key="k1") == first
    with pytest.raises(ValidationError) as err:
        actions.do_refund_payment(paid, amount="600.01", reason="x", acting_user=admin, key="k2")
    assert err.value.error_dict["amount"][0].code == "refund_exceeds_payment"
    with pytest.raises(ValidationError) as err:
        actions.do_refund_payment(paid, amount="1", reason="", acting_user=admin, key="k3")
    assert "reason" in err.value.error_dict
    from abonent.billing import actions as billing
    from abonent.catalog.models import Service

    service = Service.objects.create(code="cable", name="Кабель", kind="other", one_off_price=D("500"))
    billing.do_charge_one_off(subscriber, service=service, acting_user=admin)
    with pytest.raises(ValidationError) as err:
        actions.do_refund_payment(paid, amount="200", reason="x", acting_user=admin, key="k4")
    assert err.value.error_dict["amount"][0].code == "refund_exceeds_balance"
    actions.do_refund_payment(paid, amount="100", reason="x", acting_user=admin, key="k5")
    assert balance_of(subscriber).balance == 0
    assert Payment.objects.get(pk=paid.pk).refunded_amount == D("500.00")
    assert Refund.objects.count() == 2
    with pytest.raises(ValidationError):
        actions.do_cancel_payment(paid, reason="x", acting_user=admin)  # refunded: no cancel
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_cashier_cancels_only_their_own_payment_of_today(subscriber, cashier, make_staff, admin):
    from abonent.staff.permissions import Role

    other = make_staff(Role.CASHIER, username="other")
    with clock.travel_to(dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)):
        paid = receive(
            channel="cash", method="cash", external_id="c1", amount="650", subscriber=subscriber, acting_user=cashier
        ).payment
        with pytest.raises(ValidationError) as err:
            actions.do_cancel_payment(paid, reason="typo", acting_user=other)
        assert err.value.code == "cancel_not_allowed"
    with clock.travel_to(dt.datetime(2026, 12, 2, 10, tzinfo=dt.UTC)):
        assert not actions.can_cancel(cashier, paid)
        assert actions.can_cancel(admin, paid)
    with clock.travel_to(dt.datetime(2026, 12, 1, 11, tzinfo=dt.UTC)):
        done = actions.do_cancel_payment(paid, reason="typo", acting_user=cashier)
    assert done.status == PaymentStatus.CANCELLED and balance_of(subscriber).balance == 0
    with pytest.raises(ValidationError):
        actions.do_cancel_payment(done, reason="again", acting_user=admin)
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_five_copies_of_one_notice_at_once_credit_once(subscriber, together):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises the whole database")
    out = together(*[lambda: receive(external_id="same", amount="650.00", account_ref=subscriber.account_number)] * 5)
    assert all(isinstance(o, actions.Intake) for o in out), out
    assert sum(o.created for o in out) == 1
    assert {o.payment.pk for o in out} == {Payment.objects.get().pk}
    assert balance_of(subscriber).balance == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_a_conflicting_copy_racing_the_first_is_a_conflict(subscriber, together):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises the whole database")
    out = together(
        lambda: receive(external_id="race", amount="650.00", account_ref=subscriber.account_number),
        lambda: receive(external_id="race", amount="65.00", account_ref=subscriber.account_number),
    )
    assert all(isinstance(o, actions.Intake) for o in out), out
    assert sum(o.created for o in out) == 1 and sum(o.conflict is not None for o in out) == 1
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_two_refunds_at_once_never_exceed_the_payment(subscriber, admin, together):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises the whole database")
    paid = receive(external_id="rr", amount="1000.00", account_ref=subscriber.account_number).payment
    out = together(
        lambda: actions.do_refund_payment(paid, amount="700", reason="a", acting_user=admin, key="a"),
        lambda: actions.do_refund_payment(paid, amount="700", reason="b", acting_user=admin, key="b"),
    )
    assert sum(isinstance(o, Refund) for o in out) == 1, out
    assert Payment.objects.get(pk=paid.pk).refunded_amount == D("700.00")
    assert ledger.verify() == []
