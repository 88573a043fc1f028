"""Adversarial review of the payments intake, suspense, refunds and cancellation (helper attack1).

The tests in the first part are FINDINGS: each fails on the code as reviewed, and its comment says what breaks and
why it matters. The second part ("held") are attacks that the code withstood; they stay as regression tests.
"""

import contextlib
import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abonent.billing import actions as billing
from abonent.billing import ledger
from abonent.billing.selectors import get_balance as balance_of
from abonent.catalog.models import Service
from abonent.core import clock
from abonent.payments import actions, channels
from abonent.payments.models import Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus
from abonent.staff.permissions import Role
from abonent.subscribers import actions as subscribers

D = Decimal


def receive(**kw):
    kw.setdefault("channel", "agent:qiwi")
    kw.setdefault("method", PaymentMethod.TERMINAL)
    return actions.do_receive_payment(**kw)


def suspense_total():
    return sum(p.amount for p in ledger.system_account("suspense").postings.all())


def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers and row locks need PostgreSQL; SQLite serialises the whole database")


# ---------------------------------------------------------------------------------------------------------------
# Findings (each test fails on the reviewed code)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["1" + "0" * 30, "99999999999999999999999999.999"])
def test_an_amount_with_too_many_digits_is_a_validation_error_not_a_crash(subscriber, admin, amount):
    # BREAKS: `_amount` catches ValueError only; `quantize` of a number longer than Decimal's 28-digit context
    # raises decimal.InvalidOperation (an ArithmeticError), so a terminal sending "1000…0" (31 digits) gets a 500
    # instead of a 4xx with the field `amount`. The same parser guards refunds, so a refund form gets a 500 too.
    with pytest.raises(ValidationError) as err:
        receive(external_id="huge", amount=amount, account_ref=subscriber.account_number)
    assert "amount" in err.value.error_dict
    paid = receive(external_id="ok", amount="100", account_ref=subscriber.account_number).payment
    with pytest.raises(ValidationError) as err:
        actions.do_refund_payment(paid, amount=amount, reason="x", acting_user=admin, key="huge")
    assert "amount" in err.value.error_dict
    assert Payment.objects.count() == 1 and not Refund.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["0.005", "100.005", "100.999", D("650.0049")])
def test_fractions_of_a_kopeck_are_refused_not_rounded(subscriber, amount):
    # BREAKS: the amount is rounded half-up to kopecks (`quantize`) instead of refused: "0.005" credits 0.01 and
    # "100.005" credits 100.01 — money that never arrived (a channel cannot pay half a kopeck), and "650.0049"
    # silently drops part of what the channel claims it paid. A channel sending sub-kopeck amounts is broken or
    # probing; the intake must refuse it with `amount`, as it refuses "0.001".
    with pytest.raises(ValidationError) as err:
        receive(external_id="frac", amount=amount, account_ref=subscriber.account_number)
    assert "amount" in err.value.error_dict
    assert not Payment.objects.exists() and balance_of(subscriber).balance == 0


@pytest.mark.django_db
def test_a_refund_of_a_fraction_of_a_kopeck_is_refused_not_rounded(subscriber, admin):
    # BREAKS: as above, for refunds: "0.005" refunds a whole kopeck (rounded half-up) instead of being refused.
    paid = receive(external_id="p1", amount="100", account_ref=subscriber.account_number).payment
    with pytest.raises(ValidationError) as err:
        actions.do_refund_payment(paid, amount="0.005", reason="x", acting_user=admin, key="k")
    assert "amount" in err.value.error_dict
    assert balance_of(subscriber).balance == D("100.00")


@pytest.mark.django_db
def test_a_naive_received_at_is_a_validation_error(subscriber):
    # BREAKS: `received_at` without a timezone (a terminal's txn_date parsed without one) reaches
    # `timezone.localdate`, which raises a bare ValueError: a 500 for bad input instead of a field error.
    with pytest.raises(ValidationError) as err:
        receive(
            external_id="naive",
            amount="100",
            account_ref=subscriber.account_number,
            received_at=dt.datetime(2026, 12, 1, 10, 0),
        )
    assert "received_at" in err.value.error_dict
    assert not Payment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("channel", ["", "x" * 41, "agent:qiwi:extra", "cash\n"])
