"""Online payments through YooKassa against a local server speaking its API: credited exactly once however the
outcome arrives (notice, polling, both, five copies at once), never on a notice's word alone, refunds through the
gateway."""

import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from abonent.billing import ledger
from abonent.billing.selectors import get_balance as balance_of
from abonent.core import clock
from abonent.payments import actions
from abonent.payments.gateways import our_key
from abonent.payments.models import (
    Checkout,
    CheckoutStatus,
    EventOutcome,
    Payment,
    ProviderEvent,
    Refund,
    RefundStatus,
    SavedMethod,
)

from .yookassa_fake import FOREIGN_ADDR, YOOKASSA_ADDR, fake_fixture, later, yookassa_fixture  # noqa: F401

D = Decimal
NOTICES = "/pay/yookassa/notifications"


def start(subscriber, user, *, amount="500.00", key="k1", **kw):
    kw.setdefault("method_type", None)
    kw.setdefault("save_method", False)
    kw.setdefault("consent_text", "")
    kw.setdefault("return_url", "")
    return actions.do_start_checkout(subscriber, amount=amount, key=key, acting_user=user, **kw)


def deliver(body: bytes, addr: str = YOOKASSA_ADDR, **extra):
    return Client().post(NOTICES, data=body, content_type="application/json", REMOTE_ADDR=addr, **extra)


def clearing_total():
    return sum(p.amount for p in ledger.clearing_account("yookassa").postings.all())


@pytest.mark.django_db
def test_paid_and_notified_credits_the_account_once(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier)
    assert checkout.status == CheckoutStatus.PENDING and checkout.provider_payment_id
    assert checkout.confirmation_url.startswith("https://yoomoney.ru/checkout/")
    assert yookassa.posts("/v3/payments") == [our_key("checkout", checkout.pk)]
    assert balance_of(subscriber).balance == 0

    paid = yookassa.succeed(checkout.provider_payment_id)
    response = deliver(yookassa.notice("payment.succeeded", paid))

    assert response.status_code == 200
    checkout.refresh_from_db()
    assert checkout.status == CheckoutStatus.SUCCEEDED and checkout.payment is not None
    payment = checkout.payment
    assert (payment.channel, payment.external_id, payment.amount) == ("yookassa", paid["id"], D("500.00"))
    assert payment.method == "online" and payment.subscriber == subscriber
    assert payment.received_at.isoformat().startswith("2026-12-06T10:15:00")
    assert balance_of(subscriber).balance == D("500.00")
    assert clearing_total() == D("-500.00")  # the gateway owes it to us until it settles
    event = ProviderEvent.objects.get()
    assert event.outcome == EventOutcome.HANDLED and event.checkout == checkout and event.remote_addr == YOOKASSA_ADDR
    assert ledger.verify() == []


