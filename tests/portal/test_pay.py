"""Paying from the portal against a local YooKassa: the suggested amount, a card payment end to end (by the
notice and by the status page's own check), SBP's QR, a double submit, absurd amounts, another subscriber's
checkout, a gateway that is not set up."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.payments.models import Checkout, Payment, SavedMethod
from abonent.portal import pay_data
from tests.payments.yookassa_fake import YOOKASSA_ADDR, fake_fixture, yookassa_fixture  # noqa: F401

from .conftest import TODAY, signed_in

D = Decimal
pytestmark = pytest.mark.usefixtures("now")


def form_key(response) -> str:
    """The one-time key the payment form was rendered with."""
    return re.search(r'name="key" value="([^"]+)"', response.content.decode())[1]


def pay(client, amount="650", method="bank_card", key=None, **extra):
    key = key or form_key(client.get("/my/pay/"))
    return client.post("/my/pay/", {"amount": amount, "method_type": method, "key": key, **extra})


def later(seconds=10):
    """A moment past the status page's pause between two questions to the gateway."""
    return clock.travel_to(TODAY + dt.timedelta(seconds=seconds))


def notify(yookassa, provider_payment_id):
    paid = yookassa.succeed(provider_payment_id, saved=True)
    response = Client().post(
        "/pay/yookassa/notifications",
        data=yookassa.notice("payment.succeeded", paid),
        content_type="application/json",
        REMOTE_ADDR=YOOKASSA_ADDR,
    )
    assert response.status_code == 200, response.content


def test_the_suggested_amount_covers_next_months_fee_after_the_balance(yookassa, portal_client, subscriber):
    # Given 350 ₽ left and December's 650 ₽ due on 1 December.
    suggestion = pay_data.suggested_amount(subscriber)
    assert (suggestion.amount, suggestion.fees, suggestion.balance) == (D("300.00"), D("650.00"), D("350.00"))

    page = portal_client.get("/my/pay/")

    assert page.status_code == 200
    assert 'name="amount"' in page.content.decode() and 'value="300.00"' in page.content.decode()


def test_the_home_pages_amount_is_prefilled_and_a_bad_one_ignored(yookassa, portal_client):
    assert 'value="312.00"' in portal_client.get("/my/pay/?amount=312").content.decode()
    assert 'value="300.00"' in portal_client.get("/my/pay/?amount=-7").content.decode()


def test_paying_650_by_card_end_to_end_credits_once(yookassa, portal_client, subscriber):
    # Given the payment form.
    key = form_key(portal_client.get("/my/pay/"))

    # When the subscriber pays 650 ₽ by card: off to the gateway's page, through the payment's own page (a form's
    # redirect to another site is blocked by the CSP's form-action 'self'; pay.js follows the marked link).
    response = pay(portal_client, "650", key=key)
    checkout = Checkout.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/my/pay/{checkout.pk}/?go=1"
    assert checkout.confirmation_url.startswith("https://yoomoney.ru/checkout/")
    forward = portal_client.get(response["Location"]).content.decode()
    assert f'href="{checkout.confirmation_url}" rel="noopener noreferrer" data-pay-forward>' in forward
    assert "data-pay-forward" not in portal_client.get(f"/my/pay/{checkout.pk}/").content.decode()
    ref = hashlib.sha256(key.encode()).hexdigest()
    assert checkout.key == f"portal:{subscriber.pk}:{ref}" and checkout.amount == D("650.00")
    assert checkout.return_url == f"http://testserver/my/pay/return/{ref}/" and not checkout.save_method
    assert AuditEvent.objects.get(action="payments.checkout_started").actor_label == (
        f"subscriber:{subscriber.account_number}"
    )

    # Then the gateway takes the money and tells us; the payer comes back.
    notify(yookassa, checkout.provider_payment_id)
    back = portal_client.get(checkout.return_url.removeprefix("http://testserver"))
    assert back.status_code == 302 and back["Location"] == f"/my/pay/{checkout.pk}/"
    page = portal_client.get(back["Location"])

    assert page.status_code == 200
    assert 'data-status="succeeded"' in page.content.decode() and "1,000.00" in page.content.decode()
    assert get_balance(subscriber).balance == D("1000.00")
    assert Payment.objects.filter(subscriber=subscriber).count() == 1
    assert ledger.verify() == []


def test_without_the_notice_the_status_page_asks_the_gateway_and_credits_once(yookassa, portal_client, subscriber):
    pay(portal_client, "650")
    checkout = Checkout.objects.get()
    page = portal_client.get(f"/my/pay/{checkout.pk}/")
    assert 'data-status="pending"' in page.content.decode() and 'hx-trigger="every 3s"' in page.content.decode()

    yookassa.succeed(checkout.provider_payment_id)
    with later():
        polled = portal_client.get(f"/my/pay/{checkout.pk}/", headers={"HX-Request": "true"})
    with later(20):
        again = portal_client.get(f"/my/pay/{checkout.pk}/", headers={"HX-Request": "true"})

    assert polled.status_code == 200 and 'data-status="succeeded"' in polled.content.decode()
    assert "<html" not in polled.content.decode() and "hx-trigger" not in polled.content.decode()
    assert again.status_code == 200
    assert get_balance(subscriber).balance == D("1000.00")
    assert Payment.objects.filter(subscriber=subscriber).count() == 1


def test_sbp_shows_the_qr_code_and_the_link_for_a_phone(yookassa, portal_client):
    response = pay(portal_client, "300", method="sbp")

    checkout = Checkout.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/my/pay/{checkout.pk}/"
    page = portal_client.get(response["Location"]).content.decode()
    assert checkout.method_type == "sbp" and checkout.qr_payload.startswith("https://qr.nspk.ru/")
    assert '<svg viewBox="' in page and 'class="portal-qr-code"' in page
    assert f'href="{checkout.qr_payload}"' in page