def test_the_intake_refuses_a_bad_channel(subscriber, channel):
    # BREAKS: `channels.validate_channel` exists but nothing calls it: the intake takes an empty channel, a channel
    # with a second ':' (whose ledger key `payment:<channel>:<id>` can then collide with another channel's, see
    # below) and, on PostgreSQL, a 41-character channel ends in a DataError (500) instead of a refusal.
    with pytest.raises((ValidationError, ValueError)):
        receive(channel=channel, external_id="c1", amount="100", account_ref=subscriber.account_number)
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_two_channels_payments_with_colons_do_not_collide(subscriber):
    # BREAKS: the ledger key is `payment:<channel>:<external_id>` with ':' unescaped, so channel "agent:qiwi"
    # id "1:x" and channel "agent" (validate_channel accepts it) id "qiwi:1:x" are the same key. The second,
    # real payment then fails with IdempotencyConflict (a 500): money that arrived is not recorded at all.
    # Statement and terminal ids with ':' exist (document keys like "2026-12-01:17").
    receive(channel="agent:qiwi", external_id="1:x", amount="100", account_ref=subscriber.account_number)
    second = receive(channel="agent", external_id="qiwi:1:x", amount="100", account_ref=subscriber.account_number)
    assert second.created
    assert balance_of(subscriber).balance == D("200.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_the_same_id_for_another_subscriber_is_a_conflict(subscriber, make_subscriber, cashier):
    # BREAKS: `_repeat` compares the amount and `account_ref` only. A channel that names the subscriber itself
    # (the cash desk, a statement line matched by the importer) and repeats an id for ANOTHER subscriber is told
    # "already taken" with no conflict: the second subscriber's money is silently dropped (they are never credited
    # and no PaymentConflict tells staff) — e.g. a re-imported statement whose line was re-matched.
    other = make_subscriber(last_name="Сидоров")
    receive(channel="bank", method="bank", external_id="doc-17", amount="500", subscriber=subscriber)
    again = receive(channel="bank", method="bank", external_id="doc-17", amount="500", subscriber=other)
    assert not again.created
    assert again.conflict is not None, "another subscriber with the same id must be a conflict, not a repeat"


@pytest.mark.django_db
def test_the_intake_checks_the_staff_member_taking_the_money(make_subscriber, make_staff, branch, other_branch):
    # BREAKS: `do_receive_payment` checks no permission at all when `acting_user` is a person. An operator (no
    # PAYMENT_TAKE) can credit money, and a cashier limited to branch Тверь can post cash to a subscriber of
    # branch Клин (taken_by = that cashier), so the cash desk's permission and branch limits depend on every
    # caller remembering to check — every other action here checks for itself.
    there = make_subscriber(branch_obj=other_branch)
    limited = make_staff(Role.CASHIER, username="tver-cashier", branches=[branch])
    operator = make_staff(Role.OPERATOR, username="op")
    with pytest.raises(PermissionDenied):
        receive(channel="cash", method="cash", external_id="c1", amount="100", subscriber=there, acting_user=limited)
    with pytest.raises(PermissionDenied):
        receive(channel="cash", method="cash", external_id="c2", amount="100", subscriber=there, acting_user=operator)
    assert balance_of(there).balance == 0


@pytest.mark.django_db
def test_a_branch_limited_admin_cannot_return_another_branch_s_payment(
    make_subscriber, make_staff, admin, branch, other_branch
):
    # BREAKS: `do_return_payment` checks PAYMENT_REFUND but not the branch of the payment's subscriber. Money that
    # arrived for a closed subscriber of branch Клин sits in suspense with that subscriber; an administrator
    # limited to branch Тверь can send it out of the company (and see it), bypassing `check_branch`.
    there = make_subscriber(branch_obj=other_branch, last_name="Клинский")
    subscribers.do_close_subscriber(there, reason="moved", acting_user=admin)
    lost = receive(external_id="closed1", amount="300", account_ref=there.account_number).payment
    assert lost.status == PaymentStatus.SUSPENSE and lost.subscriber_id == there.pk
    tver_admin = make_staff(Role.ADMIN, username="tver-admin", branches=[branch])
    with pytest.raises(PermissionDenied):
        actions.do_return_payment(lost, reason="back to the payer", acting_user=tver_admin)
    assert Payment.objects.get(pk=lost.pk).status == PaymentStatus.SUSPENSE


@pytest.mark.django_db
def test_a_branch_limited_cashier_cannot_take_another_branch_s_suspense_money(
    make_subscriber, make_staff, admin, branch, other_branch
):
    # BREAKS: `do_assign_payment` checks the branch of the TARGET subscriber only. A payment in suspense because
    # its subscriber (branch Клин) is closed still belongs to that subscriber's branch; a cashier of branch Тверь
    # moves it onto a Тверь account of their choosing.
    there = make_subscriber(branch_obj=other_branch, last_name="Клинский")
    subscribers.do_close_subscriber(there, reason="moved", acting_user=admin)
    lost = receive(external_id="closed2", amount="300", account_ref=there.account_number).payment
    here = make_subscriber(last_name="Тверской")
    tver_cashier = make_staff(Role.CASHIER, username="tver-cashier", branches=[branch])
    with pytest.raises(PermissionDenied):
        actions.do_assign_payment(lost, subscriber=here, acting_user=tver_cashier)
    assert balance_of(here).balance == 0


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "   ", "k" * 201, "a\x00b"])
def test_a_bad_refund_key_is_a_validation_error(subscriber, admin, key):
    # BREAKS: the refund key is not validated. An empty key is accepted (and then blocks every other payment's
    # refund with the empty key as "reused"); a 201-character key is a DataError on PostgreSQL and silently
    # stored on SQLite; a NUL is a ValueError from psycopg. Bad input must be a ValidationError with `key`.
    paid = receive(external_id="p1", amount="100", account_ref=subscriber.account_number).payment
    with pytest.raises(ValidationError) as err:
        actions.do_refund_payment(paid, amount="10", reason="x", acting_user=admin, key=key)
    assert "key" in err.value.error_dict
    assert Payment.objects.get(pk=paid.pk).refunded_amount == 0


@pytest.mark.django_db
def test_a_refund_key_cannot_block_another_payment_s_return(subscriber, admin):
    # BREAKS: `do_return_payment` names its refund `return:<payment id>` in the same unique key space as the
    # caller-chosen refund keys (the API's Idempotency-Key). A refund whose key happens to be "return:<id>" makes
    # returning that suspense payment an IntegrityError (500) for ever: the money is stuck in suspense. And a
    # return given an explicit key already used is an IntegrityError too, not `idempotency_key_reused`.
    lost = receive(external_id="s1", amount="300", account_ref="000-unknown").payment
    paid = receive(external_id="p1", amount="100", account_ref=subscriber.account_number).payment
    actions.do_refund_payment(paid, amount="10", reason="x", acting_user=admin, key=f"return:{lost.pk}")
    refund = actions.do_return_payment(lost, reason="back to the payer", acting_user=admin, key="ret")
    assert refund.amount == D("300.00") and suspense_total() == 0

    # (Fixed by giving refunds and returns key spaces of their own; a return's key reused for another return:)
    lost2 = receive(external_id="s2", amount="50", account_ref="000-unknown").payment
    with pytest.raises(ValidationError) as err:
        actions.do_return_payment(lost2, reason="back", acting_user=admin, key="ret")
    assert err.value.code == "idempotency_key_reused"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_return_retried_with_its_key_answers_with_the_first_return(admin):
    # BREAKS: `do_return_payment` takes a `key` but never looks it up: the retry of a return that went through
    # (the operator's double click, an API client's retry after a timeout) gets `not_in_suspense` instead of the
    # first Refund, so the caller cannot tell "done" from "refused".
    lost = receive(external_id="s1", amount="300", account_ref="000-unknown").payment
    first = actions.do_return_payment(lost, reason="back", acting_user=admin, key="ret-1")
    again = actions.do_return_payment(lost, reason="back", acting_user=admin, key="ret-1")
    assert again.pk == first.pk


