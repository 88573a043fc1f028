"""Fiscal receipts seen from outside: ATOL's callback (only a hint: the report is fetched again), the receipt
section of a payment's card, the list of receipts not done and the retry staff press after fixing settings."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client, RequestFactory

from abonent.core import clock
from abonent.payments import actions
from abonent.payments.actions.receipts import process_due_receipts
from abonent.payments.models import FiscalReceipt, PaymentMethod, ReceiptStatus
from abonent.payments.views.receipts import payment_receipt_section
from abonent.staff.permissions import Role

MSK = ZoneInfo("Europe/Moscow")
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=MSK)
CALLBACK = "/pay/atol/callback"


@pytest.fixture
def sent(atol, subscriber, django_capture_on_commit_callbacks):
    """A cash payment whose receipt ATOL has accepted (and not yet fiscalized)."""
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        payment = actions.do_receive_payment(
            channel="cash", external_id="c1", amount="650.00", method=PaymentMethod.CASH, subscriber=subscriber
        ).payment
    with clock.travel_to(T0):
        process_due_receipts()
    receipt = FiscalReceipt.objects.get(payment=payment)
    assert receipt.status == ReceiptStatus.SENT
    return receipt


def post_callback(body, **kw):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return Client().post(CALLBACK, data=data, content_type="application/json", **kw)


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_callback_is_checked_against_atol_and_stores_the_fiscal_attributes(atol, sent):
    atol.finish(sent.uuid)
    response = post_callback(atol.report_body(sent.uuid))
    assert response.status_code == 200 and response.json() == {"status": "done"}
    sent.refresh_from_db()
    assert sent.status == ReceiptStatus.DONE and sent.fiscal_document_number == 101
    assert atol.calls("report")[-1][3].startswith("tok-")  # fetched from ATOL with our token
    # Delivered again: nothing changes, ATOL is not asked again.
    reports = len(atol.calls("report"))
    assert post_callback(atol.report_body(sent.uuid)).json() == {"status": "done"}
    assert len(atol.calls("report")) == reports


@pytest.mark.django_db
def test_a_forged_callback_changes_nothing(atol, sent):
    forged = {
        "uuid": sent.uuid,
        "status": "done",
        "error": None,
        "payload": {
            "total": 1,
            "fn_number": "1",
            "fiscal_document_number": 1,
            "fiscal_document_attribute": 1,
            "receipt_datetime": "01.01.2026 00:00:00",
            "shift_number": 1,
            "fiscal_receipt_number": 1,
            "ecr_registration_number": "1",
            "fns_site": "evil.example",
        },
    }
    response = post_callback(forged)
    assert response.status_code == 200 and response.json() == {"status": "sent"}  # ATOL says: still waiting
    sent.refresh_from_db()
    assert sent.status == ReceiptStatus.SENT and sent.fn_number == "" and sent.report == {}
    # A failed status claimed by a stranger does not fail the receipt either.
    assert post_callback({**forged, "status": "fail"}).json() == {"status": "sent"}
    assert FiscalReceipt.objects.get(pk=sent.pk).status == ReceiptStatus.SENT

    assert post_callback({**forged, "uuid": "00000000-0000-0000-0000-000000000000"}).status_code == 404
    assert post_callback(b"\xff not json").status_code == 400
    assert post_callback({"status": "done"}).status_code == 400
    assert post_callback([1, 2]).status_code == 400
    assert post_callback({"uuid": "x" * 500}).status_code == 400
    assert Client().get(CALLBACK).status_code == 405


@pytest.mark.django_db
def test_the_card_section_shows_the_fiscal_attributes_and_the_check_link(atol, sent, admin, settings):
    settings.ABONENT_FISCAL_CHECK_URL = "https://check.ofd.ru/rec/{inn}/{rn}/{fn}/{fd}/{fp}"
    atol.finish(sent.uuid)
    post_callback(atol.report_body(sent.uuid))
    request = RequestFactory().get("/")
    request.user = admin
    html = payment_receipt_section(request, sent.payment)
    assert 'data-status="done"' in html and "9999078900004312" in html and "3449555941" in html
    assert "t=20251231T2330&amp;s=650.00&amp;fn=9999078900004312&amp;i=101&amp;fp=3449555941&amp;n=1" in html
    assert 'href="https://check.ofd.ru/rec/6950000000/0000000001002292/9999078900004312/101/3449555941"' in html
    assert "Send the receipt again" not in html


@pytest.mark.django_db
def test_a_failed_receipt_is_listed_shown_with_its_error_and_retried_by_an_administrator(
    atol, subscriber, admin, make_staff, django_capture_on_commit_callbacks
):
    cashier = make_staff(Role.CASHIER)
    atol.refuse_next = 1
    with django_capture_on_commit_callbacks(execute=True):
        payment = actions.do_receive_payment(
            channel="cash", external_id="c2", amount="100.00", method=PaymentMethod.CASH, subscriber=subscriber
        ).payment
    process_due_receipts()
    receipt = FiscalReceipt.objects.get(payment=payment)
    assert receipt.status == ReceiptStatus.FAILED

    page = logged_in(cashier).get("/staff/payments/receipts/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f'id="receipt-{receipt.pk}"' in text and "code 32" in text and "Send the receipt again" not in text
    assert logged_in(cashier).post(f"/staff/payments/receipts/{receipt.pk}/retry/").status_code == 403
    assert FiscalReceipt.objects.get(pk=receipt.pk).status == ReceiptStatus.FAILED
    assert logged_in(make_staff(Role.ENGINEER)).get("/staff/payments/receipts/").status_code == 403
    assert Client().get("/staff/payments/receipts/").status_code == 302  # to the login

    request = RequestFactory().get("/")
    request.user = admin
    section = payment_receipt_section(request, payment)
    assert "code 32" in section and "Send the receipt again" in section

    admin_client = logged_in(admin)
    assert "Send the receipt again" in admin_client.get("/staff/payments/receipts/?status=failed").content.decode()
    response = admin_client.post(f"/staff/payments/receipts/{receipt.pk}/retry/", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "The receipt is queued again." in response.content.decode()
    assert FiscalReceipt.objects.get(pk=receipt.pk).status == ReceiptStatus.QUEUED
    # A second press (a double click) is refused with a message, not a 500.
    again = admin_client.post(f"/staff/payments/receipts/{receipt.pk}/retry/", headers={"HX-Request": "true"})
    assert again.status_code == 422 and "Only a failed receipt can be sent again." in again.content.decode()
    assert admin_client.get(f"/staff/payments/receipts/{receipt.pk}/retry/").status_code == 405
    process_due_receipts()
    assert FiscalReceipt.objects.get(pk=receipt.pk).status == ReceiptStatus.SENT
    assert f'id="receipt-{receipt.pk}"' in admin_client.get("/staff/payments/receipts/?status=sent").content.decode()
    assert (
        f'id="receipt-{receipt.pk}"' not in admin_client.get("/staff/payments/receipts/?status=failed").content.decode()
    )


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_a_receipt_once(atol, subscriber, together):
    if connection.vendor != "postgresql":
        pytest.skip("row locks (SELECT … FOR UPDATE SKIP LOCKED) need PostgreSQL; SQLite runs one writer at a time")
    from abonent.payments.actions.receipts import do_queue_payment_receipt

    payments = [
        actions.do_receive_payment(
            channel="cash", external_id=f"w{i}", amount="10.00", method=PaymentMethod.CASH, subscriber=subscriber
        ).payment
        for i in range(4)
    ]
    for payment in payments:  # the events, delivered (this test commits for real)
        do_queue_payment_receipt(payment.pk)
    together(process_due_receipts, process_due_receipts)
    assert len(atol.calls("sell")) == 4 and len(atol.documents) == 4
    assert FiscalReceipt.objects.filter(status=ReceiptStatus.SENT).count() == 4


def test_the_worker_sends_receipts_every_minute():
    from abonent.core.scheduler import _jobs

    job = _jobs["payments.fiscal_receipts"]
    assert job.every == dt.timedelta(minutes=1)


def test_fiscal_settings_are_checked_at_start(settings):
    from abonent.payments.system_checks import check_fiscal_settings

    assert check_fiscal_settings(None) == []  # no cash register: nothing to check
    settings.ABONENT_FISCAL_PROVIDER = "atoll"
    assert [p.id for p in check_fiscal_settings(None)] == ["payments.E001"]
    settings.ABONENT_FISCAL_PROVIDER = "atol"
    settings.ABONENT_FISCAL_VAT = "vat18"
    settings.ABONENT_FISCAL_VAT_RATES = "2026:22"
    settings.ABONENT_ATOL_LOGIN = ""
    settings.ABONENT_FISCAL_INN = ""
    assert [p.id for p in check_fiscal_settings(None)] == [
        "payments.E002",
        "payments.E003",
        "payments.W001",
        "payments.W002",
    ]
