"""Receipts in the portal: each payment with its fiscal receipt, pending until the cash register (a local ATOL
Online) reports it, then its fiscal data, QR code and check link; another subscriber's payment is not found."""

from __future__ import annotations

import datetime as dt

import pytest

from abonent.core import clock
from abonent.payments import actions
from abonent.payments.actions.receipts import process_due_receipts
from abonent.payments.models import FiscalReceipt, PaymentMethod, ReceiptStatus
from tests.payments.conftest import FakeAtol

from .conftest import TODAY, signed_in

pytestmark = pytest.mark.usefixtures("now")


@pytest.fixture
def atol(httpserver, settings):
    from abonent.payments.fiscal.atol import forget_tokens

    fake = FakeAtol(httpserver)
    fake.auto_done = True
    settings.ABONENT_FISCAL_PROVIDER = "atol"
    settings.ABONENT_ATOL_API_URL = fake.url
    settings.ABONENT_ATOL_LOGIN = fake.login
    settings.ABONENT_ATOL_PASSWORD = fake.password
    settings.ABONENT_ATOL_GROUP_CODE = fake.group
    settings.ABONENT_ATOL_TIMEOUT = 2
    settings.ABONENT_FISCAL_INN = "6950000000"
    settings.ABONENT_FISCAL_EMAIL = "kassa@isp.example"
    settings.ABONENT_FISCAL_PAYMENT_ADDRESS = "https://lk.isp.example"
    settings.ABONENT_FISCAL_CHECK_URL = "https://check.ofd.example/?fn={fn}&i={fd}&fp={fp}"
    forget_tokens()
    yield fake
    forget_tokens()


@pytest.fixture
def take(django_capture_on_commit_callbacks):
    """A payment through the intake with its events run, as after the commit (the receipt gets queued)."""

    def run(subscriber, amount, external_id):
        with django_capture_on_commit_callbacks(execute=True):
            return actions.do_receive_payment(
                channel="cash",
                external_id=external_id,
                amount=amount,
                method=PaymentMethod.CASH,
                subscriber=subscriber,
            ).payment

    return run


def registered():
    """The worker sends the queued receipts, then fetches ATOL's report a minute later."""
    process_due_receipts()
    with clock.travel_to(TODAY + dt.timedelta(minutes=2)):
        process_due_receipts()


def test_a_receipt_is_pending_then_shows_its_fiscal_data(atol, take, portal_client, subscriber):
    payment = take(subscriber, "650.00", "c-1")

    listing = portal_client.get("/my/pay/receipts/").content.decode()
    assert "650.00" in listing and "Receipt: Being registered" in listing
    pending = portal_client.get(f"/my/pay/receipts/{payment.pk}/").content.decode()
    assert "being registered with the tax service" in pending

    registered()

    receipt = FiscalReceipt.objects.get(payment=payment)
    assert receipt.status == ReceiptStatus.DONE
    listing = portal_client.get("/my/pay/receipts/").content.decode()
    assert "Receipt: Registered" in listing
    page = portal_client.get(f"/my/pay/receipts/{payment.pk}/").content.decode()
    assert '<dd class="col-6" data-testid="receipt-fn">9999078900004312</dd>' in page
    assert '<dd class="col-6" data-testid="receipt-fd">101</dd>' in page
    assert '<dd class="col-6" data-testid="receipt-fp">3449555941</dd>' in page
    assert "12/31/2025" in page  # the receipt's own date and time (tag 1012)
    assert 'class="portal-qr-code"' in page
    assert 'href="https://check.ofd.example/?fn=9999078900004312&amp;i=101&amp;fp=3449555941"' in page
    assert 'href="https://www.nalog.gov.ru"' in page


def test_a_payment_without_a_cash_register_says_no_receipt_is_needed(take, portal_client, subscriber):
    payment = take(subscriber, "100.00", "c-2")

    page = portal_client.get(f"/my/pay/receipts/{payment.pk}/").content.decode()

    assert "We do not issue a receipt for this payment" in page
    assert "Receipt: Not required" in portal_client.get("/my/pay/receipts/").content.decode()


def test_another_subscribers_payment_is_not_found(take, portal_client, subscriber, stranger):
    theirs = take(stranger, "900.00", "c-3")

    assert portal_client.get(f"/my/pay/receipts/{theirs.pk}/").status_code == 404
    assert "900.00" not in portal_client.get("/my/pay/receipts/").content.decode()
    assert signed_in(stranger).get(f"/my/pay/receipts/{theirs.pk}/").status_code == 200


def test_receipts_page_on_by_a_cursor_and_a_forged_cursor_starts_over(take, portal_client, subscriber):
    for n in range(1, 33):
        with clock.travel_to(TODAY + dt.timedelta(minutes=n)):
            take(subscriber, f"{n}.00", f"c-{n}")

    first = portal_client.get("/my/pay/receipts/")
    assert first.content.decode().count('data-testid="receipt-row"') == 30
    cursor = first.context["next_cursor"]
    second = portal_client.get("/my/pay/receipts/", {"cursor": cursor}).content.decode()
    assert second.count('data-testid="receipt-row"') == 2 and "2.00" in second and "1.00" in second
    forged = portal_client.get("/my/pay/receipts/", {"cursor": "!!!"})
    assert forged.status_code == 200 and forged.content.decode().count('data-testid="receipt-row"') == 30