@pytest.mark.django_db
def test_a_returned_payment_counts_its_return_as_refunded(admin):
    # BREAKS: a suspense payment returned gets a SUCCEEDED Refund of its whole amount, but its `refunded_amount`
    # stays 0: "refunded_amount == sum of succeeded + pending refunds" does not hold, and a report summing
    # `refunded_amount` (or `amount - refunded_amount` as money kept) counts returned money as kept.
    lost = receive(external_id="s1", amount="300", account_ref="000-unknown").payment
    actions.do_return_payment(lost, reason="back", acting_user=admin)
    lost.refresh_from_db()
    refunds = sum(r.amount for r in lost.refunds.filter(status__in=[RefundStatus.SUCCEEDED, RefundStatus.PENDING]))
    assert lost.refunded_amount == refunds == D("300.00")


@pytest.mark.django_db(transaction=True)
def test_the_same_refund_retried_while_the_first_runs_answers_with_the_first(subscriber, admin, together):
    # BREAKS: the key is looked up before the payment's lock. Two requests with the SAME key (an API client's
    # retry after a timeout, a double-submitted form) both miss it; the second waits on the lock, then sees
    # only 300 left and fails with `refund_exceeds_payment` instead of answering with the first refund. The
    # client is told its refund failed although it went through (and may pay the customer out by hand).
    postgres_only()
    paid = receive(external_id="rr", amount="1000.00", account_ref=subscriber.account_number).payment
    out = together(
        *[lambda: actions.do_refund_payment(paid, amount="700", reason="a", acting_user=admin, key="same")] * 2
    )
    assert all(isinstance(o, Refund) for o in out), out
    assert out[0].pk == out[1].pk
    assert Payment.objects.get(pk=paid.pk).refunded_amount == D("700.00")
    assert ledger.verify() == []


HOLD = 8.0  # seconds another connection holds the lock


def _hold_lock(sql, params, locked, release):
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
            locked.set()
            release.wait(HOLD)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("what", ["intake under LOCK TABLE", "refund under a row lock"])
def test_a_hung_database_does_not_hang_the_payment_for_ever(subscriber, admin, what):
    # BREAKS: no wait on the database has a deadline: there is no lock_timeout / statement_timeout in the
    # PostgreSQL options and `select_for_update()` has no nowait/timeout. With `LOCK TABLE payments_payment` held
    # by another connection (a migration, a stuck report, a forgotten psql session), a terminal's `pay` waits until
    # that connection lets go — for ever if it never does — while the terminal retries and piles up connections
    # until the pool is exhausted. The same for a refund while something holds the payment's row. Here the lock is
    # held for HOLD seconds and the action waited the whole time; it must give up well before with an error.
    postgres_only()
    paid = receive(external_id="p0", amount="100", account_ref=subscriber.account_number).payment
    if what.startswith("intake"):
        sql, params = "LOCK TABLE payments_payment IN ACCESS EXCLUSIVE MODE", []

        def act():
            return receive(external_id="p1", amount="100", account_ref=subscriber.account_number)
    else:
        sql, params = "SELECT id FROM payments_payment WHERE id = %s FOR UPDATE", [paid.pk]

        def act():
            return actions.do_refund_payment(paid, amount="10", reason="x", acting_user=admin, key="k")

    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(sql, params, locked, release))
    holder.start()
    assert locked.wait(10)
    started = time.monotonic()
    with contextlib.suppress(Exception):  # any error is fine here: what matters is how long it took
        act()
    waited = time.monotonic() - started
    release.set()
    holder.join(30)
    assert waited < HOLD - 3, f"{what}: waited {waited:.1f}s for a lock held {HOLD}s: no deadline"
    assert ledger.verify() == []


# ---------------------------------------------------------------------------------------------------------------
# Property test: random sequences of receive / assign / return / refund / finish / cancel / fee
# ---------------------------------------------------------------------------------------------------------------

GATEWAY = "attackpay"

OPS = st.one_of(
    st.tuples(
        st.just("receive"),
        st.integers(0, 2),
        st.sampled_from(["100", "250.50", "0.01", "1000"]),
        st.integers(0, 5),
        st.booleans(),
    ),
    st.tuples(st.just("assign"), st.integers(0, 7), st.integers(0, 1)),
    st.tuples(st.just("return"), st.integers(0, 7)),
    st.tuples(
        st.just("refund"), st.integers(0, 7), st.sampled_from(["0.01", "50", "100", "250.50", "999"]), st.integers(0, 3)
    ),
    st.tuples(st.just("finish"), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 7)),
    st.tuples(st.just("fee"), st.integers(0, 1), st.sampled_from(["10", "300"])),
)


def _check_invariants(subs, service_fees):
    problems = ledger.verify()
    assert problems == [], problems
    payments = list(Payment.objects.all())
    for sub in subs:
        kept = sum(
            (p.amount - p.refunded_amount for p in payments if p.subscriber_id == sub.pk and p.status == "credited"),
            D("0"),
        )
        assert balance_of(sub).balance == kept - service_fees[sub.pk], sub
    assert suspense_total() == sum((p.amount for p in payments if p.status == "suspense"), D("0"))
    for p in payments:
        live = sum(r.amount for r in p.refunds.filter(status__in=[RefundStatus.SUCCEEDED, RefundStatus.PENDING]))
        if p.status != PaymentStatus.RETURNED:  # returns: see test_a_returned_payment_counts_its_return_as_refunded
            assert p.refunded_amount == live, p
        assert 0 <= p.refunded_amount <= p.amount
        if p.status == PaymentStatus.CANCELLED:
            assert live == 0, p
    for channel in {p.channel for p in payments}:
        account = channels.channel_account(channel)
        total = sum((x.amount for x in account.postings.all()), D("0"))
        out = sum(
            (
                p.refunded_amount - p.amount
                for p in payments
                if p.channel == channel and p.status in ("credited", "suspense")
            ),
            D("0"),
        )
        assert total == out, channel


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OPS, min_size=1, max_size=14))
def test_random_sequences_keep_the_money_invariants(make_subscriber, admin, ops):
    channels.register_gateway(GATEWAY, refund=lambda refund_id: None)
    try:
        with transaction.atomic():
            _run_sequence(make_subscriber, admin, ops)
            transaction.set_rollback(True)
    finally:
        channels._online_refunds.pop(GATEWAY, None)
        channels._clearing_channels.discard(GATEWAY)


