"""Fiscal receipts through ATOL Online v5 (a local server speaking its protocol): queued on payment, sent once
whatever the network does, fiscal attributes stored, VAT by the local date, returns, failures staff can fix."""

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from abonent.billing import ledger
from abonent.billing.selectors import get_balance as balance_of
from abonent.core import clock
from abonent.payments import actions
from abonent.payments.actions.receipts import do_queue_payment_receipt, process_due_receipts
from abonent.payments.models import FiscalReceipt, PaymentMethod, ReceiptStatus

D = Decimal
MSK = ZoneInfo("Europe/Moscow")
T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=MSK)


@pytest.fixture
def take(django_capture_on_commit_callbacks, subscriber):
    """``take(amount, **kw)``: a payment through the intake, with its events delivered (as after a commit)."""
    counter = iter(range(1, 1000))

    def run(amount="650.00", **kw):
        kw.setdefault("channel", "cash")
        kw.setdefault("method", PaymentMethod.CASH)
        kw.setdefault("subscriber", subscriber)
        kw.setdefault("external_id", f"p{next(counter)}")
        with django_capture_on_commit_callbacks(execute=True):
            return actions.do_receive_payment(amount=amount, **kw).payment

    return run


def receipt_of(payment, operation="sell"):
    return FiscalReceipt.objects.get(payment=payment, operation=operation, refund__isnull=True)


def run_at(moment):
    with clock.travel_to(moment):
        return process_due_receipts()


@pytest.mark.django_db
def test_a_cash_payment_gets_an_advance_receipt_sent_once_and_done_by_polling(atol, take, subscriber):
    with clock.travel_to(T0):
        payment = take("650.00")
    receipt = receipt_of(payment)
    assert receipt.status == ReceiptStatus.QUEUED and receipt.external_id == f"abn-pay-{payment.pk}"

    run_at(T0)
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.SENT and receipt.uuid
    ((_m, _op, body, token),) = atol.calls("sell")
    assert token == "tok-1" and body["external_id"] == receipt.external_id
    assert body["timestamp"] == "02.03.2026 10:00:00"
    assert body["service"] == {"callback_url": "https://billing.isp.example/pay/atol/callback"}
    document = body["receipt"]
    assert document["client"] == {"phone": "+79161234567"}
    assert document["company"] == {
        "email": "kassa@isp.example",
        "sno": "osn",
        "inn": "6950000000",
        "payment_address": "https://lk.isp.example",
    }
    (item,) = document["items"]
    assert item == {
        "name": f"Аванс за услуги связи л/с {subscriber.account_number}",
        "price": D("650.00"),
        "quantity": D("1.000"),
        "sum": D("650.00"),
        "measure": 0,
        "payment_method": "advance",
        "payment_object": 10,
        "vat": {"type": "vat122", "sum": D("117.21")},  # 650 × 22 / 122 = 117.2131…
    }
    assert document["payments"] == [{"type": 0, "sum": D("650.00")}] and document["total"] == D("650.00")
    assert receipt.request["total"] == 650.0  # what was sent, kept

    # Not due before its backoff; then ATOL still waits; then it is done.
    run_at(T0 + dt.timedelta(seconds=30))
    assert len(atol.calls("report")) == 0
    run_at(T0 + dt.timedelta(minutes=1))
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.SENT and len(atol.calls("report")) == 1
    atol.finish(receipt.uuid)
    run_at(T0 + dt.timedelta(minutes=2))
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.DONE
    assert receipt.fn_number == "9999078900004312" and receipt.fiscal_document_number == 101
    assert receipt.fiscal_document_attribute == 3449555941 and receipt.shift_number == 23
    assert receipt.fiscal_receipt_number == 1 and receipt.ecr_registration_number == "0000000001002292"
    assert receipt.fiscal_total == D("650.00") and receipt.ofd_url == "www.nalog.gov.ru"
    assert receipt.receipt_datetime == dt.datetime(2025, 12, 31, 23, 30, tzinfo=MSK)
    assert receipt.qr_text == "t=20251231T2330&s=650.00&fn=9999078900004312&i=101&fp=3449555941&n=1"
    assert len(atol.calls("getToken")) == 1 and len(atol.calls("sell")) == 1
    # Done is done: nothing more is asked of ATOL.
    run_at(T0 + dt.timedelta(hours=2))
    assert len(atol.calls("report")) == 2
    assert balance_of(subscriber).balance == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_repeated_event_makes_no_second_receipt(atol, take):
    payment = take("100.00")
    again = do_queue_payment_receipt(payment.pk)
    assert again.pk == receipt_of(payment).pk and FiscalReceipt.objects.count() == 1


