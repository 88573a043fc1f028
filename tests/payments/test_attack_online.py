"""Adversarial tests of online payments (YooKassa), autopay and fiscal receipts (ATOL).

Every test here FAILS on the code as merged: each one names the invariant it breaks and why it matters. They are
findings for the owners to fix, not regressions of behaviour that works (what held is in the review report).
"""

import contextlib
import datetime as dt
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from abonent.billing import ledger
from abonent.billing import testing as billing_testing
from abonent.billing.actions import do_activate_subscription
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.payments import actions
from abonent.payments.actions.receipts import process_due_receipts
from abonent.payments.models import (
    AttemptStatus,
    AutopayAttempt,
    AutopayMode,
    FiscalReceipt,
    Payment,
    PaymentMethod,
    ReceiptStatus,
    RefundStatus,
)
from abonent.payments.testing import fake_gateway

from .test_autopay import at, cash, jan, link, live
from .test_yookassa import deliver, paid_checkout, start
from .yookassa_fake import fake_fixture, later, yookassa_fixture  # noqa: F401

D = Decimal
JAN_YEAR = 2027  # test_autopay's January


@pytest.fixture(name="fakepay")
def fakepay_fixture():
    with fake_gateway() as fake:
        yield fake


@pytest.fixture(name="plan650")
def plan650_fixture(make_plan):
    return make_plan("internet-100", "650.00", name="Интернет-100")


def autopay_customer(subscriber, plan, admin, *, debit_day):
    """Paid 650 on 31 December, on Интернет-100 from 1 January (balance 0), card saved, autopay on ``debit_day``."""
    with at(dt.date(jan(1).year - 1, 12, 31)):
        cash(subscriber, "650.00", "c-1")
    with at(jan(1), 9):
        do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        method = link(subscriber)
        actions.do_enable_autopay(subscriber, method=method, debit_day=debit_day, acting_user=admin)
    assert get_balance(subscriber).balance == D("0.00")
    return subscriber


@pytest.fixture(name="customer")
def customer_fixture(subscriber, plan650, admin, fakepay):
    return autopay_customer(subscriber, plan650, admin, debit_day=5)


@pytest.fixture
def month_end_customer(subscriber, plan650, admin, fakepay):
    """As ``customer``, but autopay on the 31st (the last day of every month)."""
    return autopay_customer(subscriber, plan650, admin, debit_day=31)