def _run_sequence(make_subscriber, admin, ops):
    subs = [make_subscriber(last_name="А"), make_subscriber(last_name="Б")]
    service = Service.objects.create(code="fee", name="Fee", kind="other", one_off_price=D("10"))
    fees = {s.pk: D("0") for s in subs}
    refs = [subs[0].account_number, subs[1].account_number, "no-such-account"]
    for op in ops:
        payments = list(Payment.objects.order_by("pk"))

        def pick(i, payments=payments):
            return payments[i % len(payments)] if payments else None

        try:
            with transaction.atomic():
                if op[0] == "receive":
                    _kind, ref, amount, ext, gateway = op
                    receive(
                        channel=GATEWAY if gateway else "agent:qiwi",
                        method=PaymentMethod.ONLINE if gateway else PaymentMethod.TERMINAL,
                        external_id=f"e{ext}",
                        amount=amount,
                        account_ref=refs[ref],
                    )
                elif op[0] == "assign" and pick(op[1]):
                    actions.do_assign_payment(pick(op[1]), subscriber=subs[op[2]], acting_user=admin)
                elif op[0] == "return" and pick(op[1]):
                    actions.do_return_payment(pick(op[1]), reason="back", acting_user=admin)
                elif op[0] == "refund" and pick(op[1]):
                    actions.do_refund_payment(pick(op[1]), amount=op[2], reason="r", acting_user=admin, key=f"k{op[3]}")
                elif op[0] == "finish":
                    pending = list(Refund.objects.filter(status=RefundStatus.PENDING).order_by("pk"))
                    if pending:
                        actions.do_finish_refund(pending[op[1] % len(pending)], succeeded=op[2])
                elif op[0] == "cancel" and pick(op[1]):
                    actions.do_cancel_payment(pick(op[1]), reason="oops", acting_user=admin)
                elif op[0] == "fee":
                    billing.do_charge_one_off(subs[op[1]], service=service, acting_user=admin, amount=op[2])
                    fees[subs[op[1]].pk] += D(op[2])
        except ValidationError:
            pass
        _check_invariants(subs, fees)


# ---------------------------------------------------------------------------------------------------------------
# Held: attacks the code withstood (kept as regression tests)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "amount", ["-0", "-0.00", D("-0"), "Infinity", D("Infinity"), D("NaN"), "1_000", "１００", "٥", 0.5, True, "1e3"]
)
def test_held_absurd_amounts_are_refused(subscriber, amount):
    with pytest.raises(ValidationError) as err:
        receive(external_id="bad", amount=amount, account_ref=subscriber.account_number)
    assert "amount" in err.value.error_dict
    assert not Payment.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [" 5 ", 5, D("5"), "5,00"])
def test_held_plain_amounts_are_five_roubles(subscriber, amount):
    receive(external_id="five", amount=amount, account_ref=subscriber.account_number)
    assert balance_of(subscriber).balance == D("5.00")