@pytest.mark.django_db
def test_a_timeout_after_atol_accepted_is_retried_with_the_same_id_and_atol_keeps_one_receipt(atol, take):
    with clock.travel_to(T0):
        payment = take("300.00")
    atol.lose_next = 1
    run_at(T0)
    receipt = receipt_of(payment)
    assert receipt.status == ReceiptStatus.QUEUED and receipt.attempts == 1
    assert "in time" in receipt.last_error and receipt.next_attempt_at == T0 + dt.timedelta(minutes=1)
    assert len(atol.documents) == 1  # ATOL has it; we do not know yet
    assert atol.answered_late.wait(5)

    run_at(T0 + dt.timedelta(minutes=1))
    receipt.refresh_from_db()
    sells = atol.calls("sell")
    assert len(sells) == 2 and sells[0][2]["external_id"] == sells[1][2]["external_id"] == receipt.external_id
    assert sells[0][2]["receipt"] == sells[1][2]["receipt"]  # the same document, not a new one
    assert len(atol.documents) == 1
    (document,) = atol.documents.values()
    assert receipt.status == ReceiptStatus.SENT and receipt.uuid == document["uuid"] and receipt.last_error == ""
    atol.finish(receipt.uuid)
    run_at(T0 + dt.timedelta(minutes=2))
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.DONE and len(atol.documents) == 1
    assert ledger.verify() == []


@pytest.mark.django_db
def test_server_errors_back_off_1_2_5_minutes_then_the_receipt_goes_out(atol, take):
    with clock.travel_to(T0):
        payment = take("200.00")
    atol.fail_next = 3
    receipt = receipt_of(payment)
    moments = []
    moment = T0
    for _ in range(3):
        run_at(moment)
        receipt.refresh_from_db()
        assert receipt.status == ReceiptStatus.QUEUED and "HTTP 500" in receipt.last_error
        moments.append(receipt.next_attempt_at - moment)
        # Nothing is sent before the pause is over.
        run_at(receipt.next_attempt_at - dt.timedelta(seconds=1))
        moment = receipt.next_attempt_at
    assert moments == [dt.timedelta(minutes=1), dt.timedelta(minutes=2), dt.timedelta(minutes=5)]
    assert len(atol.calls("sell")) == 3
    run_at(moment)
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.SENT and len(atol.calls("sell")) == 4 and len(atol.documents) == 1


@pytest.mark.django_db
def test_an_expired_token_is_fetched_again_and_the_request_repeated(atol, take):
    with clock.travel_to(T0):
        first = take("100.00")
        second = take("200.00")
    run_at(T0)
    assert len(atol.calls("getToken")) == 1 and len(atol.documents) == 2  # one token for both

    atol.expire_tokens()
    atol.finish(receipt_of(first).uuid)
    run_at(T0 + dt.timedelta(minutes=1))
    assert len(atol.calls("getToken")) == 2
    assert receipt_of(first).status == ReceiptStatus.DONE and receipt_of(second).status == ReceiptStatus.SENT
    tokens = [token for _m, _kind, _body, token in atol.calls("report")]
    assert tokens == ["tok-1", "tok-2", "tok-2"]


@pytest.mark.django_db
def test_a_token_older_than_a_day_is_not_used(atol, take):
    with clock.travel_to(T0):
        take("100.00")
    run_at(T0)
    with clock.travel_to(T0 + dt.timedelta(days=1)):
        take("200.00", external_id="later")
    run_at(T0 + dt.timedelta(days=1))
    assert [token for *_rest, token in atol.calls("sell")] == ["tok-1", "tok-2"]