# --- YooKassa ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_payment_in_another_currency_is_not_credited_as_roubles(yookassa, subscriber, cashier):
    # BREAKS: "nothing is credited that the provider does not confirm". ``payment_of`` reads amount.value and
    # drops amount.currency; ``apply_gateway_payment`` credits that number in roubles. A payment YooKassa reports
    # as 500 USD (a shop with a multi-currency contract, a payment made in the cabinet with our mark copied, a
    # misconfigured ABONENT_CURRENCY) becomes 500 RUB on the balance: the provider confirmed 500 of something
    # else, never 500 roubles. It must be refused (kept for staff), not credited.
    checkout = start(subscriber, cashier)
    paid = yookassa.succeed(checkout.provider_payment_id)
    paid["amount"] = {"value": "500.00", "currency": "USD"}

    deliver(yookassa.notice("payment.succeeded", paid))
    with clock.travel_to(later(10)):
        actions.sync_pending_checkouts()

    assert get_balance(subscriber).balance == D("0.00"), "500 USD was credited as 500 RUB"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_gateway_refund_is_not_sent_again_after_youkassa_forgot_its_key(
    yookassa, settings, subscriber, cashier, admin, django_capture_on_commit_callbacks
):
    # BREAKS: "money taken by the gateway ... exactly once" for refunds. A refund whose POST /refunds timed out
    # after YooKassa made it stays pending with no external id, and ``push_pending_refunds`` repeats the POST with
    # ``refund:<id>`` for ever. YooKassa keeps an Idempotence-Key 24 hours: past that the same key is a NEW refund.
    # Checkouts (CREATE_RETRY_WINDOW) and autopay (ABONENT_AUTOPAY_KEY_HOURS) stop repeating and hand the case to
    # staff; refunds do not. After a day of YooKassa (or our worker) being unavailable the payer is refunded
    # twice while our ledger shows one refund.
    checkout = paid_checkout(yookassa, subscriber, cashier, amount="500.00")
    settings.ABONENT_YOOKASSA_READ_TIMEOUT = 0.3
    original = yookassa._create_refund

    def made_but_answered_late(body):
        answer = original(body)
        time.sleep(1.0)  # YooKassa made the refund; its answer comes after our deadline
        return answer

    yookassa._create_refund = made_but_answered_late
    with django_capture_on_commit_callbacks(execute=True):
        refund = actions.do_refund_payment(checkout.payment, amount="100.00", reason="x", acting_user=admin, key="r1")
    time.sleep(1.0)
    yookassa._create_refund = original
    refund.refresh_from_db()
    assert refund.status == RefundStatus.PENDING and refund.external_id == ""
    assert len(yookassa.refunds) == 1

    # A day passes with YooKassa unavailable (500s); then it has forgotten the key, as documented.
    yookassa.down = True
    with clock.travel_to(later(60)):
        actions.push_pending_refunds()
    yookassa.down = False
    yookassa.keys.clear()
    with clock.travel_to(clock.now() + dt.timedelta(hours=25)):
        actions.push_pending_refunds()

    assert len(yookassa.refunds) == 1, "the same refund was made twice at YooKassa"
    assert ledger.verify() == []