@pytest.mark.django_db
def test_held_external_id_whitespace_and_case(subscriber):
    receive(external_id="t1", amount="100", account_ref=subscriber.account_number)
    for same in [" t1", "t1 ", "\tt1\n", "t1\u3000"]:
        assert not receive(external_id=same, amount="100", account_ref=subscriber.account_number).created
    # Another case or script is another id (providers' ids are case-sensitive): credited once each.
    assert receive(external_id="T1", amount="100", account_ref=subscriber.account_number).created
    assert receive(external_id="ｔ１", amount="100", account_ref=subscriber.account_number).created
    for bad in ["t\u200b1", "t\xa01", "t1\u2028x"]:
        with pytest.raises(ValidationError):
            receive(external_id=bad, amount="100", account_ref=subscriber.account_number)
    assert balance_of(subscriber).balance == D("300.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_held_account_refs_with_spaces_inside_go_to_suspense(subscriber, make_subscriber):
    other = make_subscriber(last_name="Другой")
    number = other.account_number
    for n, ref in enumerate([f"{number[:2]} {number[2:]}", f"0{number}", f"{number}\u00a0", "１" + number[1:]]):
        got = receive(external_id=f"s{n}", amount="10", account_ref=ref)
        assert got.payment.status == PaymentStatus.SUSPENSE or got.payment.subscriber == other
    assert balance_of(subscriber).balance == 0
    assert ledger.verify() == []


@pytest.mark.django_db
def test_held_state_sequences(subscriber, make_subscriber, admin):
    lost = receive(external_id="s1", amount="300", account_ref="nobody").payment
    actions.do_assign_payment(lost, subscriber=subscriber, acting_user=admin)
    actions.do_cancel_payment(lost, reason="wrong", acting_user=admin)
    actions.do_assign_payment(lost, subscriber=subscriber, acting_user=admin)
    actions.do_refund_payment(lost, amount="100", reason="x", acting_user=admin, key="k1")
    with pytest.raises(ValidationError):
        actions.do_cancel_payment(lost, reason="again", acting_user=admin)
    assert balance_of(subscriber).balance == D("200.00") and suspense_total() == 0

    gone = receive(external_id="s2", amount="50", account_ref="nobody").payment
    actions.do_return_payment(gone, reason="back", acting_user=admin)
    with pytest.raises(ValidationError):
        actions.do_assign_payment(gone, subscriber=subscriber, acting_user=admin)
    with pytest.raises(ValidationError):
        actions.do_refund_payment(gone, amount="1", reason="x", acting_user=admin, key="k2")

    paid = receive(external_id="p1", amount="100", account_ref=subscriber.account_number).payment
    for n in range(9):
        actions.do_refund_payment(paid, amount="11.11", reason="x", acting_user=admin, key=f"part{n}")
    with pytest.raises(ValidationError) as err:
        actions.do_refund_payment(paid, amount="0.02", reason="x", acting_user=admin, key="over")
    assert err.value.error_dict["amount"][0].code == "refund_exceeds_payment"
    actions.do_refund_payment(paid, amount="0.01", reason="x", acting_user=admin, key="last")
    with pytest.raises(ValidationError):  # the same key for another payment or amount
        actions.do_refund_payment(lost, amount="0.01", reason="x", acting_user=admin, key="last")
    with pytest.raises(ValidationError):
        actions.do_refund_payment(paid, amount="0.02", reason="x", acting_user=admin, key="last")

    cancelled = receive(external_id="p2", amount="100", account_ref=subscriber.account_number).payment
    actions.do_cancel_payment(cancelled, reason="typo", acting_user=admin)
    with pytest.raises(ValidationError):
        actions.do_refund_payment(cancelled, amount="1", reason="x", acting_user=admin, key="k3")
    assert balance_of(subscriber).balance == D("200.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_held_branch_limits_on_cancel_refund_assign(make_subscriber, make_staff, admin, branch, other_branch):
    there = make_subscriber(branch_obj=other_branch)
    paid = receive(external_id="p1", amount="100", account_ref=there.account_number).payment
    tver_admin = make_staff(Role.ADMIN, username="tver-admin", branches=[branch])
    tver_cashier = make_staff(Role.CASHIER, username="tver-cashier", branches=[branch])
    for call in [
        lambda: actions.do_refund_payment(paid, amount="1", reason="x", acting_user=tver_admin, key="k"),
        lambda: actions.do_cancel_payment(paid, reason="x", acting_user=tver_admin),
        lambda: actions.do_cancel_payment(paid, reason="x", acting_user=tver_cashier),
    ]:
        with pytest.raises(PermissionDenied):
            call()
    lost = receive(external_id="s1", amount="100", account_ref="nobody").payment
    with pytest.raises(PermissionDenied):
        actions.do_assign_payment(lost, subscriber=there, acting_user=tver_cashier)
    assert balance_of(there).balance == D("100.00")


@pytest.mark.django_db(transaction=True)
def test_held_concurrent_state_changes(subscriber, make_subscriber, admin, together):
    postgres_only()
    other = make_subscriber(last_name="Другой")
    # Refund and cancel at once: exactly one wins.
    paid = receive(external_id="p1", amount="100", account_ref=subscriber.account_number).payment
    out = together(
        lambda: actions.do_refund_payment(paid, amount="100", reason="x", acting_user=admin, key="k1"),
        lambda: actions.do_cancel_payment(paid, reason="x", acting_user=admin),
    )
    assert sum(not isinstance(o, Exception) for o in out) == 1, out
    assert all(not isinstance(o, Exception) or isinstance(o, ValidationError) for o in out), out
    # Assign and return at once; two assigns to different subscribers at once.
    lost = receive(external_id="s1", amount="300", account_ref="nobody").payment
    out = together(
        lambda: actions.do_assign_payment(lost, subscriber=subscriber, acting_user=admin),
        lambda: actions.do_return_payment(lost, reason="back", acting_user=admin),
    )
    assert sum(not isinstance(o, Exception) for o in out) == 1, out
    lost2 = receive(external_id="s2", amount="300", account_ref="nobody").payment
    out = together(
        lambda: actions.do_assign_payment(lost2, subscriber=subscriber, acting_user=admin),
        lambda: actions.do_assign_payment(lost2, subscriber=other, acting_user=admin),
    )
    assert sum(not isinstance(o, Exception) for o in out) == 1, out
    # Five copies of one suspense notice.
    out = together(*[lambda: receive(external_id="s3", amount="70", account_ref="nobody")] * 5)
    assert all(isinstance(o, actions.Intake) for o in out) and sum(o.created for o in out) == 1, out
    # A refund racing a fee: never below zero because of the refund.
    service = Service.objects.create(code="fee", name="Fee", kind="other", one_off_price=D("60"))
    paid2 = receive(external_id="p2", amount="100", account_ref=other.account_number).payment
    before = balance_of(other).balance  # 100, or 400 when the race above assigned lost2 to other
    out = together(
        lambda: actions.do_refund_payment(paid2, amount="100", reason="x", acting_user=admin, key="k2"),
        lambda: billing.do_charge_one_off(other, service=service, acting_user=admin),
    )
    assert balance_of(other).balance in (before - 160, before - 60), out
    if before == 100:
        assert balance_of(other).balance in (D("-60.00"), D("40.00")), out
    if isinstance(out[0], Refund):
        assert not isinstance(out[1], Exception)
    # Two refunds of two payments of one subscriber whose balance holds only one of them.
    third = make_subscriber(last_name="Третий")
    a = receive(external_id="pa", amount="500", account_ref=third.account_number).payment
    b = receive(external_id="pb", amount="500", account_ref=third.account_number).payment
    billing.do_charge_one_off(third, service=service, acting_user=admin, amount="400")
    out = together(
        lambda: actions.do_refund_payment(a, amount="500", reason="x", acting_user=admin, key="ka"),
        lambda: actions.do_refund_payment(b, amount="500", reason="x", acting_user=admin, key="kb"),
    )
    assert sum(isinstance(o, Refund) for o in out) == 1, out
    assert balance_of(third).balance == D("100.00")
    assert suspense_total() == sum(p.amount for p in Payment.objects.filter(status="suspense"))
    assert ledger.verify() == []


# ---------------------------------------------------------------------------------------------------------------
# More findings
# ---------------------------------------------------------------------------------------------------------------


def _promised(subscriber, make_plan, admin, *, amount="500"):
    from abonent.catalog.models import PromisedPaymentPolicy

    policy = PromisedPaymentPolicy.objects.create(name="p", max_amount=D("500"), days=5, max_debt=D("100000"))
    plan = make_plan("p", "650.00", promised_payment_policy=policy)
    billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    return billing.do_take_promised_payment(subscriber, acting_user=admin, amount=amount)


@pytest.mark.django_db
def test_a_refund_does_not_hand_out_the_promised_payment_credit(subscriber, make_plan, admin):
    # BREAKS: the refund's balance check counts the open promised payment's credit as the subscriber's money. A
    # subscriber pays 1000, spends it, takes a promised payment of 500 (the ISP's temporary credit, to keep the
    # service on), and a refund of 500 of the old payment is allowed: the ISP pays its own credit out in cash.
    paid = receive(external_id="p1", amount="1000", account_ref=subscriber.account_number).payment
    _promised(subscriber, make_plan, admin)  # the plan's first fee (650) is charged: 350 of the payment is left
    now = balance_of(subscriber)
    own = now.balance - now.promised  # what is really the subscriber's: 350
    amount = min(now.balance, paid.amount)  # 850: within the payment and the balance, but past the own money
    assert amount > own
    with pytest.raises(ValidationError) as err:
        actions.do_refund_payment(paid, amount=amount, reason="x", acting_user=admin, key="k")
    assert err.value.error_dict["amount"][0].code == "refund_exceeds_balance"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_promised_payment_repaid_by_a_cancelled_payment_is_open_again(subscriber, make_plan, admin):
    # BREAKS: a payment repays (closes) the open promised payment; cancelling that payment (entered by mistake,
    # wrong account) reverses the payment but not the repayment: the promise stays "repaid" by money that never
    # arrived, its credit is withdrawn days early (service cut off before its due date) and the subscriber's
    # history says they repaid it. The same happens when the payment is refunded in full.
    promised = _promised(subscriber, make_plan, admin, amount="300")
    before = balance_of(subscriber)
    paid = receive(external_id="mistake", amount="1000", account_ref=subscriber.account_number).payment
    promised.refresh_from_db()
    assert promised.status == "repaid"
    actions.do_cancel_payment(paid, reason="wrong account", acting_user=admin)
    promised.refresh_from_db()
    after = balance_of(subscriber)
    assert promised.status == "open", "the promise was repaid by a payment that was cancelled"
    assert (after.balance, after.promised) == (before.balance, before.promised)
    assert ledger.verify() == []


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["account_ref", "payer", "memo", "details"])
def test_a_nul_in_what_the_channel_sent_is_not_a_crash(subscriber, field):
    # BREAKS (PostgreSQL): the intake cuts these to length but keeps NUL bytes; psycopg refuses them ("PostgreSQL
    # text fields cannot contain NUL") — a DataError, i.e. a 500 to the terminal that keeps retrying, and the money
    # is not recorded anywhere (not even suspense). `external_id` is checked with isprintable(); these are not.
    value = {"details": {"payer": "a\x00b"}}.get(field, "10\x000")
    kw = {"account_ref": subscriber.account_number, field: value}
    try:
        got = receive(external_id="nul", amount="100", **kw)
    except ValidationError as exc:
        assert field in exc.error_dict
        return
    assert Payment.objects.filter(pk=got.payment.pk).exists()
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_known_refund_key_does_not_skip_the_permission_check(subscriber, admin, cashier):
    # BREAKS: `do_refund_payment` answers a known key with the first refund BEFORE any permission check: a cashier
    # (no PAYMENT_REFUND) or a user of another branch is told "refunded" and shown the refund (its amount, reason,
    # who made it) by replaying a key — the API's Idempotency-Key is not a secret.
    paid = receive(external_id="p1", amount="100", account_ref=subscriber.account_number).payment
    actions.do_refund_payment(paid, amount="10", reason="x", acting_user=admin, key="k1")
    with pytest.raises(PermissionDenied):
        actions.do_refund_payment(paid, amount="10", reason="x", acting_user=cashier, key="k1")


@pytest.mark.django_db
def test_a_branch_limited_cashier_cannot_settle_another_branch_s_conflict(
    make_subscriber, make_staff, branch, other_branch
):
    # BREAKS: `do_resolve_conflict` checks PAYMENT_TAKE without the branch of the payment's subscriber: a cashier of
    # branch Тверь marks settled (hides from the queue) a conflict about a Клин subscriber's payment.
    there = make_subscriber(branch_obj=other_branch)
    receive(external_id="c1", amount="100", account_ref=there.account_number)
    conflict = receive(external_id="c1", amount="1000", account_ref=there.account_number).conflict
    tver_cashier = make_staff(Role.CASHIER, username="tver-cashier", branches=[branch])
    with pytest.raises(PermissionDenied):
        actions.do_resolve_conflict(conflict, resolution="settled with qiwi", acting_user=tver_cashier)


@pytest.mark.django_db
def test_a_cancelled_assignment_gives_the_payment_back_to_its_first_subscriber(subscriber, make_subscriber, admin):
    # BREAKS: a payment in suspense for a CLOSED subscriber (reason closed_account, subscriber = the closed one) is
    # assigned by mistake to another subscriber, and the mistake is cancelled: it goes back to suspense with
    # reason closed_account but with the WRONGLY assigned subscriber kept (`do_cancel_payment` restores the reason
    # from details, not the subscriber). The suspense queue then says "closed account of <the wrong person>",
    # branch checks use the wrong person's branch, and the audit of the return names the wrong subscriber.
    closed = make_subscriber(last_name="Закрытый")
    subscribers.do_close_subscriber(closed, reason="moved", acting_user=admin)
    lost = receive(external_id="s1", amount="300", account_ref=closed.account_number).payment
    assert (lost.suspense_reason, lost.subscriber_id) == ("closed_account", closed.pk)
    actions.do_assign_payment(lost, subscriber=subscriber, acting_user=admin, reason="same surname")
    back = actions.do_cancel_payment(lost, reason="wrong person", acting_user=admin)
    assert back.status == PaymentStatus.SUSPENSE and back.suspense_reason == "closed_account"
    assert back.subscriber_id == closed.pk, "back in suspense, but now it belongs to the wrong subscriber"


# ---------------------------------------------------------------------------------------------------------------
# Saved methods (autopay consent)
# ---------------------------------------------------------------------------------------------------------------


def link(subscriber, **kw):
    kw.setdefault("provider", "yookassa")
    kw.setdefault("method_id", "pm-1")
    kw.setdefault("method_type", "bank_card")
    kw.setdefault("title", "Bank card *4444")
    kw.setdefault("consent_text", "I agree to autopay")
    kw.setdefault("consented_at", dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC))
    kw.setdefault("consent_source", "portal")
    return actions.do_link_method(subscriber, **kw)


