"""The decisions behind the fixes of the attack review (docs/payments-safeguards.md), beyond what its tests check."""

import datetime as dt
import gzip
import json
from decimal import Decimal

import httpx
import pytest

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.payments import actions, deadline
from abonent.payments.models import (
    AttemptStatus,
    AutopayAttempt,
    Checkout,
    CheckoutStatus,
    EventOutcome,
    Payment,
    ProviderEvent,
    Refund,
    RefundStatus,
)

from .test_attack_online import customer_fixture, fakepay_fixture, plan650_fixture  # noqa: F401
from .test_autopay import jan, live
from .test_yookassa import deliver, paid_checkout, start
from .yookassa_fake import fake_fixture, later, yookassa_fixture  # noqa: F401

D = Decimal


@pytest.mark.django_db
def test_a_payment_in_another_currency_fails_its_checkout_for_staff(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier)
    paid = yookassa.succeed(checkout.provider_payment_id)
    paid["amount"] = {"value": "500.00", "currency": "USD"}

    assert deliver(yookassa.notice("payment.succeeded", paid)).status_code == 200

    checkout = Checkout.objects.get()
    assert checkout.status == CheckoutStatus.FAILED and checkout.failure_code == "currency_mismatch"
    assert "USD" in checkout.failure and checkout.payment_id is None
    assert get_balance(subscriber).balance == 0 and Payment.objects.count() == 0
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_cabinet_refund_the_balance_cannot_take_is_left_to_staff_not_overdrawn(
    yookassa, subscriber, cashier, admin, django_capture_on_commit_callbacks
):
    checkout = paid_checkout(yookassa, subscriber, cashier, amount="500.00")
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_refund_payment(checkout.payment, amount="300.00", reason="x", acting_user=admin, key="r1")
    assert get_balance(subscriber).balance == D("200.00")
    # A manager refunds the whole 500 in the cabinet as well.
    _status, refund = yookassa._create_refund(
        {"payment_id": checkout.provider_payment_id, "amount": {"value": "500.00", "currency": "RUB"}}
    )

    assert deliver(yookassa.notice("refund.succeeded", refund)).status_code == 200

    event = ProviderEvent.objects.get(object_id=refund["id"])
    assert event.outcome == EventOutcome.FAILED and "settle it by hand" in event.error
    assert get_balance(subscriber).balance == D("200.00")
    assert Refund.objects.count() == 1
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_cabinet_refund_is_recorded_once(yookassa, subscriber, cashier):
    checkout = paid_checkout(yookassa, subscriber, cashier, amount="500.00")
    _status, refund = yookassa._create_refund(
        {"payment_id": checkout.provider_payment_id, "amount": {"value": "200.00", "currency": "RUB"}}
    )
    body = yookassa.notice("refund.succeeded", refund)
    deliver(body)
    ProviderEvent.objects.update(outcome=EventOutcome.FAILED)  # as if its handler had failed: handled again
    deliver(body)

    (ours,) = Refund.objects.all()
    assert ours.status == RefundStatus.SUCCEEDED and ours.external_id == refund["id"] and ours.amount == D("200.00")
    assert get_balance(subscriber).balance == D("300.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_an_unanswered_refund_yookassa_does_not_show_stays_for_staff_and_is_not_sent_again(
    yookassa, subscriber, cashier, admin, django_capture_on_commit_callbacks
):
    checkout = paid_checkout(yookassa, subscriber, cashier, amount="500.00")
    yookassa.fail_next(503)  # the POST never made a refund
    with django_capture_on_commit_callbacks(execute=True):
        refund = actions.do_refund_payment(checkout.payment, amount="100.00", reason="x", acting_user=admin, key="r1")
    yookassa.keys.clear()
    with clock.travel_to(clock.now() + dt.timedelta(hours=25)):
        actions.push_pending_refunds()

    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING and "check its cabinet" in refund.failure
    assert len(yookassa.posts("/v3/refunds")) == 1 and yookassa.refunds == {}
    assert get_balance(subscriber).balance == D("400.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_refused_notices_from_many_addresses_keep_a_bounded_number_of_rows(yookassa, settings):
    settings.ABONENT_GATEWAY_REJECTED_TOTAL_PER_MINUTE = 10
    body = b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "x"}}'
    for n in range(40):
        assert deliver(body, addr=f"198.51.100.{n + 1}").status_code == 403
    assert ProviderEvent.objects.filter(outcome=EventOutcome.REJECTED).count() == 10
    # A minute later there is room again.
    with clock.travel_to(later(2)):
        assert deliver(body, addr="198.51.100.200").status_code == 403
    assert ProviderEvent.objects.count() == 11


@pytest.mark.django_db
def test_an_autopay_debit_in_another_currency_is_not_credited(customer, fakepay):
    fakepay.script.append("pending")
    live(jan(5))
    (attempt,) = AutopayAttempt.objects.all()
    fakepay.settle(attempt.provider_payment_id, currency="USD")
    with clock.travel_to(dt.datetime.combine(jan(5), dt.time(10, 45))):
        actions.do_sync_autopay()

    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.FAILED and "USD" in attempt.error
    assert get_balance(customer).balance == 0 and not Payment.objects.filter(channel="fakepay").exists()
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_try_that_may_have_reached_the_gateway_is_left_to_staff_when_the_method_is_unlinked(customer, fakepay):
    fakepay.script.append("timeout")  # the gateway took the money; its answer was lost
    live(jan(5))
    (attempt,) = AutopayAttempt.objects.all()
    with clock.travel_to(dt.datetime.combine(jan(5), dt.time(10, 30))):
        actions.do_unlink_method_and_stop_autopay(attempt.method, acting_user=None, reason="revoked")
    with clock.travel_to(dt.datetime.combine(jan(5), dt.time(10, 45))):
        actions.do_sync_autopay()

    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.FAILED and "check its cabinet" in attempt.error
    assert len(fakepay.charges()) == 1  # not sent again after the consent was withdrawn
    assert ledger.verify() == []


def test_a_compressed_answer_is_decoded_once_within_the_deadline(httpserver):
    httpserver.expect_request("/x").respond_with_data(
        gzip.compress(json.dumps({"ok": "да"}).encode()),
        headers={"Content-Encoding": "gzip"},
        content_type="application/json",
    )
    with httpx.Client(timeout=2) as client:
        response = deadline.request(client, "GET", httpserver.url_for("/x"), deadline=3)
    assert response.status_code == 200 and response.json() == {"ok": "да"}