# --- autopay ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_autopay_does_not_charge_a_method_unlinked_after_an_unanswered_try(customer, fakepay):
    # BREAKS: "autopay never charges an unlinked method / without consent". A try that could not reach the
    # gateway (a connect timeout: YooKassa never saw it) stays ``processing``. The subscriber then unlinks the card
    # (revokes consent); ``stop_autopay`` cancels only *scheduled* tries, and ``do_sync_autopay`` -> ``_follow_up``
    # sends the processing try again without looking at the method, the plan or the consent: the card is charged
    # after its owner withdrew the permission.
    fakepay.unreachable = 1
    live(jan(5))
    (attempt,) = AutopayAttempt.objects.all()
    assert attempt.status == AttemptStatus.PROCESSING and fakepay.taken == 0

    with clock.travel_to(dt.datetime.combine(jan(5), dt.time(10, 30))):
        method = attempt.method
        actions.do_unlink_method_and_stop_autopay(method, acting_user=None, reason="I revoke autopay")
    with clock.travel_to(dt.datetime.combine(jan(5), dt.time(10, 45))):
        actions.do_sync_autopay()

    assert fakepay.taken == D("0.00"), "the unlinked card was charged"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_autopay_does_not_charge_a_subscriber_who_paid_after_an_unanswered_try(customer, fakepay):
    # BREAKS: "a subscriber who has paid enough meanwhile is not debited" (autopay_run's own promise). The
    # balance is read once, when the try is claimed; a try whose first call never reached the gateway is later
    # re-sent by the follow-up for the amount decided then. The subscriber who paid 650 at the office in
    # between is charged 650 more on the card.
    fakepay.unreachable = 1
    live(jan(5))
    with clock.travel_to(dt.datetime.combine(jan(5), dt.time(10, 30))):
        cash(customer, "650.00", "office-1")
    with clock.travel_to(dt.datetime.combine(jan(5), dt.time(10, 45))):
        actions.do_sync_autopay()

    assert fakepay.taken == D("0.00"), "charged although the month was paid"
    assert get_balance(customer).balance == D("650.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_autopay_turned_off_after_an_unanswered_try_charges_nothing(customer, fakepay, admin):
    # BREAKS: "autopay never charges ... the plan switched off during a run". Same root as the unlinked method:
    # ``do_disable_autopay`` cancels only *scheduled* tries ("one already sent is still followed to its outcome"),
    # but a try whose call never reached the gateway was not sent in any sense the provider knows of; the
    # follow-up sends it for the first time after the subscriber turned autopay off.
    fakepay.unreachable = 1
    live(jan(5))
    with clock.travel_to(dt.datetime.combine(jan(5), dt.time(10, 30))):
        actions.do_disable_autopay(customer, acting_user=admin, reason="asked by phone")
    with clock.travel_to(dt.datetime.combine(jan(5), dt.time(10, 45))):
        actions.do_sync_autopay()

    assert fakepay.taken == D("0.00"), "charged after autopay was turned off"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_an_autopay_debit_is_dated_when_the_money_was_taken_not_when_we_learnt_it(customer, fakepay):
    # BREAKS: "a receipt ... with the right VAT for the local date". ``_succeeded`` credits with no
    # ``received_at``, so a debit YooKassa captured at 23:55 is dated when the follow-up learns of it (00:05 the
    # next day). Checkouts use the provider's ``captured_at``; autopay ignores it. On 31 December 2025 that moves
    # the money into 2026: its receipt gets VAT 22/122 instead of 20/120 (``vat_code_for(localdate(received_at))``)
    # and it lands in the wrong day's and year's reports.
    fakepay.script.append("pending")
    billing_testing.run_on(jan(5))
    with clock.travel_to(dt.datetime.combine(jan(5), dt.time(23, 50))):
        actions.do_run_autopay()
    (attempt,) = AutopayAttempt.objects.all()
    assert attempt.status == AttemptStatus.PROCESSING and attempt.provider_payment_id
    # The bank captures at 23:55 Moscow time (20:55 UTC).
    fakepay.settle(attempt.provider_payment_id, captured_at="2027-01-05T20:55:00.000Z")

    with clock.travel_to(dt.datetime.combine(jan(6), dt.time(0, 5))):
        actions.do_sync_autopay()

    payment = Payment.objects.get(method=PaymentMethod.AUTOPAY)
    assert timezone.localdate(payment.received_at) == jan(5), f"dated {payment.received_at}"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_hard_decline_in_low_balance_mode_is_not_retried_every_week(subscriber, plan650, admin, fakepay):
    # BREAKS: "autopay stops on a hard decline" and the docs' promise for a hard decline whose code does not
    # unlink the method: "no retry ... next month is tried again". In low-balance mode the only brake after a
    # declined cycle is a cooldown of max(ABONENT_AUTOPAY_RETRY_DAYS) + 2 = 7 days, after which a NEW cycle is
    # started: a card the issuer declined as ``fraud_suspected`` is charged again on 31 Jan, 7, 14, 21, 28 Feb --
    # every week, exactly what the hard/soft split exists to prevent (the issuer may block the shop's MID).
    customer = autopay_customer(subscriber, plan650, admin, debit_day=5)
    with at(jan(1), 9):
        actions.do_enable_autopay(
            customer, method=customer.autopay.method, mode=AutopayMode.LOW_BALANCE, acting_user=admin
        )
    fakepay.script += [("declined", "fraud_suspected", False)] * 10
    day = jan(1)
    while day < dt.date(JAN_YEAR, 3, 1):
        live(day)
        day += dt.timedelta(days=1)

    tries = list(AutopayAttempt.objects.order_by("pk").values_list("scheduled_for", flat=True))
    assert tries[0] == jan(31)
    assert len(tries) <= 2, f"a hard-declined card was charged on {tries}"


@pytest.mark.django_db
def test_a_missed_month_end_debit_is_caught_up_like_any_other(month_end_customer, fakepay):
    # BREAKS: "a missed debit day is still debited ABONENT_AUTOPAY_CATCH_UP_DAYS (2) days late" (docs). For a
    # debit day at the month's end the next day is in the next month, and ``_day_of_month`` computes the cycle as
    # ``cycle_due_on(today, debit_day)`` -- *this* month's 31st/28th, in the future -- so 31 January missed (the
    # worker down for the night) is never debited: the February fee is charged on 1 February onto a zero balance
    # and the subscriber with autopay on goes into debt (or is blocked). A plan on the 5th is caught up on the 6th.
    for d in range(1, 31):
        live(jan(d))
    # 31 January: the worker is down.
    live(dt.date(2027, 2, 1))
    live(dt.date(2027, 2, 2))

    assert AutopayAttempt.objects.filter(due_on=jan(31)).exists(), "the 31 January debit was never made"
    assert fakepay.taken == D("650.00")


# --- fiscal receipts (ATOL) -------------------------------------------------------------------------------------

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=timezone.get_fixed_timezone(180))