@pytest.mark.django_db
def test_a_long_method_id_is_refused_not_cut(subscriber, make_subscriber):
    # BREAKS: `do_link_method` looks the method up by the id as given but stores it cut to 100 characters. A
    # gateway's 101+ character id is saved wrong (autopay would charge a method id the gateway does not know), the
    # same id again is not found, its insert collides and the fallback `get` by the full id raises DoesNotExist (a
    # 500). Two ids alike in their first 100 characters, of two subscribers, collide the same way.
    long_id = "pm-" + "x" * 120
    with pytest.raises(ValidationError):
        link(subscriber, method_id=long_id)


@pytest.mark.django_db
def test_a_missing_consent_moment_is_a_validation_error(subscriber):
    # BREAKS: `consented_at=None` is not checked: the NOT NULL column makes it an IntegrityError (500). Autopay's
    # consent without its moment must be refused with a field code, like the empty consent text is.
    with pytest.raises(ValidationError):
        link(subscriber, consented_at=None)


@pytest.mark.django_db
def test_relinking_a_method_records_the_new_consent(subscriber, admin):
    # BREAKS: a method unlinked and saved anew is reactivated with the new consent text and moment, but without
    # an audit record (the first link has one) and keeping the OLD consent_source: the proof of the consent that
    # now allows charging the card without the subscriber present is incomplete and unaudited.
    from abonent.core.models import AuditEvent

    method = link(subscriber)
    actions.do_unlink_method(method, acting_user=None, reason="asked")
    linked_before = AuditEvent.objects.filter(action="payments.method_linked").count()
    again = link(subscriber, consent_source="api", consented_at=dt.datetime(2026, 12, 5, 10, tzinfo=dt.UTC))
    assert again.active and again.consented_at == dt.datetime(2026, 12, 5, 10, tzinfo=dt.UTC)
    assert again.consent_source == "api"
    assert AuditEvent.objects.filter(action="payments.method_linked").count() == linked_before + 1