def test_a_double_submit_or_back_and_resubmit_is_one_checkout(yookassa, portal_client):
    key = form_key(portal_client.get("/my/pay/"))

    first = pay(portal_client, "650", key=key)
    second = pay(portal_client, "650", key=key)

    assert first["Location"] == second["Location"]
    assert Checkout.objects.count() == 1 and len(yookassa.posts("/v3/payments")) == 1

    # Back, another amount, the same form: refused with a fresh key, nothing new started.
    changed = pay(portal_client, "700", key=key)
    assert changed.status_code == 422 and "already sent with other details" in changed.content.decode()
    assert form_key(changed) != key
    assert Checkout.objects.count() == 1 and len(yookassa.posts("/v3/payments")) == 1


def test_the_same_form_key_of_another_subscriber_is_another_checkout(yookassa, subscriber, stranger):
    mine, theirs = signed_in(subscriber), signed_in(stranger)
    key = form_key(mine.get("/my/pay/"))

    pay(mine, "650", key=key)
    pay(theirs, "650", key=key)

    assert sorted(Checkout.objects.values_list("subscriber_id", flat=True)) == sorted([subscriber.pk, stranger.pk])


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "The amount must be greater than zero."),
        ("-5", "The amount must be greater than zero."),
        ("1e9", "Type an amount like 650 or 650,50."),
        ("abc", "Type an amount like 650 or 650,50."),
        ("", "This field is required."),
        ("700000.01", "An online payment is at most 700,000.00"),
        ("1000000000", "An online payment is at most 700,000.00"),
        ("10.123", "At most two digits after the decimal mark."),
    ],
)
def test_absurd_amounts_are_refused_and_nothing_is_written(yookassa, portal_client, amount, message):
    response = pay(portal_client, amount)

    assert response.status_code == 422
    assert message in response.content.decode()
    assert Checkout.objects.count() == 0 and yookassa.requests == []


def test_sbp_cannot_be_saved_for_autopay(yookassa, portal_client):
    response = pay(portal_client, "100", method="sbp", save_method="on")
    assert response.status_code == 422 and "Only a bank card can be saved" in response.content.decode()
    assert Checkout.objects.count() == 0


def test_saving_the_card_passes_the_consent_shown_verbatim(yookassa, portal_client, subscriber):
    page = portal_client.get("/my/pay/").content.decode()
    consent = pay_data.save_consent_text(subscriber)
    assert consent in page.replace("&quot;", '"').replace("&#x27;", "'")

    pay(portal_client, "650", save_method="on")
    checkout = Checkout.objects.get()
    assert checkout.save_method and checkout.consent_text == consent and checkout.consent_source == "portal"

    notify(yookassa, checkout.provider_payment_id)
    method = SavedMethod.objects.get(subscriber=subscriber)
    assert method.active and method.consent_text == consent and method.title == "Bank card *4444"


def test_a_declined_card_says_why_and_offers_to_try_again(yookassa, portal_client, subscriber):
    pay(portal_client, "650")
    checkout = Checkout.objects.get()
    yookassa.cancel(checkout.provider_payment_id, "insufficient_funds")

    with later():
        page = portal_client.get(f"/my/pay/{checkout.pk}/").content.decode()

    assert 'data-status="failed"' in page and "There was not enough money on the card or account." in page
    assert 'href="/my/pay/?amount=650.00"' in page
    assert get_balance(subscriber).balance == D("350.00")


def test_another_subscribers_checkout_is_not_found_and_not_asked_about(yookassa, subscriber, stranger):
    theirs = signed_in(stranger)
    pay(theirs, "650")
    checkout = Checkout.objects.get()
    ref = checkout.key.rsplit(":", 1)[1]
    asked, synced_at = len(yookassa.requests), checkout.synced_at

    mine = signed_in(subscriber)
    with later():
        assert mine.get(f"/my/pay/{checkout.pk}/").status_code == 404
        assert mine.get(f"/my/pay/{checkout.pk}/", headers={"HX-Request": "true"}).status_code == 404
        assert mine.post(f"/my/pay/{checkout.pk}/").status_code == 404
        assert mine.get(f"/my/pay/return/{ref}/").status_code == 404
        assert mine.get("/my/pay/return/not-a-ref/").status_code == 404

    assert len(yookassa.requests) == asked
    checkout.refresh_from_db()
    assert checkout.synced_at == synced_at and checkout.status == "pending"


def test_without_a_gateway_the_page_says_so_and_a_post_starts_nothing(portal_client, subscriber):
    page = portal_client.get("/my/pay/").content.decode()
    assert "Online payment is not available yet" in page and "data-pay-form" not in page

    response = pay(portal_client, "650", key="k" * 32)

    assert response.status_code == 422
    assert "Online payments are not set up" in response.content.decode()
    assert Checkout.objects.count() == 0


def test_an_expired_session_pays_nothing(yookassa, subscriber):
    response = Client().post("/my/pay/", {"amount": "650", "method_type": "bank_card", "key": "k" * 32})
    assert response.status_code == 302 and response["Location"] == "/my/login/"
    assert Checkout.objects.count() == 0 and yookassa.requests == []


def test_a_tampered_form_key_is_refused(yookassa, portal_client):
    response = pay(portal_client, "650", key="<script>")
    assert response.status_code == 422 and "This form is out of date" in response.content.decode()
    assert Checkout.objects.count() == 0