@pytest.mark.django_db
def test_a_receipt_atol_holds_without_telling_its_uuid_is_returned_when_the_payment_is_cancelled(
    atol, subscriber, admin, django_capture_on_commit_callbacks
):
    # BREAKS: "no double fiscalization / never lost" in its mirror form: money fiscalized and never returned.
    # ATOL answers a repeated external_id with error 33 (the document EXISTS at ATOL, it was fiscalized or will
    # be); without the uuid the receipt is marked FAILED. ``do_handle_payment_cancelled`` reads FAILED as
    # "refused by the provider: nothing was fiscalized" and drops it (not required): the cancelled payment keeps
    # an income receipt at the tax service with no return-of-income receipt. Code 33 is not a refusal.
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        payment = actions.do_receive_payment(
            channel="cash", external_id="p1", amount="300.00", method=PaymentMethod.CASH, subscriber=subscriber
        ).payment
    atol.lose_next = 1
    atol.duplicate_uuid = False
    with clock.travel_to(T0):
        process_due_receipts()
    assert atol.answered_late.wait(5)
    with clock.travel_to(T0 + dt.timedelta(minutes=1)):
        process_due_receipts()
    origin = FiscalReceipt.objects.get(payment=payment, operation="sell")
    assert origin.status == ReceiptStatus.FAILED and "code 33" in origin.last_error
    assert len(atol.documents) == 1  # the income document is at ATOL

    with clock.travel_to(T0 + dt.timedelta(minutes=5)), django_capture_on_commit_callbacks(execute=True):
        actions.do_cancel_payment(payment, reason="wrong account", acting_user=admin)

    origin.refresh_from_db()
    returns = FiscalReceipt.objects.filter(payment=payment, operation="sell_refund")
    assert origin.status != ReceiptStatus.NOT_REQUIRED or returns.exists(), (
        "the income receipt ATOL holds was dropped as never fiscalized; no return receipt"
    )
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_receipt_is_not_lost_when_its_after_commit_handler_fails(
    atol, subscriber, monkeypatch, django_capture_on_commit_callbacks
):
    # BREAKS: "a receipt ... never lost". The income receipt row is created only by the after-commit handler of
    # ``payments.payment_received``; ``core.events._dispatch`` logs and swallows its exception, and nothing ever
    # looks for credited payments without a receipt (the worker only advances rows that exist). One database
    # blip (or the process restarted between the commit and the handler: a deploy) and the payment is never
    # fiscalized: a 54-FZ violation found only by the tax service.
    from django.db import OperationalError

    from abonent.payments.actions import receipts

    real = receipts.do_queue_payment_receipt

    def blip(payment_id):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(receipts, "do_queue_payment_receipt", blip)
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        payment = actions.do_receive_payment(
            channel="cash", external_id="p1", amount="300.00", method=PaymentMethod.CASH, subscriber=subscriber
        ).payment
    monkeypatch.setattr(receipts, "do_queue_payment_receipt", real)

    for minutes in range(0, 120, 10):  # two hours of the worker's minute job
        with clock.travel_to(T0 + dt.timedelta(minutes=minutes)):
            process_due_receipts()

    assert FiscalReceipt.objects.filter(payment=payment, operation="sell").exists(), "the payment has no receipt"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_full_gateway_refund_made_before_a_timeout_is_not_put_back_on_the_balance(
    yookassa, settings, subscriber, cashier, admin, django_capture_on_commit_callbacks
):
    # BREAKS: "a gateway refund that fails after the money left the balance" must only restore money that did NOT
    # go out. The full refund of 500 is made at YooKassa but its answer is lost; the worker repeats the POST past
    # the key's 24 hours, YooKassa (key forgotten) sees a refund of a payment with nothing left to refund and
    # answers 400; ``do_push_refund`` takes the 4xx as "refused" and ``do_finish_refund`` reverses the refund:
    # the payer has the 500 on the card AND on the balance (paid out twice; the clearing account no longer
    # matches the gateway's settlement).
    checkout = paid_checkout(yookassa, subscriber, cashier, amount="500.00")
    settings.ABONENT_YOOKASSA_READ_TIMEOUT = 0.3
    original = yookassa._create_refund

    def made_but_answered_late(body):
        answer = original(body)
        time.sleep(1.0)
        return answer

    yookassa._create_refund = made_but_answered_late
    with django_capture_on_commit_callbacks(execute=True):
        refund = actions.do_refund_payment(checkout.payment, amount="500.00", reason="x", acting_user=admin, key="r1")
    time.sleep(1.0)
    yookassa._create_refund = original
    assert len(yookassa.refunds) == 1 and get_balance(subscriber).balance == D("0.00")

    yookassa.down = True
    with clock.travel_to(later(60)):
        actions.push_pending_refunds()
    yookassa.down = False
    yookassa.payments[checkout.provider_payment_id]["status"] = "refunded_in_full"  # nothing left to refund
    yookassa.keys.clear()
    with clock.travel_to(clock.now() + dt.timedelta(hours=25)):
        actions.push_pending_refunds()

    refund.refresh_from_db()
    assert get_balance(subscriber).balance == D("0.00"), f"refund {refund.status}: the 500 is back on the balance"
    assert ledger.verify() == []