@pytest.mark.django_db
def test_a_refused_document_fails_for_staff_and_is_sent_again_after_the_fix(atol, take, settings, admin):
    with clock.travel_to(T0):
        payment = take("100.00")
    atol.refuse_next = 1
    run_at(T0)
    receipt = receipt_of(payment)
    assert receipt.status == ReceiptStatus.FAILED and "code 32" in receipt.last_error
    assert receipt.next_attempt_at is None
    run_at(T0 + dt.timedelta(hours=3))
    assert len(atol.calls("sell")) == 1  # a failed receipt is not retried by itself

    with clock.travel_to(T0 + dt.timedelta(hours=3)):
        actions.do_retry_receipt(receipt, acting_user=admin)
    run_at(T0 + dt.timedelta(hours=3))
    receipt.refresh_from_db()
    # Refused at intake: ATOL never registered the id, so the same one goes out again.
    assert receipt.status == ReceiptStatus.SENT and receipt.external_id == f"abn-pay-{payment.pk}"


@pytest.mark.django_db
def test_wrong_settings_fail_the_receipt_without_calling_atol(atol, take, settings, admin, cashier):
    settings.ABONENT_FISCAL_INN = "12345"
    with clock.travel_to(T0):
        payment = take("100.00")
    run_at(T0)
    receipt = receipt_of(payment)
    assert receipt.status == ReceiptStatus.FAILED and "ABONENT_FISCAL_INN" in receipt.last_error
    assert atol.requests == []
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        actions.do_retry_receipt(receipt, acting_user=cashier)
    settings.ABONENT_FISCAL_INN = "6950000000"
    with clock.travel_to(T0 + dt.timedelta(minutes=5)):
        actions.do_retry_receipt(receipt, acting_user=admin)
    run_at(T0 + dt.timedelta(minutes=5))
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.SENT
    assert atol.calls("sell")[0][2]["receipt"]["company"]["inn"] == "6950000000"


@pytest.mark.django_db
def test_wrong_credentials_fail_the_receipt(atol, take, settings):
    settings.ABONENT_ATOL_PASSWORD = "wrong"
    with clock.travel_to(T0):
        payment = take("100.00")
    run_at(T0)
    receipt = receipt_of(payment)
    assert receipt.status == ReceiptStatus.FAILED and "code 12" in receipt.last_error


@pytest.mark.django_db
def test_a_document_atol_accepted_and_then_failed_is_retried_under_a_new_id(atol, take, admin):
    with clock.travel_to(T0):
        payment = take("100.00")
    run_at(T0)
    receipt = receipt_of(payment)
    atol.finish(receipt.uuid, fail=True)
    run_at(T0 + dt.timedelta(minutes=1))
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.FAILED and "Ошибка ФН" in receipt.last_error
    with clock.travel_to(T0 + dt.timedelta(minutes=2)):
        actions.do_retry_receipt(receipt, acting_user=admin)
    run_at(T0 + dt.timedelta(minutes=2))
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.SENT and receipt.external_id == f"abn-pay-{payment.pk}-2"
    assert len(atol.documents) == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("received_at", "vat", "tax"),
    [
        # 23:30 on 31 December in Moscow is 20:30 UTC: still 2025, 20/120.
        (dt.datetime(2025, 12, 31, 23, 30, tzinfo=MSK), "vat120", D("108.33")),
        # 00:10 on 1 January in Moscow is 21:10 UTC on 31 December: already 2026 where the ISP is, 22/122.
        (dt.datetime(2026, 1, 1, 0, 10, tzinfo=MSK), "vat122", D("117.21")),
    ],
)
def test_vat_is_the_rate_of_the_local_date_of_the_payment(atol, take, received_at, vat, tax):
    with clock.travel_to(received_at):
        payment = take("650.00", received_at=received_at)
        process_due_receipts()
    receipt = receipt_of(payment)
    assert receipt.vat == vat
    body = atol.calls("sell")[0][2]["receipt"]
    assert body["items"][0]["vat"] == {"type": vat, "sum": tax} and body["vats"] == [{"type": vat, "sum": tax}]