@pytest.mark.django_db(transaction=True)
def test_one_method_linked_for_two_subscribers_at_once_is_refused_for_one(subscriber, make_subscriber, together):
    # BREAKS: when two links of the same (provider, method_id) race, the loser's IntegrityError fallback returns
    # the winner's row WITHOUT the `method_foreign` check: the second subscriber is told the card is saved for
    # them (their portal would offer autopay with another subscriber's card, or their consent is silently lost).
    postgres_only()
    other = make_subscriber(last_name="Чужой")
    out = together(lambda: link(subscriber), lambda: link(other))
    mine = [o for o in out if not isinstance(o, Exception)]
    assert len(mine) == 1 or len({m.subscriber_id for m in mine}) == 2, out
    for who, result in zip([subscriber, other], out, strict=True):
        if not isinstance(result, Exception):
            assert result.subscriber_id == who.pk, f"{who} was given {result.subscriber}'s method"


# ---------------------------------------------------------------------------------------------------------------
# Every pair of state changes at once (PostgreSQL), invariants after each pair
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_held_every_pair_of_state_changes_at_once_keeps_the_invariants(make_subscriber, admin, together):
    import itertools

    postgres_only()
    subs = [make_subscriber(last_name="А"), make_subscriber(last_name="Б")]
    service = Service.objects.create(code="fee", name="Fee", kind="other", one_off_price=D("300"))
    fees = {s.pk: D("0") for s in subs}
    kinds = ["refund", "refund2", "cancel", "assign", "return", "cancel_assigned", "refund_assigned", "fee", "dup"]
    for n, (a, b) in enumerate(itertools.combinations_with_replacement(kinds, 2)):
        credit = receive(external_id=f"c{n}", amount="1000", account_ref=subs[0].account_number).payment
        susp = receive(external_id=f"s{n}", amount="500", account_ref="nobody").payment
        assigned = receive(external_id=f"a{n}", amount="400", account_ref="nobody").payment
        actions.do_assign_payment(assigned, subscriber=subs[0], acting_user=admin)
        ops = _pair_ops(n, credit, susp, assigned, subs, service, admin)
        out = together(ops[a], ops[b])
        for kind, result in zip((a, b), out, strict=True):
            assert result is None or not isinstance(result, Exception) or isinstance(result, ValidationError), (
                a,
                b,
                out,
            )
            if kind == "fee" and not isinstance(result, Exception):
                fees[subs[0].pk] += D("300")
        _check_invariants(subs, fees)


def _pair_ops(n, credit, susp, assigned, subs, service, admin):
    return {
        "refund": lambda: actions.do_refund_payment(credit, amount="600", reason="x", acting_user=admin, key=f"r{n}"),
        "refund2": lambda: actions.do_refund_payment(credit, amount="600", reason="x", acting_user=admin, key=f"r2{n}"),
        "cancel": lambda: actions.do_cancel_payment(credit, reason="x", acting_user=admin),
        "assign": lambda: actions.do_assign_payment(susp, subscriber=subs[1], acting_user=admin),
        "return": lambda: actions.do_return_payment(susp, reason="x", acting_user=admin),
        "cancel_assigned": lambda: actions.do_cancel_payment(assigned, reason="x", acting_user=admin),
        "refund_assigned": lambda: actions.do_refund_payment(
            assigned, amount="100", reason="x", acting_user=admin, key=f"ra{n}"
        ),
        "fee": lambda: billing.do_charge_one_off(subs[0], service=service, acting_user=admin),
        "dup": lambda: receive(external_id=f"c{n}", amount="1000", account_ref=subs[0].account_number),
    }