def dripping(seconds: float, chunks: int = 20):
    """A ``_json`` for the fakes that answers 200 at once and then sends its body a little at a time over
    ``seconds``: each chunk arrives well within any read timeout, the whole answer far past it."""
    import json as _json

    from werkzeug import Response

    def respond(status, body=None, *_args):
        if isinstance(status, dict):  # FakeAtol's _json(body, status=200)
            status, body = body or 200, status
        data = _json.dumps(body, ensure_ascii=False).encode()
        step = max(1, len(data) // chunks)

        def trickle():
            for offset in range(0, len(data), step):
                time.sleep(seconds / chunks)
                yield data[offset : offset + step]

        return Response(trickle(), status=status, content_type="application/json")

    return respond


@pytest.mark.django_db
def test_a_yookassa_call_has_a_deadline_not_only_a_read_timeout(yookassa, settings, subscriber, cashier):
    # BREAKS: "every call to the outside has a deadline". ``httpx.Timeout(read, connect=...)`` bounds each read
    # (the gap between two packets), not the call: an answer that trickles in (a slow or hostile middlebox, a
    # provider in trouble) holds the caller as long as it keeps sending. The notice handler calls get_payment in
    # the web request (one worker per slow answer), autopay and checkouts in the worker. With 0.5 s timeouts a
    # 4-second trickle is read to the end.
    from abonent.payments import gateways

    checkout = start(subscriber, cashier)
    settings.ABONENT_YOOKASSA_CONNECT_TIMEOUT = 0.5
    settings.ABONENT_YOOKASSA_READ_TIMEOUT = 0.5
    yookassa._json = dripping(4.0)

    started = time.monotonic()
    with contextlib.suppress(gateways.GatewayError):
        gateways.get("yookassa").get_payment(checkout.provider_payment_id)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0, f"a call with 0.5 s timeouts took {elapsed:.1f} s"


@pytest.mark.django_db
def test_an_atol_call_has_a_deadline_not_only_a_read_timeout(atol, subscriber, django_capture_on_commit_callbacks):
    # BREAKS: "every call to the outside has a deadline", for ATOL: ``httpx.Timeout(ABONENT_ATOL_TIMEOUT)`` is per
    # read, so a report that trickles in takes as long as ATOL keeps sending; ``process_due_receipts`` checks its
    # 50-second budget only between receipts, so one such answer overruns the minute job (runs pile up) and the
    # callback view (``do_receipt_callback`` fetches the report in the web request) hangs with it.
    from abonent.payments import fiscal

    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        payment = actions.do_receive_payment(
            channel="cash", external_id="p1", amount="300.00", method=PaymentMethod.CASH, subscriber=subscriber
        ).payment
    with clock.travel_to(T0):
        process_due_receipts()
    receipt = FiscalReceipt.objects.get(payment=payment)
    assert receipt.status == ReceiptStatus.SENT
    atol._json = dripping(4.0)  # the ATOL timeout is 0.3 s in the tests

    started = time.monotonic()
    with contextlib.suppress(fiscal.FiscalError):
        fiscal.get("atol").get_report(receipt.uuid)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0, f"a call with a 0.3 s timeout took {elapsed:.1f} s"


@pytest.mark.django_db
def test_a_refund_made_in_the_yookassa_cabinet_does_not_leave_the_money_on_the_balance(yookassa, subscriber, cashier):
    # BREAKS: "money taken by the gateway is credited exactly once" read backwards: money the gateway GAVE BACK.
    # A manager refunds an online payment in YooKassa's cabinet (the usual way for a shop's staff); YooKassa
    # confirms it with ``refund.succeeded``, re-read from the API, for a payment that IS ours. ``_handle`` finds no
    # Refund row with that id and files the notice as "ignored": the 500 is back on the payer's card and still on
    # the balance to be spent on service. It must be recorded (a refund, or at least a conflict for staff).
    checkout = paid_checkout(yookassa, subscriber, cashier, amount="500.00")
    _status, refund = yookassa._create_refund(
        {"payment_id": checkout.provider_payment_id, "amount": {"value": "500.00", "currency": "RUB"}}
    )

    response = deliver(yookassa.notice("refund.succeeded", refund))

    assert response.status_code == 200
    from abonent.payments.models import EventOutcome, ProviderEvent

    event = ProviderEvent.objects.get(object_id=refund["id"])
    assert get_balance(subscriber).balance == D("0.00") or event.outcome != EventOutcome.IGNORED, (
        "a refund of our payment at YooKassa was ignored; the money stays on the balance"
    )
    assert ledger.verify() == []


@pytest.mark.django_db
def test_forged_notices_from_anywhere_do_not_grow_the_database(yookassa):
    # BREAKS: "a notice from outside YooKassa's networks ... changes nothing". Every refused notice is INSERTed
    # as a ProviderEvent with up to 2000 characters of its body (``_store_rejected``), before and without any
    # limit: anyone on the internet can write rows into the billing database as fast as they can POST, and bury
    # the real notices on the Gateways page. Refusals should be counted/logged, not stored one row each.
    from abonent.payments.models import ProviderEvent

    from .yookassa_fake import FOREIGN_ADDR

    body = b'{"type": "notification", "event": "payment.succeeded", "object": {"id": "' + b"x" * 90 + b'"}}'
    for _ in range(200):
        assert deliver(body + b" " * 1500, addr=FOREIGN_ADDR).status_code == 403

    assert ProviderEvent.objects.count() < 10, f"{ProviderEvent.objects.count()} rows written by a stranger"


@pytest.mark.django_db
def test_changing_the_debit_day_in_the_console_keeps_the_least_amount_set_through_the_api(
    subscriber, fakepay, admin, operator_client
):
    # BREAKS: "a plan changed mid-run" -- the plan an operator edits is not the plan they see. The console's
    # AutopayForm has no ``min_amount`` and the view calls ``do_enable_autopay`` without it, which writes the
    # default (ABONENT_AUTOPAY_MIN_AMOUNT) over the plan's own: moving the debit day from the 5th to the 10th by
    # phone silently changes the subscriber's "at least 1000 per debit" (set in the portal/API) to 100.
    from django.urls import reverse

    from abonent.payments.models import AutopayPlan

    with at(jan(1), 9):
        method = link(subscriber)
        actions.do_enable_autopay(subscriber, method=method, debit_day=5, min_amount="1000.00", acting_user=admin)
        response = operator_client.post(
            reverse("payments:autopay", args=[subscriber.pk]),
            {"method": method.pk, "mode": "day", "debit_day": "10", "amount_mode": "cover"},
            headers={"HX-Request": "true"},
        )
    assert response.status_code == 200
    plan = AutopayPlan.objects.get()
    assert plan.debit_day == 10
    assert plan.min_amount == D("1000.00"), f"the least amount became {plan.min_amount}"


@pytest.mark.django_db
def test_a_report_with_a_nan_is_not_a_500_on_the_callback(atol, subscriber, django_capture_on_commit_callbacks):
    # BREAKS: "bad input is a 4xx/validation error, never a 500" and "a receipt ... never lost". ATOL's answer is
    # parsed with Python's json, which accepts the non-JSON literal NaN; ``parse_report`` copies the whole answer
    # into ``receipt.report`` (a JSONField) and PostgreSQL's jsonb refuses NaN: the save raises DataError. The
    # public callback answers 500 and the worker's poll fails the same way every time, so the receipt stays "sent"
    # for ever though ATOL says done. One odd field from the provider (a garbage 200) must not wedge a receipt.
    from django.db import connection
    from django.test import Client

    if connection.vendor != "postgresql":
        pytest.skip("SQLite stores JSON as text and takes NaN")
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        payment = actions.do_receive_payment(
            channel="cash", external_id="p1", amount="300.00", method=PaymentMethod.CASH, subscriber=subscriber
        ).payment
    with clock.travel_to(T0):
        process_due_receipts()
    receipt = FiscalReceipt.objects.get(payment=payment)
    atol.finish(receipt.uuid)
    atol.by_uuid[receipt.uuid]["payload"]["ofd_inn"] = float("nan")  # a field we do not even read

    body = f'{{"uuid": "{receipt.uuid}"}}'
    response = Client(raise_request_exception=False).post(
        "/pay/atol/callback", data=body, content_type="application/json"
    )

    assert response.status_code < 500, response.status_code
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.DONE


@pytest.mark.django_db
def test_a_document_of_another_amount_under_our_id_does_not_mark_the_receipt_done(
    atol, subscriber, django_capture_on_commit_callbacks
):
    # BREAKS: "a receipt is sent once per payment ... never lost" and "a callback for another receipt does
    # nothing". Our external_id is ``<prefix>pay-<payment id>``; another installation on the same ATOL group with
    # the same default prefix (staging, a restored backup whose ids run again) already holds that id. ATOL answers
    # 33 with ITS document's uuid, we adopt it, and ``do_apply_report`` marks our receipt DONE with that
    # document's fiscal attributes although its total (100.00) is not our payment's (300.00): it only logs a
    # warning. Our 300 is never fiscalized and the console shows it as done with someone else's receipt.
    from abonent.payments.actions.receipts import external_id_for

    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        payment = actions.do_receive_payment(
            channel="cash", external_id="p1", amount="300.00", method=PaymentMethod.CASH, subscriber=subscriber
        ).payment
    receipt = FiscalReceipt.objects.get(payment=payment)
    foreign = {"uuid": "f0000000-0000-4000-8000-000000000001", "operation": "sell", "status": "wait"}
    foreign["body"] = {"external_id": external_id_for(receipt), "receipt": {"total": D("100.00")}}
    atol.documents[external_id_for(receipt)] = foreign
    atol.by_uuid[foreign["uuid"]] = foreign
    atol.finish(foreign["uuid"])

    for minutes in (0, 1, 2, 3):
        with clock.travel_to(T0 + dt.timedelta(minutes=minutes)):
            process_due_receipts()

    receipt.refresh_from_db()
    assert not (receipt.status == ReceiptStatus.DONE and receipt.fiscal_total != receipt.amount), (
        f"done with a document of {receipt.fiscal_total} for a payment of {receipt.amount}"
    )


@pytest.mark.django_db
def test_a_payment_of_another_installation_is_not_credited_by_its_metadata_mark(yookassa, subscriber, cashier):
    # BREAKS: "a payment of another shop/subscriber (metadata tampering)" and "nothing is credited that the
    # provider does not confirm" for THIS checkout. The mark that ties a YooKassa payment to a checkout is the bare
    # ``checkout:<id>`` (no installation prefix, no secret; ATOL ids have ABONENT_FISCAL_ID_PREFIX for exactly
    # this, YooKassa has nothing), and ``apply_gateway_payment`` never compares the amount with the checkout's.
    # A checkout whose create did not get through waits with no provider id; any payment in the shop carrying
    # ``{"abonent": "checkout:<id>"}`` -- made by a second installation on the same shop (its own checkout 1),
    # or by anyone with access to the shop's API -- is adopted: 7000 credited for a checkout of 500.
    yookassa.fail_next(500)  # our create never reached YooKassa
    checkout = start(subscriber, cashier, amount="500.00")
    assert checkout.provider_payment_id == ""
    other = yookassa.add_foreign_payment(value="7000.00")
    other["metadata"] = {"abonent": f"checkout:{checkout.pk}", "account": "900000001"}

    deliver(yookassa.notice("payment.succeeded", other))

    assert get_balance(subscriber).balance == D("0.00"), "another installation's 7000 was credited here"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_retried_receipt_that_may_be_at_atol_is_not_dropped_when_the_payment_is_cancelled(
    atol, settings, subscriber, admin, django_capture_on_commit_callbacks
):
    # BREAKS: the same promise as the code-33 case, by another road. Attempt 1 times out after ATOL registered the
    # document; attempt 2 is refused for our settings (the group code mistyped during the night) and FAILS the
    # receipt; staff fix the setting and press "send again": ``do_retry_receipt`` resets ``attempts`` to 0 and
    # keeps the external_id (no uuid was learnt). A cancellation now reads "queued, never attempted" and drops the
    # receipt as never sent -- but the first attempt's income document is at ATOL, and no return follows.
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        payment = actions.do_receive_payment(
            channel="cash", external_id="p1", amount="300.00", method=PaymentMethod.CASH, subscriber=subscriber
        ).payment
    atol.lose_next = 1
    with clock.travel_to(T0):
        process_due_receipts()  # ATOL took it; the answer came too late
    assert atol.answered_late.wait(5)
    good_group = settings.ABONENT_ATOL_GROUP_CODE
    settings.ABONENT_ATOL_GROUP_CODE = "typo"
    with clock.travel_to(T0 + dt.timedelta(minutes=1)):
        process_due_receipts()
    receipt = FiscalReceipt.objects.get(payment=payment)
    assert receipt.status == ReceiptStatus.FAILED and len(atol.documents) == 1
    settings.ABONENT_ATOL_GROUP_CODE = good_group
    with clock.travel_to(T0 + dt.timedelta(minutes=5)):
        actions.do_retry_receipt(receipt, acting_user=admin)
        with django_capture_on_commit_callbacks(execute=True):
            actions.do_cancel_payment(payment, reason="wrong account", acting_user=admin)

    receipt.refresh_from_db()
    returns = FiscalReceipt.objects.filter(payment=payment, operation="sell_refund")
    assert receipt.status != ReceiptStatus.NOT_REQUIRED or returns.exists(), (
        "the income document at ATOL was dropped as never sent; no return receipt"
    )