@pytest.mark.django_db
def test_a_simplified_tax_system_sends_no_vat(atol, take, settings):
    settings.ABONENT_FISCAL_SNO = "usn_income"
    payment = take("650.00")
    process_due_receipts()
    body = atol.calls("sell")[0][2]["receipt"]
    assert receipt_of(payment).vat == "none"
    assert body["items"][0]["vat"] == {"type": "none"} and body["company"]["sno"] == "usn_income"


@pytest.mark.django_db
def test_a_fixed_vat_code_and_a_bad_one(atol, take, settings):
    settings.ABONENT_FISCAL_VAT = "vat105"
    assert receipt_of(take("210.00")).vat == "vat105"
    settings.ABONENT_FISCAL_VAT = "vat18"
    bad = receipt_of(take("210.00"))
    assert bad.status == ReceiptStatus.FAILED and "ABONENT_FISCAL_VAT" in bad.last_error


@pytest.mark.django_db
def test_an_online_payment_is_paid_electronically_and_the_email_is_preferred(atol, take, subscriber, admin):
    from abonent.subscribers import actions as subscribers

    subscribers.do_add_contact(subscriber, kind="email", value="ivan@example.ru", acting_user=admin)
    payment = take("500.00", channel="yookassa", method=PaymentMethod.ONLINE)
    process_due_receipts()
    body = atol.calls("sell")[0][2]["receipt"]
    assert body["payments"] == [{"type": 1, "sum": D("500.00")}]
    assert body["client"] == {"email": "ivan@example.ru"}
    assert receipt_of(payment).status == ReceiptStatus.SENT


@pytest.mark.django_db
def test_a_refund_gets_a_return_receipt_at_the_rate_of_the_payment(
    atol, take, admin, subscriber, django_capture_on_commit_callbacks
):
    december = dt.datetime(2025, 12, 31, 12, 0, tzinfo=MSK)
    with clock.travel_to(december):
        payment = take("650.00", received_at=december)
        process_due_receipts()
    atol.finish(receipt_of(payment).uuid)
    with clock.travel_to(T0):
        with django_capture_on_commit_callbacks(execute=True):
            refund = actions.do_refund_payment(
                payment, amount="150.00", reason="moved out", acting_user=admin, key="r1"
            )
        process_due_receipts()  # the income receipt is polled (done); the return waits for that
        process_due_receipts()
    returned = FiscalReceipt.objects.get(refund=refund)
    assert returned.operation == "sell_refund" and returned.external_id == f"abn-ref-{refund.pk}"
    run_at(T0 + dt.timedelta(minutes=1))
    returned.refresh_from_db()
    assert returned.status == ReceiptStatus.SENT
    ((_m, _op, body, _t),) = atol.calls("sell_refund")
    assert body["receipt"]["items"][0]["vat"] == {"type": "vat120", "sum": D("25.00")}
    assert body["receipt"]["total"] == D("150.00") and body["receipt"]["payments"] == [{"type": 0, "sum": D("150.00")}]
    assert balance_of(subscriber).balance == D("500.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_payment_cancelled_before_its_receipt_went_out_gets_none(
    atol, take, admin, subscriber, django_capture_on_commit_callbacks
):
    payment = take("650.00")
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_cancel_payment(payment, reason="wrong account", acting_user=admin)
    process_due_receipts()
    receipt = receipt_of(payment)
    assert receipt.status == ReceiptStatus.NOT_REQUIRED and atol.requests == []
    assert FiscalReceipt.objects.count() == 1
    assert balance_of(subscriber).balance == D("0.00") and ledger.verify() == []