@pytest.mark.django_db(transaction=True)
def test_a_payment_and_the_promised_payment_expiry_at_once_do_not_deadlock(
    subscriber, make_plan, admin, together, monkeypatch
):
    # BREAKS (PostgreSQL): the intake locks the subscriber's account, posts the payment (the trigger updates the
    # account row), then locks the open promised payment to repay it; the worker's expiry
    # (`do_expire_promised_payments` → `_close_promised_payment`) locks the promised payment FIRST and then posts
    # to the account without taking its lock. Opposite lock orders: when they meet, PostgreSQL kills one with
    # "deadlock detected" — the terminal's notice gets a 500 (it retries; nothing is lost), or the expiry run fails.
    # The delay below only widens the window the two meet in (the expiry pauses between its two steps).
    postgres_only()
    _promised(subscriber, make_plan, admin, amount="300")
    later = clock.now() + dt.timedelta(days=10)
    real = ledger.subscriber_account

    def slow_in_the_worker(subscriber_id, *, lock=False):
        if threading.current_thread().name == "expiry" and not lock:
            time.sleep(1.5)
        return real(subscriber_id, lock=lock)

    monkeypatch.setattr(ledger, "subscriber_account", slow_in_the_worker)

    def expire():
        threading.current_thread().name = "expiry"
        with clock.travel_to(later):
            return billing.do_expire_promised_payments()

    def pay():
        time.sleep(0.5)
        with clock.travel_to(later):
            return receive(external_id="late", amount="1000", account_ref=subscriber.account_number)

    out = together(expire, pay)
    assert not any(isinstance(o, Exception) for o in out), out
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_a_payment_racing_the_account_s_closing_goes_to_suspense(subscriber, admin, together, monkeypatch):
    # BREAKS (PostgreSQL): the intake reads the subscriber's status without a lock (`find_account`, then the
    # CLOSED check) and credits later; `do_close_subscriber` locks the subscriber row, which the intake never takes.
    # A payment arriving while the account is being closed is credited to the closed account — where nobody looks
    # for it (closed accounts are not billed and not in the suspense queue), instead of going to suspense.
    # The delay only widens the window between the intake's check and its credit.
    from abonent.payments.actions import intake

    postgres_only()
    real = intake._credit

    def slow_credit(*args, **kwargs):
        time.sleep(1.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(intake, "_credit", slow_credit)

    done = {}

    def close():
        time.sleep(0.5)
        closed = subscribers.do_close_subscriber(subscriber, reason="moved", acting_user=admin)
        done["close"] = time.monotonic()
        return closed

    def pay():
        paid = receive(external_id="t", amount="100", account_ref=subscriber.account_number)
        done["pay"] = time.monotonic()
        return paid

    out = together(pay, close)
    assert not any(isinstance(o, Exception) for o in out), out
    payment = Payment.objects.get()
    # (Fixed: the intake holds the subscriber's row lock from its status check to its commit, so the two are in
    # some order: credited to the open account and then closed, or closed first and the payment in suspense.)
    if payment.status == PaymentStatus.CREDITED:
        # Compared by the moments each wrote, not by when each call returned: the payment's after-commit handlers
        # (its receipt, its message, whose insert waits for the closing's row lock) run before receive() returns.
        subscriber.refresh_from_db()
        assert subscriber.closed_at > payment.credited_at, "credited to an account closed before the credit committed"
    else:
        assert payment.status == PaymentStatus.SUSPENSE
    assert ledger.verify() == []


@pytest.mark.django_db
def test_returning_a_gateway_s_suspense_payment_asks_the_gateway_to_refund(admin, django_capture_on_commit_callbacks):
    # BREAKS: `do_return_payment` books the return as SUCCEEDED at once and never calls the channel's refund
    # starter (`channels.online_refund`), unlike `do_refund_payment`. For a gateway payment that landed in suspense
    # (the payer typed an unknown account in the checkout) the books say "returned" and the clearing account is
    # debited, but nobody asks the gateway to give the money back: the payer never gets it, and reconciliation with
    # the gateway's settlement is off by that amount. (Beware when fixing: `do_finish_refund`'s failure path assumes
    # a subscriber and a `refunded_amount` raised by the refund, neither of which a return has.)
    started = []
    channels.register_gateway(GATEWAY, refund=started.append)
    try:
        lost = receive(
            channel=GATEWAY, method=PaymentMethod.ONLINE, external_id="g1", amount="300", account_ref="nobody"
        ).payment
        with django_capture_on_commit_callbacks(execute=True):
            refund = actions.do_return_payment(lost, reason="unknown account", acting_user=admin)
        assert started == [refund.pk], "the gateway was never asked to refund"
        assert Refund.objects.get(pk=refund.pk).status == RefundStatus.PENDING
    finally:
        channels._online_refunds.pop(GATEWAY, None)
        channels._clearing_channels.discard(GATEWAY)


@pytest.mark.django_db(transaction=True)
def test_held_one_id_with_five_amounts_at_once_credits_one(subscriber, together):
    postgres_only()
    amounts = ["100", "200", "300", "400", "500"]
    out = together(
        *[(lambda a=a: receive(external_id="same", amount=a, account_ref=subscriber.account_number)) for a in amounts]
    )
    assert all(isinstance(o, actions.Intake) for o in out), out
    assert sum(o.created for o in out) == 1 and sum(o.conflict is not None for o in out) == 4
    assert balance_of(subscriber).balance == Payment.objects.get().amount
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_suspense_payment_whose_return_the_gateway_refused_can_be_returned_again(
    admin, django_capture_on_commit_callbacks
):
    # The refused return puts the payment back in suspense. Returned again without a key, it was answered with the
    # first (failed) return: nothing new asked of the gateway, the money stuck in suspense, the staff told "done".
    started = []
    channels.register_gateway(GATEWAY, refund=started.append)
    try:
        lost = receive(
            channel=GATEWAY, method=PaymentMethod.ONLINE, external_id="g2", amount="300", account_ref="nobody"
        ).payment
        with django_capture_on_commit_callbacks(execute=True):
            first = actions.do_return_payment(lost, reason="unknown account", acting_user=admin)
        actions.do_finish_refund(first, succeeded=False, failure="card closed")
        assert Payment.objects.get(pk=lost.pk).status == PaymentStatus.SUSPENSE and suspense_total() == D("300.00")
        with django_capture_on_commit_callbacks(execute=True):
            second = actions.do_return_payment(lost, reason="to another card", acting_user=admin)
        assert second.pk != first.pk and second.status == RefundStatus.PENDING
        assert started == [first.pk, second.pk]
        assert Payment.objects.get(pk=lost.pk).status == PaymentStatus.RETURNED and suspense_total() == 0
        assert ledger.verify() == []
    finally:
        channels._online_refunds.pop(GATEWAY, None)
        channels._clearing_channels.discard(GATEWAY)
