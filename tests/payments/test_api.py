"""``/api/v1/payments``: list, get, take, refund, cancel, the suspense queue, assign, and statement upload —
retries with the same Idempotency-Key, a key reused with another body, permissions and branches."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from abonent.api.models import IdempotencyRecord
from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.payments import actions
from abonent.payments.models import BankStatement, Payment, PaymentMethod, Refund
from abonent.staff.actions import do_create_api_token
from abonent.staff.permissions import Role

from .statement_samples import cp1251, document, statement

D = Decimal


def balance(subscriber) -> Decimal:
    return get_balance(subscriber).balance


def codes(response) -> list[tuple[str | None, str]]:
    return [(f["field"], f["code"]) for f in response.json()["error"]["fields"]]


def take(api, subscriber, amount="650.00", *, key=..., **body):
    """Take cash through the API; ``key``: the Idempotency-Key (none given: a fresh one, ``None``: no header)."""
    data = {"channel": "cash", "subscriber_id": subscriber.pk, "amount": amount, **body}
    return api.post("/api/v1/payments", data) if key is ... else api.post("/api/v1/payments", data, key=key)


# --- taking a payment ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_cash_payment_is_credited_and_answered_with_the_new_balance(api, subscriber, admin):
    response = take(api, subscriber, "650.00", memo="квитанция 17")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["payment"]["amount"] == "650.00" and body["payment"]["status"] == "credited"
    assert body["payment"]["channel"] == "cash" and body["payment"]["method"] == "cash"
    assert body["payment"]["account_number"] == subscriber.account_number and body["payment"]["memo"] == "квитанция 17"
    assert body["payment"]["taken_by_id"] == admin.pk
    assert body["balance"]["balance"] == "650.00" and balance(subscriber) == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_by_account_number_and_manual_channel(api, subscriber):
    response = api.post(
        "/api/v1/payments", {"channel": "manual", "account_number": subscriber.account_number, "amount": "10"}
    )
    assert response.status_code == 201 and response.json()["payment"]["method"] == PaymentMethod.MANUAL
    assert balance(subscriber) == D("10.00")


@pytest.mark.django_db
def test_a_retry_with_the_same_key_credits_once(api, subscriber):
    first = take(api, subscriber, key="pay-1")
    again = take(api, subscriber, key="pay-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert Payment.objects.count() == 1 and balance(subscriber) == D("650.00")
    # Even after the stored answer is pruned, the payment's id derived from the key keeps it once
    IdempotencyRecord.objects.all().delete()
    late = take(api, subscriber, key="pay-1")
    assert late.status_code == 201 and late.json()["payment"]["id"] == first.json()["payment"]["id"]
    assert Payment.objects.count() == 1 and balance(subscriber) == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_key_reused_with_another_body_is_409_and_posts_nothing(api, subscriber):
    take(api, subscriber, "650.00", key="pay-2")
    other = take(api, subscriber, "6500.00", key="pay-2")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    IdempotencyRecord.objects.all().delete()  # the stored answer expired: the payment's id still tells
    late = take(api, subscriber, "6500.00", key="pay-2")
    assert late.status_code == 409
    assert Payment.objects.count() == 1 and balance(subscriber) == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_payment_without_a_key_is_refused(api, subscriber):
    response = take(api, subscriber, key=None)
    assert response.status_code == 400 and response.json()["error"]["code"] == "idempotency_key_required"
    assert Payment.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"amount": "-5.00"}, "amount", "string_pattern_mismatch"),
        ({"amount": "0"}, "amount", "amount_not_positive"),
        ({"amount": "0.00"}, "amount", "amount_not_positive"),
        ({"amount": "99999999999"}, "amount", "string_pattern_mismatch"),
        ({"amount": "1e3"}, "amount", "string_pattern_mismatch"),
        ({"amount": "сто"}, "amount", "string_pattern_mismatch"),
        ({"amount": 650}, "amount", "string_type"),
        ({"channel": "bank"}, "channel", "literal_error"),
        ({"channel": "agent:qiwi"}, "channel", "literal_error"),
        ({"subscriber_id": 999999}, "subscriber_id", "does_not_exist"),
        ({"subscriber_id": None}, "subscriber_id", "subscriber_required"),
        ({"subscriber_id": None, "account_number": "000000000"}, "account_number", "does_not_exist"),
        ({"received_at": "2030-01-01T00:00:00+03:00"}, "received_at", "received_in_future"),
        ({"received_at": "2001-01-01T00:00:00+03:00"}, "received_at", "received_too_long_ago"),
        ({"received_at": "вчера"}, "received_at", "datetime_from_date_parsing"),
    ],
)
def test_absurd_input_is_422_naming_the_field_and_writes_nothing(api, subscriber, body, field, code):
    data = {"channel": "cash", "subscriber_id": subscriber.pk, "amount": "650.00", **body}
    response = api.post("/api/v1/payments", data)
    assert response.status_code == 422, response.content
    assert (field, code) in codes(response)
    assert Payment.objects.count() == 0 and balance(subscriber) == D("0.00")


@pytest.mark.django_db
def test_the_largest_amount_is_what_staff_may_type(api, subscriber, settings):
    # Ten digits pass the schema; a payment taken by staff is bounded as adjustments are (ABONENT_MAX_MANUAL_AMOUNT),
    # and never past the ledger's bound on one amount.
    response = take(api, subscriber, "1000000.00")
    assert response.status_code == 201 and balance(subscriber) == D("1000000.00")
    over = take(api, subscriber, "1000000.01")
    assert over.status_code == 422 and ("amount", "amount_too_large") in codes(over)
    settings.ABONENT_MAX_MANUAL_AMOUNT = "99999999999.99"
    assert take(api, subscriber, "9999999999.99").status_code == 201
    assert take(api, subscriber, "10000000000.00").status_code == 422
    assert ledger.verify() == []


@pytest.mark.django_db
def test_who_may_take_payments(api_of, subscriber):
    assert take(api_of(Role.SUPPORT), subscriber).status_code == 403
    assert take(api_of(Role.OPERATOR), subscriber).status_code == 403
    assert take(api_of(Role.CASHIER), subscriber).status_code == 201
    assert balance(subscriber) == D("650.00")


@pytest.mark.django_db
def test_a_cashier_of_another_branch_cannot_pay_in_or_see_the_payment(api_of, subscriber, other_branch, branch):
    stranger = api_of(Role.CASHIER, branches=[other_branch])
    response = take(stranger, subscriber)
    assert response.status_code == 422 and codes(response) == [("subscriber_id", "does_not_exist")]
    local = api_of(Role.CASHIER, branches=[branch])
    payment_id = take(local, subscriber).json()["payment"]["id"]
    assert stranger.get(f"/api/v1/payments/{payment_id}").status_code == 404
    assert stranger.get("/api/v1/payments").json()["items"] == []
    assert stranger.post(f"/api/v1/payments/{payment_id}/cancel", {"reason": "x"}).status_code == 404
    assert local.get(f"/api/v1/payments/{payment_id}").status_code == 200
    assert balance(subscriber) == D("650.00")


# --- reading ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_list_filters_and_pages_with_a_cursor(api, subscriber, make_subscriber):
    other = make_subscriber(last_name="Сидоров")
    with clock.travel_to(dt.date(2026, 12, 6)):
        for day in range(1, 6):
            take(api, subscriber, f"{day}.00", received_at=f"2026-12-0{day}T10:00:00+03:00")
        take(api, other, "99.00", received_at="2026-12-03T10:00:00+03:00")
    page = api.get("/api/v1/payments", {"subscriber_id": subscriber.pk, "limit": 2}).json()
    assert [p["amount"] for p in page["items"]] == ["5.00", "4.00"] and page["next_cursor"]
    page2 = api.get("/api/v1/payments", {"subscriber_id": subscriber.pk, "limit": 2, "cursor": page["next_cursor"]})
    assert [p["amount"] for p in page2.json()["items"]] == ["3.00", "2.00"]
    window = api.get(
        "/api/v1/payments",
        {"received_from": "2026-12-02T00:00:00+03:00", "received_to": "2026-12-04T00:00:00+03:00", "channel": "cash"},
    ).json()
    assert sorted(p["amount"] for p in window["items"]) == ["2.00", "3.00", "99.00"] and window["next_cursor"] is None
    assert api.get("/api/v1/payments", {"status": "suspense"}).json()["items"] == []
    bad = api.get("/api/v1/payments", {"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and codes(bad) == [("cursor", "cursor_invalid")]
    assert api.get("/api/v1/payments", {"limit": 0}).status_code == 422
    assert api.get("/api/v1/payments", {"status": "lost"}).status_code == 422


@pytest.mark.django_db
def test_get_shows_refunds_and_unknown_ids_are_404(api, subscriber):
    payment_id = take(api, subscriber, "650.00").json()["payment"]["id"]
    api.post(f"/api/v1/payments/{payment_id}/refunds", {"amount": "50.00", "reason": "переплата"})
    body = api.get(f"/api/v1/payments/{payment_id}").json()
    assert body["refunded_amount"] == "50.00" and [r["amount"] for r in body["refunds"]] == ["50.00"]
    assert api.get("/api/v1/payments/999999").status_code == 404
    assert api.get("/api/v1/payments/abc").status_code in (404, 422)
    assert Client().get(f"/api/v1/payments/{payment_id}").status_code == 401


# --- refunds and cancellation ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_refund_within_the_payment_and_the_balance_and_a_retry_refunds_once(api, subscriber):
    payment_id = take(api, subscriber, "650.00").json()["payment"]["id"]
    url = f"/api/v1/payments/{payment_id}/refunds"
    first = api.post(url, {"amount": "100.00", "reason": "переплата"}, key="r-1")
    again = api.post(url, {"amount": "100.00", "reason": "переплата"}, key="r-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert first.json()["balance"]["balance"] == "550.00" and first.json()["refund"]["status"] == "succeeded"
    IdempotencyRecord.objects.all().delete()
    assert api.post(url, {"amount": "100.00", "reason": "переплата"}, key="r-1").status_code == 201
    assert Refund.objects.count() == 1 and balance(subscriber) == D("550.00")
    reused = api.post(url, {"amount": "200.00", "reason": "переплата"}, key="r-1")
    assert reused.status_code == 409
    too_much = api.post(url, {"amount": "600.00", "reason": "всё"})
    assert too_much.status_code == 422 and codes(too_much) == [("amount", "refund_exceeds_payment")]
    assert balance(subscriber) == D("550.00") and ledger.verify() == []


@pytest.mark.django_db
def test_refund_past_the_balance_is_refused(api, subscriber, admin):
    payment_id = take(api, subscriber, "650.00").json()["payment"]["id"]
    from abonent.billing import actions as billing

    billing.do_adjust_balance(subscriber, amount="-600.00", reason="услуги", acting_user=admin, key="spent")
    response = api.post(f"/api/v1/payments/{payment_id}/refunds", {"amount": "100.00", "reason": "x"})
    assert response.status_code == 422 and codes(response) == [("amount", "refund_exceeds_balance")]
    assert balance(subscriber) == D("50.00") and Refund.objects.count() == 0
    assert (
        api.post(f"/api/v1/payments/{payment_id}/refunds", {"amount": "1", "reason": "x"}, key=None).status_code == 400
    )
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_cashier_may_not_refund(api_of, api, subscriber):
    payment_id = take(api, subscriber).json()["payment"]["id"]
    response = api_of(Role.CASHIER).post(f"/api/v1/payments/{payment_id}/refunds", {"amount": "1.00", "reason": "x"})
    assert response.status_code == 403 and Refund.objects.count() == 0 and balance(subscriber) == D("650.00")


@pytest.mark.django_db
def test_cancel_reverses_the_payment_once(api, subscriber):
    payment_id = take(api, subscriber, "650.00").json()["payment"]["id"]
    url = f"/api/v1/payments/{payment_id}/cancel"
    response = api.post(url, {"reason": "не тот абонент"})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert balance(subscriber) == D("0.00")
    again = api.post(url, {"reason": "не тот абонент"})
    assert again.status_code == 422 and balance(subscriber) == D("0.00")
    assert api.post(url, {"reason": ""}).status_code == 422
    assert ledger.verify() == []


# --- suspense and assignment -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_suspense_queue_and_assign(api, subscriber, api_of, other_branch, make_subscriber):
    lost = actions.do_receive_payment(
        channel="agent:qiwi", external_id="t-1", amount="300.00", method="terminal", account_ref="12345"
    ).payment
    take(api, subscriber, "10.00")
    queue = api.get("/api/v1/payments/suspense").json()
    assert [p["id"] for p in queue["items"]] == [lost.pk] and queue["items"][0]["suspense_reason"] == "unknown_account"
    # A cashier of another branch sees the queue but cannot assign to a subscriber they do not see
    stranger = api_of(Role.CASHIER, branches=[other_branch])
    assert [p["id"] for p in stranger.get("/api/v1/payments/suspense").json()["items"]] == [lost.pk]
    refused = stranger.post(f"/api/v1/payments/{lost.pk}/assign", {"subscriber_id": subscriber.pk})
    assert refused.status_code == 422 and codes(refused) == [("subscriber_id", "does_not_exist")]
    assert (
        api_of(Role.SUPPORT).post(f"/api/v1/payments/{lost.pk}/assign", {"subscriber_id": subscriber.pk}).status_code
        == 403
    )
    response = api.post(f"/api/v1/payments/{lost.pk}/assign", {"subscriber_id": subscriber.pk, "reason": "звонил"})
    assert response.status_code == 200 and response.json()["payment"]["status"] == "credited"
    assert response.json()["balance"]["balance"] == "310.00"
    again = api.post(f"/api/v1/payments/{lost.pk}/assign", {"subscriber_id": subscriber.pk})
    assert again.status_code == 422 and balance(subscriber) == D("310.00")
    assert api.post("/api/v1/payments/999999/assign", {"subscriber_id": subscriber.pk}).status_code == 404
    assert ledger.verify() == []


# --- statements ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_statement_upload_as_multipart_or_raw_body_imports_once(api_token, api_of, subscriber):
    content = cp1251(statement(document(purpose=f"л/с {subscriber.account_number}"), document(number="2", amount="x")))
    client = Client(headers={"Authorization": f"Bearer {api_token}"})
    from django.core.files.uploadedfile import SimpleUploadedFile

    first = client.post("/api/v1/payments/statements", {"file": SimpleUploadedFile("kl_to_1c.txt", content)})
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["created"], body["credited"], body["broken"], body["credited_amount"]) == (True, 1, 1, "1500.00")
    assert body["filename"] == "kl_to_1c.txt" and body["encoding"] == "cp1251"
    raw = client.post("/api/v1/payments/statements?filename=again.txt", content, content_type="text/plain")
    assert raw.status_code == 200 and raw.json()["created"] is False and raw.json()["id"] == body["id"]
    assert BankStatement.objects.count() == 1 and balance(subscriber) == D("1500.00")
    # A line of a statement is a payment like any other through the API
    payment = api_of(Role.ADMIN).get("/api/v1/payments?channel=bank").json()["items"][0]
    assert payment["statement_id"] == body["id"] and payment["amount"] == "1500.00"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_statement_upload_refusals(api_token, make_staff, subscriber):
    client = Client(headers={"Authorization": f"Bearer {api_token}"})
    bad = client.post("/api/v1/payments/statements", b"%PDF-1.4", content_type="application/octet-stream")
    assert bad.status_code == 422 and codes(bad) == [("file", "statement_format")]
    empty = client.post("/api/v1/payments/statements", {})
    assert empty.status_code == 422 and codes(empty) == [("file", "required")]
    _token, support = do_create_api_token(user=make_staff(Role.SUPPORT), name="t")
    content = cp1251(statement(document(purpose=f"л/с {subscriber.account_number}")))
    denied = Client(headers={"Authorization": f"Bearer {support}"}).post(
        "/api/v1/payments/statements", content, content_type="text/plain"
    )
    assert denied.status_code == 403 and BankStatement.objects.count() == 0 and balance(subscriber) == D("0.00")


@pytest.mark.django_db
def test_cancel_and_assign_retried_with_the_same_key_get_the_first_answer(api, subscriber):
    payment_id = take(api, subscriber, "650.00").json()["payment"]["id"]
    first = api.post(f"/api/v1/payments/{payment_id}/cancel", {"reason": "ошибка"}, key="c-1")
    again = api.post(f"/api/v1/payments/{payment_id}/cancel", {"reason": "ошибка"}, key="c-1")
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    other = api.post(f"/api/v1/payments/{payment_id}/cancel", {"reason": "другая"}, key="c-1")
    assert other.status_code == 409 and balance(subscriber) == D("0.00")
    lost = actions.do_receive_payment(
        channel="agent:qiwi", external_id="t-9", amount="40.00", method="terminal", account_ref="1"
    ).payment
    url = f"/api/v1/payments/{lost.pk}/assign"
    one = api.post(url, {"subscriber_id": subscriber.pk}, key="a-1")
    two = api.post(url, {"subscriber_id": subscriber.pk}, key="a-1")
    assert one.status_code == two.status_code == 200 and one.json() == two.json()
    assert balance(subscriber) == D("40.00") and ledger.verify() == []


@pytest.mark.django_db
def test_a_statement_past_the_size_limit_is_refused(api_token, settings, subscriber):
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = cp1251(statement(document(purpose=f"л/с {subscriber.account_number}")))
    settings.ABONENT_BANK_STATEMENT_MAX_BYTES = 100
    client = Client(headers={"Authorization": f"Bearer {api_token}"})
    response = client.post("/api/v1/payments/statements", {"file": SimpleUploadedFile("s.txt", content)})
    assert response.status_code == 422 and codes(response) == [("file", "file_too_large")]
    raw = client.post("/api/v1/payments/statements", content, content_type="text/plain")
    assert raw.status_code == 422 and BankStatement.objects.count() == 0