@pytest.mark.django_db
def test_money_taken_while_the_create_call_timed_out_is_found_by_polling_once(yookassa, settings, subscriber, cashier):
    settings.ABONENT_YOOKASSA_READ_TIMEOUT = 0.3
    yookassa.slow_create(1.0)  # the fake takes the money, then answers after our deadline

    checkout = start(subscriber, cashier)
    assert checkout.status == CheckoutStatus.PENDING and checkout.provider_payment_id == ""
    assert balance_of(subscriber).balance == 0
    time.sleep(1.0)  # the fake finishes its late answer
    yookassa.slow_create_seconds = 0

    with clock.travel_to(later(10)):
        result = actions.sync_pending_checkouts()
        again = actions.sync_pending_checkouts()

    assert result["succeeded"] == 1 and again["checked"] == 0
    # The create was repeated with the same key: the fake answered with the payment it had made.
    assert yookassa.posts("/v3/payments") == [our_key("checkout", checkout.pk)] * 2
    assert len(yookassa.payments) == 1
    checkout.refresh_from_db()
    assert checkout.status == CheckoutStatus.SUCCEEDED
    # The notice that comes late changes nothing.
    (paid,) = yookassa.payments.values()
    assert deliver(yookassa.notice("payment.succeeded", paid)).status_code == 200
    assert Payment.objects.count() == 1 and balance_of(subscriber).balance == D("500.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_500_on_create_is_repeated_with_the_same_idempotence_key(yookassa, subscriber, cashier):
    yookassa.fail_next(500)

    checkout = start(subscriber, cashier)
    assert checkout.status == CheckoutStatus.PENDING and not checkout.provider_payment_id
    assert "500" in checkout.failure

    with clock.travel_to(later(10)):
        checkout = actions.do_sync_checkout(checkout)

    assert yookassa.posts("/v3/payments") == [our_key("checkout", checkout.pk), our_key("checkout", checkout.pk)]
    assert checkout.provider_payment_id and checkout.confirmation_url
    assert len(yookassa.payments) == 1
    paid = yookassa.succeed(checkout.provider_payment_id)
    assert deliver(yookassa.notice("payment.succeeded", paid)).status_code == 200
    assert balance_of(subscriber).balance == D("500.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_refused_create_fails_the_checkout_with_the_providers_code(yookassa, subscriber, cashier):
    yookassa.fail_next(400)
    checkout = start(subscriber, cashier)
    assert checkout.status == CheckoutStatus.FAILED and checkout.failure_code == "invalid_request"
    assert balance_of(subscriber).balance == 0


@pytest.mark.django_db
def test_repeated_and_out_of_order_notices_change_nothing(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier)
    pending = dict(yookassa.payments[checkout.provider_payment_id])
    paid = yookassa.succeed(checkout.provider_payment_id)
    # "canceled" arrives first (forged or out of order): the re-read says succeeded, so that is what is done.
    assert deliver(yookassa.notice("payment.canceled", pending, status="canceled")).status_code == 200
    assert balance_of(subscriber).balance == D("500.00")
    for _ in range(3):
        assert deliver(yookassa.notice("payment.succeeded", paid)).status_code == 200
    # A late "waiting_for_capture" of the same payment: still succeeded at YooKassa.
    late = yookassa.notice("payment.waiting_for_capture", pending, status="waiting_for_capture")
    assert deliver(late).status_code == 200

    assert Payment.objects.count() == 1 and balance_of(subscriber).balance == D("500.00")
    checkout.refresh_from_db()
    assert checkout.status == CheckoutStatus.SUCCEEDED
    assert ProviderEvent.objects.filter(event="payment.succeeded").count() == 1  # the copies were recognised
    canceled = ProviderEvent.objects.get(event="payment.canceled")
    assert canceled.outcome == EventOutcome.HANDLED and "notice said 'canceled'" in canceled.error
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_decline_fails_the_checkout_and_a_later_success_still_credits(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier)
    declined = yookassa.cancel(checkout.provider_payment_id, "card_expired")
    assert deliver(yookassa.notice("payment.canceled", declined)).status_code == 200
    checkout.refresh_from_db()
    assert checkout.status == CheckoutStatus.FAILED and checkout.failure_code == "card_expired"
    assert balance_of(subscriber).balance == 0


@pytest.mark.django_db
def test_a_payment_someone_else_made_in_the_shop_is_not_credited(yookassa, subscriber):
    foreign = yookassa.add_foreign_payment()
    assert deliver(yookassa.notice("payment.succeeded", foreign)).status_code == 200
    event = ProviderEvent.objects.get()
    assert event.outcome == EventOutcome.IGNORED and event.checkout is None
    assert Payment.objects.count() == 0 and ledger.verify() == []


@pytest.mark.django_db
def test_a_notice_from_a_foreign_address_is_refused_and_kept(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier)
    paid = yookassa.succeed(checkout.provider_payment_id)
    body = yookassa.notice("payment.succeeded", paid)

    response = deliver(body, addr=FOREIGN_ADDR)
    # X-Forwarded-For is not believed unless the deployment says a proxy sets it.
    spoofed = deliver(body, addr=FOREIGN_ADDR, HTTP_X_FORWARDED_FOR=YOOKASSA_ADDR)

    assert response.status_code == 403 and spoofed.status_code == 403
    assert balance_of(subscriber).balance == 0 and Payment.objects.count() == 0
    rejected = ProviderEvent.objects.filter(outcome=EventOutcome.REJECTED)
    assert rejected.count() == 2 and {e.remote_addr for e in rejected} == {FOREIGN_ADDR}
    assert all("not in YooKassa's networks" in e.error for e in rejected)
    # Only the path to the gateway's own API (the re-read) was taken for nothing: no GET was made.
    assert [r for r in yookassa.requests if r[0] == "GET"] == []
    checkout.refresh_from_db()
    assert checkout.status == CheckoutStatus.PENDING


@pytest.mark.django_db
def test_behind_a_declared_proxy_the_proxys_forwarded_address_is_checked(yookassa, settings, subscriber, cashier):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # ABONENT_BEHIND_PROXY=1
    checkout = start(subscriber, cashier)
    paid = yookassa.succeed(checkout.provider_payment_id)
    body = yookassa.notice("payment.succeeded", paid)
    # The client prepends a YooKassa address; our proxy appends the real one: the last entry counts.
    forged = deliver(body, addr="127.0.0.1", HTTP_X_FORWARDED_FOR=f"{YOOKASSA_ADDR}, {FOREIGN_ADDR}")
    assert forged.status_code == 403 and balance_of(subscriber).balance == 0
    real = deliver(body, addr="127.0.0.1", HTTP_X_FORWARDED_FOR=YOOKASSA_ADDR)
    assert real.status_code == 200 and balance_of(subscriber).balance == D("500.00")


@pytest.mark.django_db
def test_a_forged_notice_credits_nothing_the_gateway_does_not_confirm(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier)
    pending = yookassa.payments[checkout.provider_payment_id]
    # From a trusted address (a compromised host in the network, a replay), claiming success.
    forged = yookassa.notice("payment.succeeded", pending, status="succeeded", paid=True)
    assert deliver(forged).status_code == 200
    invented = yookassa.notice("payment.succeeded", {**pending, "id": "2f000000-no-such"}, status="succeeded")
    assert deliver(invented).status_code == 200

    assert balance_of(subscriber).balance == 0 and Payment.objects.count() == 0
    checkout.refresh_from_db()
    assert checkout.status == CheckoutStatus.PENDING
    handled = ProviderEvent.objects.get(object_id=pending["id"])
    assert handled.outcome == EventOutcome.HANDLED and handled.error == "pending (the notice said 'succeeded')"
    assert ProviderEvent.objects.get(object_id="2f000000-no-such").outcome == EventOutcome.REJECTED
    assert ledger.verify() == []


@pytest.mark.django_db
def test_malformed_bodies_are_a_400_not_a_500(yookassa):
    for body in (b"not json", b"[]", b'{"type": "notification", "event": "payment.succeeded"}', b"\xff\xfe"):
        assert deliver(body).status_code == 400
    assert ProviderEvent.objects.filter(outcome=EventOutcome.REJECTED).count() == 4


@pytest.mark.django_db
def test_a_notice_when_the_gateway_is_down_is_answered_503_and_handled_on_redelivery(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier)
    paid = yookassa.succeed(checkout.provider_payment_id)
    body = yookassa.notice("payment.succeeded", paid)
    yookassa.down = True
    assert deliver(body).status_code == 503
    yookassa.down = False
    assert ProviderEvent.objects.get().outcome == EventOutcome.FAILED and balance_of(subscriber).balance == 0

    assert deliver(body).status_code == 200  # YooKassa redelivers
    event = ProviderEvent.objects.get()
    assert event.outcome == EventOutcome.HANDLED and event.attempts == 2
    assert balance_of(subscriber).balance == D("500.00") and ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_five_copies_of_a_notice_at_once_credit_once(yookassa, subscriber, cashier, together):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    checkout = start(subscriber, cashier)
    body = yookassa.notice("payment.succeeded", yookassa.succeed(checkout.provider_payment_id))

    out = together(*[lambda: deliver(body).status_code] * 5)

    assert out == [200] * 5
    assert Payment.objects.count() == 1 and balance_of(subscriber).balance == D("500.00")
    assert ProviderEvent.objects.count() == 1
    assert Checkout.objects.get().status == CheckoutStatus.SUCCEEDED
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_a_notice_and_the_worker_at_once_credit_once(yookassa, subscriber, cashier, together):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    checkout = start(subscriber, cashier)
    body = yookassa.notice("payment.succeeded", yookassa.succeed(checkout.provider_payment_id))

    out = together(
        lambda: deliver(body).status_code,
        lambda: actions.do_sync_checkout(checkout).status,
        lambda: actions.do_sync_checkout(checkout).status,
    )

    assert out == [200, "succeeded", "succeeded"]
    assert Payment.objects.count() == 1 and balance_of(subscriber).balance == D("500.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_method_saved_with_consent_is_linked_for_autopay(yookassa, subscriber, cashier):
    consent = "Я согласен на автоплатёж: списание при нулевом балансе, отмена в личном кабинете."
    checkout = start(subscriber, cashier, save_method=True, consent_text=consent, method_type="bank_card")
    paid = yookassa.succeed(checkout.provider_payment_id, saved=True)
    deliver(yookassa.notice("payment.succeeded", paid))

    method = SavedMethod.objects.get()
    assert (method.subscriber, method.provider, method.method_id) == (subscriber, "yookassa", f"pm-{paid['id']}")
    assert method.consent_text == consent and method.consented_at == Checkout.objects.get().consented_at
    assert method.title == "Bank card *4444"


@pytest.mark.django_db
def test_without_consent_nothing_is_saved_even_if_the_gateway_says_so(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier)
    paid = yookassa.succeed(checkout.provider_payment_id)
    paid["payment_method"]["saved"] = True  # the shop saved it anyway
    deliver(yookassa.notice("payment.succeeded", paid))
    assert SavedMethod.objects.count() == 0 and balance_of(subscriber).balance == D("500.00")


@pytest.mark.django_db
def test_sbp_gives_the_qr_payload(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier, method_type="sbp")
    assert checkout.qr_payload.startswith("https://qr.nspk.ru/") and checkout.confirmation_url == ""


def paid_checkout(fake_yookassa, subscriber, user, amount="500.00"):
    checkout = start(subscriber, user, amount=amount)
    deliver(fake_yookassa.notice("payment.succeeded", fake_yookassa.succeed(checkout.provider_payment_id)))
    checkout.refresh_from_db()
    return checkout


@pytest.mark.django_db
def test_a_refund_goes_back_through_the_gateway(
    yookassa, subscriber, cashier, admin, django_capture_on_commit_callbacks
):
    checkout = paid_checkout(yookassa, subscriber, cashier)

    with django_capture_on_commit_callbacks(execute=True):
        refund = actions.do_refund_payment(
            checkout.payment, amount="200.00", reason="asked by the subscriber", acting_user=admin, key="r1"
        )

    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and refund.external_id.startswith("rf-")
    assert yookassa.posts("/v3/refunds") == [our_key("refund", refund.pk)]
    assert yookassa.refunds[refund.external_id]["payment_id"] == checkout.provider_payment_id
    assert yookassa.refunds[refund.external_id]["amount"] == {"value": "200.00", "currency": "RUB"}
    assert balance_of(subscriber).balance == D("300.00")
    assert clearing_total() == D("-300.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_refund_the_gateway_refuses_restores_the_balance(
    yookassa, subscriber, cashier, admin, django_capture_on_commit_callbacks
):
    checkout = paid_checkout(yookassa, subscriber, cashier)
    yookassa.refund_outcome = "canceled"

    with django_capture_on_commit_callbacks(execute=True):
        refund = actions.do_refund_payment(checkout.payment, amount="500.00", reason="x", acting_user=admin, key="r1")

    refund.refresh_from_db()
    assert refund.status == RefundStatus.FAILED and refund.failure == "insufficient_funds"
    assert balance_of(subscriber).balance == D("500.00")
    assert Payment.objects.get().refunded_amount == 0
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_refund_the_gateway_cannot_be_asked_about_now_is_finished_by_the_worker(
    yookassa, subscriber, cashier, admin, django_capture_on_commit_callbacks
):
    checkout = paid_checkout(yookassa, subscriber, cashier)
    yookassa.fail_next(503)
    with django_capture_on_commit_callbacks(execute=True):
        refund = actions.do_refund_payment(checkout.payment, amount="100.00", reason="x", acting_user=admin, key="r1")
    assert Refund.objects.get().status == RefundStatus.PENDING and balance_of(subscriber).balance == D("400.00")

    yookassa.refund_outcome = "pending"
    assert actions.push_pending_refunds() == 1  # asked again with the same key: YooKassa has it pending
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING and refund.external_id
    yookassa.refunds[refund.external_id]["status"] = "succeeded"
    deliver(yookassa.notice("refund.succeeded", yookassa.refunds[refund.external_id]))

    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert yookassa.posts("/v3/refunds") == [our_key("refund", refund.pk)] * 2
    assert balance_of(subscriber).balance == D("400.00") and ledger.verify() == []


@pytest.mark.django_db
def test_an_answer_the_intake_refuses_is_a_503_and_kept_as_failed(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier)
    paid = yookassa.succeed(checkout.provider_payment_id)
    paid["amount"] = {"value": "0.00", "currency": "RUB"}  # nonsense from the gateway

    # Changed by fixonline: an amount that is not the checkout's is now refused before the intake (the attack
    # review's "the amount must match the checkout"), so the notice is rejected (answered 200: redelivering it
    # changes nothing) instead of failing in the intake with a 503. Nothing is credited either way.
    assert deliver(yookassa.notice("payment.succeeded", paid)).status_code == 200
    with clock.travel_to(later(10)):
        assert actions.sync_pending_checkouts()["errors"] == 1

    event = ProviderEvent.objects.get()
    assert event.outcome == EventOutcome.REJECTED and "is for 0.00" in event.error
    assert Payment.objects.count() == 0 and balance_of(subscriber).balance == 0
    assert Checkout.objects.get().status == CheckoutStatus.PENDING and ledger.verify() == []


@pytest.mark.django_db
def test_a_notice_whose_handler_was_lost_is_taken_over_by_a_later_redelivery(yookassa, subscriber, cashier):
    checkout = start(subscriber, cashier)
    body = yookassa.notice("payment.succeeded", yookassa.succeed(checkout.provider_payment_id))
    # Stored, then the process died before handling it (as _store leaves it).
    ProviderEvent.objects.create(
        provider="yookassa",
        event_id=f"payment.succeeded:{checkout.provider_payment_id}:succeeded",
        event="payment.succeeded",
        object_id=checkout.provider_payment_id,
        received_at=clock.now(),
        claimed_at=clock.now(),
    )

    assert deliver(body).status_code == 200  # at once: may still be in hand elsewhere, so only acknowledged
    assert balance_of(subscriber).balance == 0
    with clock.travel_to(later(3)):
        assert deliver(body).status_code == 200
    event = ProviderEvent.objects.get()
    assert event.outcome == EventOutcome.HANDLED and event.attempts == 2
    assert balance_of(subscriber).balance == D("500.00") and ledger.verify() == []


@pytest.mark.django_db
def test_only_post_is_accepted_and_unknown_gateways_are_404(yookassa):
    assert Client().get(NOTICES, REMOTE_ADDR=YOOKASSA_ADDR).status_code == 405
    assert Client().post("/pay/tbank/notifications", b"{}", content_type="application/json").status_code == 404
    assert ProviderEvent.objects.count() == 0