@pytest.mark.django_db
def test_a_payment_cancelled_after_its_receipt_gets_a_return_receipt(
    atol, take, admin, django_capture_on_commit_callbacks
):
    with clock.travel_to(T0):
        payment = take("650.00")
        process_due_receipts()
        with django_capture_on_commit_callbacks(execute=True):
            actions.do_cancel_payment(payment, reason="wrong amount", acting_user=admin)
        process_due_receipts()
    cancel = receipt_of(payment, "sell_refund")
    assert cancel.status == ReceiptStatus.QUEUED and cancel.external_id == f"abn-cnl-{payment.pk}"
    assert atol.calls("sell_refund") == []  # not before the income receipt is done
    atol.finish(receipt_of(payment).uuid)
    run_at(T0 + dt.timedelta(minutes=1))
    run_at(T0 + dt.timedelta(minutes=2))
    cancel.refresh_from_db()
    assert cancel.status == ReceiptStatus.SENT and cancel.amount == D("650.00")
    assert atol.calls("sell_refund")[0][2]["receipt"]["total"] == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_which_payments_get_a_receipt(atol, take, settings, make_subscriber):
    from abonent.subscribers.models import SubscriberKind

    settings.ABONENT_FISCAL_OWN_AGENT_CHANNELS = ["agent:sber"]
    settings.ABONENT_FISCAL_SKIP_CHANNELS = ["cloudkassa"]
    company = make_subscriber(
        last_name="",
        first_name="",
        middle_name="",
        kind=SubscriberKind.ORGANIZATION,
        organization_name="ООО Ромашка",
        inn="7707083893",
    )
    cases = {
        "agent": take(channel="agent:qiwi", method=PaymentMethod.TERMINAL),
        "sber app": take(channel="agent:sber", method=PaymentMethod.TERMINAL),
        "org transfer": take(channel="bank", method=PaymentMethod.BANK, payer_inn="7707083893"),
        "org subscriber": take(channel="bank", method=PaymentMethod.BANK, subscriber=company),
        "ie transfer": take(channel="bank", method=PaymentMethod.BANK, payer_inn="500100732259", payer="ИП Петров"),
        "person transfer": take(channel="bank", method=PaymentMethod.BANK, payer="Иванов Иван"),
        "own receipts": take(channel="cloudkassa", method=PaymentMethod.ONLINE),
        "autopay": take(channel="yookassa", method=PaymentMethod.AUTOPAY),
        "manual": take(channel="manual", method=PaymentMethod.MANUAL),
        "unknown account cash": take(channel="cash", subscriber=None, account_ref="000"),
    }
    statuses = {name: receipt_of(p).status for name, p in cases.items()}
    assert statuses == {
        "agent": "not_required",
        "sber app": "queued",
        "org transfer": "not_required",
        "org subscriber": "not_required",
        "ie transfer": "not_required",
        "person transfer": "queued",
        "own receipts": "not_required",
        "autopay": "queued",
        "manual": "not_required",
        "unknown account cash": "queued",
    }
    assert receipt_of(cases["agent"]).status_reason == "The payment agent issues the receipt."


@pytest.mark.django_db
def test_without_a_cash_register_nothing_is_required(take, settings):
    settings.ABONENT_FISCAL_PROVIDER = "none"
    receipt = receipt_of(take("100.00"))
    assert receipt.status == ReceiptStatus.NOT_REQUIRED and receipt.status_reason == "No cash register is configured."
    assert process_due_receipts() == {}


@pytest.mark.django_db
def test_the_receipt_json_never_goes_through_float():
    from abonent.payments.fiscal.content import from_json, to_json

    text = to_json({"sum": D("0.10"), "big": D("99999999999.99"), "e": D("1E+2"), "n": 1, "s": "@1@"})
    assert json.loads(text, parse_float=str) == {"sum": "0.10", "big": "99999999999.99", "e": 100, "n": 1, "s": "@1@"}
    assert from_json(text)["sum"] == D("0.10")


