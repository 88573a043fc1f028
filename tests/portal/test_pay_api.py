"""The app's Pay API (/api/v1/my/…) against a local YooKassa: a payment started, retried and followed; absurd
amounts; autopay with consent; saved cards, receipts and the statement; another subscriber's ids are 404."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.payments import actions
from abonent.payments.models import AutopayPlan, Checkout, Payment, PaymentMethod, SavedMethod
from abonent.portal import pay_data
from tests.payments.yookassa_fake import fake_fixture, yookassa_fixture  # noqa: F401

from .conftest import TODAY, api_of

D = Decimal
pytestmark = pytest.mark.usefixtures("now")


def later(seconds=10):
    return clock.travel_to(TODAY + dt.timedelta(seconds=seconds))


def link(subscriber, method_id="pm-1", title="Bank card *4444"):
    return actions.do_link_method(
        subscriber,
        provider="yookassa",
        method_id=method_id,
        method_type="bank_card",
        title=title,
        consent_text=pay_data.save_consent_text(subscriber),
        consented_at=clock.now(),
        consent_source="app",
    )


def error(response) -> tuple[int, str, list]:
    body = response.json()["error"]
    return response.status_code, body["code"], [(f["field"], f["code"]) for f in body["fields"]]


def test_the_suggested_amount(yookassa, portal_api, subscriber):
    body = portal_api.get("/api/v1/my/payments/suggested").json()

    assert body["amount"] == "300.00" and body["fees"] == "650.00" and body["balance"] == "350.00"
    assert body["next_charge_on"] == "2026-12-01" and body["until"] == "2026-12-20"
    assert body["max_amount"] == "700000.00" and body["online_payments_available"] is True
    assert body["save_consent_text"] == pay_data.save_consent_text(subscriber)


def test_a_card_payment_started_retried_and_followed_to_the_money(yookassa, portal_api, subscriber):
    started = portal_api.post("/api/v1/my/payments", {"amount": "650.00"}, key="app-key-1")
    assert started.status_code == 201, started.content
    body = started.json()
    assert body["status"] == "pending" and body["confirmation_url"].startswith("https://yoomoney.ru/checkout/")
    checkout = Checkout.objects.get()
    assert checkout.key.startswith(f"portal:{subscriber.pk}:") and checkout.return_url.startswith(
        "http://testserver/my/pay/return/"
    )

    retried = portal_api.post("/api/v1/my/payments", {"amount": "650.00"}, key="app-key-1")
    other = portal_api.post("/api/v1/my/payments", {"amount": "700.00"}, key="app-key-1")
    assert retried.status_code == 201 and retried.json()["id"] == body["id"]
    assert error(other) == (409, "idempotency_key_reused", [])
    assert len(yookassa.posts("/v3/payments")) == 1

    yookassa.succeed(checkout.provider_payment_id)
    with later():
        followed = portal_api.get(f"/api/v1/my/payments/{body['id']}").json()

    assert followed["status"] == "succeeded" and followed["balance"] == "1000.00" and followed["payment_id"]
    assert Payment.objects.filter(subscriber=subscriber).count() == 1
    assert get_balance(subscriber).balance == D("1000.00") and ledger.verify() == []


def test_sbp_answers_with_the_qr_payload(yookassa, portal_api):
    body = portal_api.post("/api/v1/my/payments", {"amount": "300", "method_type": "sbp"}).json()
    assert body["qr_payload"].startswith("https://qr.nspk.ru/") and body["confirmation_url"] is None


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0", (422, "validation_error", [("amount", "amount_not_positive")])),
        ("-5", (422, "validation_error", [("amount", "string_pattern_mismatch")])),
        ("1e9", (422, "validation_error", [("amount", "string_pattern_mismatch")])),
        ("abc", (422, "validation_error", [("amount", "string_pattern_mismatch")])),
        ("700000.01", (422, "validation_error", [("amount", "amount_too_large")])),
        (1000000000, (422, "validation_error", [("amount", "string_type")])),
    ],
)
def test_absurd_amounts_are_refused_and_nothing_is_written(yookassa, portal_api, amount, expected):
    assert error(portal_api.post("/api/v1/my/payments", {"amount": amount})) == expected
    assert Checkout.objects.count() == 0 and yookassa.requests == []


def test_a_payment_needs_a_key_and_saving_needs_consent(yookassa, portal_api):
    assert error(portal_api.post("/api/v1/my/payments", {"amount": "650"}, key=None)) == (
        400, "idempotency_key_required", []
    )  # fmt: skip
    assert error(portal_api.post("/api/v1/my/payments", {"amount": "650", "save_method": True})) == (
        422, "validation_error", [("consent_text", "consent_required")]
    )  # fmt: skip
    assert error(
        portal_api.post("/api/v1/my/payments", {"amount": "650", "method_type": "sbp", "save_method": True})
    ) == (422, "validation_error", [("save_method", "save_card_only")])
    assert Checkout.objects.count() == 0 and yookassa.requests == []


def test_without_a_gateway_a_payment_is_refused_with_its_code(portal_api):
    assert error(portal_api.post("/api/v1/my/payments", {"amount": "650"})) == (
        422, "validation_error", [(None, "gateway_not_configured")]
    )  # fmt: skip
    assert portal_api.get("/api/v1/my/payments/suggested").json()["online_payments_available"] is False


def test_another_subscribers_checkout_card_and_receipts_are_out_of_reach(yookassa, portal_api, stranger):
    theirs = api_of(stranger)
    checkout_id = theirs.post("/api/v1/my/payments", {"amount": "900"}).json()["id"]
    card = link(stranger)
    actions.do_receive_payment(
        channel="cash", external_id="c-9", amount="900.00", method=PaymentMethod.CASH, subscriber=stranger
    )
    asked = len(yookassa.requests)

    with later():
        assert error(portal_api.get(f"/api/v1/my/payments/{checkout_id}")) == (404, "not_found", [])
        assert error(portal_api.delete(f"/api/v1/my/methods/{card.pk}")) == (404, "not_found", [])
        put = portal_api.put("/api/v1/my/autopay", {"method_id": card.pk, "debit_day": 5, "consent_text": "Да"})
    assert error(put) == (422, "validation_error", [("method_id", "method_foreign")])
    assert portal_api.get("/api/v1/my/methods").json() == []
    assert portal_api.get("/api/v1/my/receipts").json() == {"items": [], "next_cursor": None}
    assert len(yookassa.requests) == asked
    card.refresh_from_db()
    assert card.active and AutopayPlan.objects.count() == 0


def test_autopay_turned_on_with_consent_off_and_the_card_unlinked(portal_api, subscriber):
    card = link(subscriber)
    state = portal_api.get("/api/v1/my/autopay").json()
    assert state["autopay"] is None and [m["title"] for m in state["methods"]] == ["Bank card *4444"]
    assert state["consent_text"] == pay_data.autopay_consent_text(subscriber)

    settings = {"method_id": card.pk, "mode": "day", "debit_day": 5, "amount_mode": "cover"}
    assert error(portal_api.put("/api/v1/my/autopay", settings)) == (
        422, "validation_error", [("consent_text", "missing")]
    )  # fmt: skip
    assert error(portal_api.put("/api/v1/my/autopay", {**settings, "consent_text": " "})) == (
        422, "validation_error", [("consent_text", "consent_required")]
    )  # fmt: skip
    assert AutopayPlan.objects.count() == 0

    on = portal_api.put("/api/v1/my/autopay", {**settings, "consent_text": state["consent_text"]})
    assert on.status_code == 200 and on.json()["enabled"] is True and on.json()["debit_day"] == 5
    consent = AuditEvent.objects.get(action="portal.autopay_consent")
    assert consent.after["consent_text"] == state["consent_text"] and consent.after["consent_source"] == "app"

    off = portal_api.delete("/api/v1/my/autopay")
    assert off.status_code == 200 and off.json()["enabled"] is False

    unlinked = portal_api.delete(f"/api/v1/my/methods/{card.pk}")
    assert unlinked.status_code == 200 and unlinked.json()["active"] is False
    assert portal_api.get("/api/v1/my/methods").json() == []
    assert not SavedMethod.objects.get(pk=card.pk).active


def test_autopay_off_without_autopay_is_not_found(portal_api):
    assert error(portal_api.delete("/api/v1/my/autopay")) == (404, "not_found", [])


def test_receipts_list_the_payments(portal_api, subscriber):
    payment = actions.do_receive_payment(
        channel="cash", external_id="c-1", amount="500.00", method=PaymentMethod.CASH, subscriber=subscriber
    ).payment

    body = portal_api.get("/api/v1/my/receipts").json()

    assert [(i["payment_id"], i["amount"], i["method"]) for i in body["items"]] == [(payment.pk, "500.00", "cash")]
    assert error(portal_api.get("/api/v1/my/receipts", {"cursor": "nope"})) == (
        422, "validation_error", [("cursor", "cursor_invalid")]
    )  # fmt: skip


def test_the_statement_adds_up_and_bad_periods_are_refused(portal_api, subscriber):
    body = portal_api.get("/api/v1/my/statement", {"from": "2026-11-01", "to": "2026-11-30"}).json()

    assert body["opening_balance"] == "0.00" and body["closing_balance"] == "350.00"
    assert [(line["kind"], line["description"], line["amount"], line["balance_after"]) for line in body["lines"]] == [
        ("payment", "", "1000.00", "1000.00"),
        ("fee", "Интернет-100 01.11.2026–30.11.2026", "-650.00", "350.00"),
    ]
    assert D(body["opening_balance"]) + D(body["credits"]) + D(body["debits"]) == D(body["closing_balance"])

    reversed_ = portal_api.get("/api/v1/my/statement", {"from": "2026-12-01", "to": "2026-11-01"})
    too_long = portal_api.get("/api/v1/my/statement", {"from": "2020-01-01", "to": "2026-11-01"})
    assert error(reversed_) == (422, "validation_error", [("to", "dates_reversed")])
    assert error(too_long) == (422, "validation_error", [("to", "period_too_long")])
    assert portal_api.get("/api/v1/my/statement", {"from": "x", "to": "2026-11-01"}).status_code == 422
    assert portal_api.get("/api/v1/my/statement").status_code == 422