@pytest.mark.django_db
def test_a_suspense_payment_returned_to_the_payer_gets_a_return_receipt(
    atol, take, admin, django_capture_on_commit_callbacks
):
    with clock.travel_to(T0):
        lost = take("400.00", subscriber=None, account_ref="12345")
        process_due_receipts()
    receipt = receipt_of(lost)
    assert receipt.request["client"] == {"email": "kassa@isp.example"}  # no buyer contact: the company's own
    atol.finish(receipt.uuid)
    with clock.travel_to(T0 + dt.timedelta(minutes=1)):
        with django_capture_on_commit_callbacks(execute=True):
            refund = actions.do_return_payment(lost, reason="returned by transfer", acting_user=admin)
        process_due_receipts()
        process_due_receipts()
    # The income receipt was polled done first, then the return went out in the same minute.
    returned = FiscalReceipt.objects.get(refund=refund)
    assert returned.status == ReceiptStatus.SENT and returned.amount == D("400.00")
    assert atol.calls("sell_refund")[0][2]["receipt"]["total"] == D("400.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_misspelt_provider_fails_receipts_until_fixed(atol, take, settings, admin):
    settings.ABONENT_FISCAL_PROVIDER = "atoll"
    with clock.travel_to(T0):
        payment = take("100.00")
    receipt = receipt_of(payment)
    assert receipt.status == ReceiptStatus.FAILED and "atoll" in receipt.last_error
    settings.ABONENT_FISCAL_PROVIDER = "atol"
    with clock.travel_to(T0):
        actions.do_retry_receipt(receipt, acting_user=admin)
    run_at(T0)
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.SENT and receipt.provider == "atol" and receipt.vat == "vat122"


@pytest.mark.django_db
def test_a_run_stops_when_its_time_is_spent_and_the_rest_goes_next_minute(atol, take):
    with clock.travel_to(T0):
        first, second = take("100.00"), take("200.00")
    atol.lose_next = 1
    atol.delay = 0.5
    with clock.travel_to(T0):
        process_due_receipts(budget_seconds=0.1)  # the first send times out (0.3 s) and spends the budget
    assert receipt_of(first).attempts == 1 and receipt_of(second).attempts == 0
    assert atol.answered_late.wait(5)
    run_at(T0 + dt.timedelta(minutes=1))
    assert receipt_of(first).status == receipt_of(second).status == ReceiptStatus.SENT
    assert len(atol.documents) == 2


@pytest.mark.django_db
def test_a_duplicate_answer_without_the_first_uuid_fails_for_staff_rather_than_guessing(atol, take):
    with clock.travel_to(T0):
        payment = take("300.00")
    atol.lose_next = 1
    atol.duplicate_uuid = False
    run_at(T0)
    assert atol.answered_late.wait(5)
    run_at(T0 + dt.timedelta(minutes=1))
    receipt = receipt_of(payment)
    assert receipt.status == ReceiptStatus.FAILED and "code 33" in receipt.last_error
    assert len(atol.documents) == 1


@pytest.mark.django_db
def test_a_payment_cancelled_after_a_send_that_timed_out_still_gets_its_return_receipt(
    atol, take, admin, django_capture_on_commit_callbacks
):
    with clock.travel_to(T0):
        payment = take("650.00")
        atol.lose_next = 1
        process_due_receipts()  # ATOL took it; we never heard back
        assert atol.answered_late.wait(5)
        with django_capture_on_commit_callbacks(execute=True):
            actions.do_cancel_payment(payment, reason="wrong account", acting_user=admin)
    origin = receipt_of(payment)
    assert origin.status == ReceiptStatus.QUEUED and origin.attempts == 1  # it may exist at ATOL: not dropped
    run_at(T0 + dt.timedelta(minutes=1))  # the retry learns the first document's uuid
    atol.finish(receipt_of(payment).uuid)
    run_at(T0 + dt.timedelta(minutes=2))
    run_at(T0 + dt.timedelta(minutes=3))
    assert receipt_of(payment).status == ReceiptStatus.DONE
    cancel = receipt_of(payment, "sell_refund")
    assert cancel.status == ReceiptStatus.SENT and atol.calls("sell_refund")[0][2]["receipt"]["total"] == D("650.00")
    assert len(atol.calls("sell_refund")) == 1 and len(atol.documents) == 2
    assert ledger.verify() == []
