"""The app's Pay: the suggested amount, online payments at the gateway, autopay and saved cards, receipts, the
statement of account. Only the token's subscriber's rows; another subscriber's ids answer 404.

``POST /payments`` requires ``Idempotency-Key`` but is not wrapped in ``api.idempotency.idempotent``: that holds a
transaction around the handler, and a call to the gateway never runs inside one (payments/api/gateway.py). The
checkout's own unique key ``portal:<subscriber>:<sha256 of the Idempotency-Key>`` makes a retry return the first
checkout; the same key with another amount or method is a 409.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.http import Http404
from ninja import Field, Query, Schema, Status

from abonent.api.errors import ErrorOut
from abonent.api.idempotency import MAX_KEY_LENGTH, key_reused, request_key
from abonent.billing.selectors import get_balance
from abonent.catalog.api import Money
from abonent.payments.actions import do_disable_autopay, do_sync_checkout, do_unlink_method_and_stop_autopay
from abonent.payments.gateways import GatewayError
from abonent.payments.models import Checkout, CheckoutStatus, SavedMethod
from abonent.payments.selectors.autopay import attempts_of, autopay_of, methods_of

from .. import pay_data
from ..access import own
from ..pay_actions import do_enable_autopay_with_consent, start_payment
from . import router

logger = logging.getLogger(__name__)
MONEY_IN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
ERRORS = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}


# --- Online payments ---------------------------------------------------------------------------------------------


class SuggestedOut(Schema):
    amount: Money = Field(description="What to pay so the balance covers the coming month, whole roubles; 0: covered")
    fees: Money = Field(description="The charges due from today until `until` (exclusive)")
    balance: Money
    promised: Money = Field(description="An open promised payment (in the balance; the next payment repays it)")
    until: dt.date
    next_charge_on: dt.date | None
    max_amount: Money = Field(description="The largest online payment")
    online_payments_available: bool = Field(description="False: no gateway is configured, POST /payments is a 422")
    save_consent_text: str = Field(
        description="Show this when offering to save the card; send it back verbatim as consent_text"
    )


class PaymentIn(Schema):
    amount: str = Field(..., pattern=MONEY_IN, description='Roubles, e.g. "650" or "650.50"', examples=["650.00"])
    method_type: Literal["bank_card", "sbp"] = Field("bank_card", description="bank_card, or sbp for a QR code")
    save_method: bool = Field(False, description="Save the card for autopay (bank_card only; needs consent_text)")
    consent_text: str = Field("", max_length=5000, description="The consent the subscriber was shown, verbatim")
    return_url: str = Field(
        "", max_length=2000, description="Where the gateway's page returns the payer; empty: the portal's page of it"
    )


class PaymentOut(Schema):
    id: int
    amount: Money
    status: str = Field(description="pending, succeeded or failed")
    method_type: str | None
    confirmation_url: str | None = Field(description="bank_card: the gateway's page to open")
    qr_payload: str | None = Field(description="sbp: the QR code's content, also a link that opens a bank's app")
    save_method: bool
    payment_id: int | None = Field(description="The payment credited (see /receipts) once the money came")
    failure_code: str | None = Field(description="Why it was not paid (the gateway's reason code)")
    failure_reason: str | None = Field(description="The same in words, for the subscriber")
    balance: Money | None = Field(description="The balance now, once paid")
    created_at: dt.datetime
    finished_at: dt.datetime | None


def _payment_out(request, checkout: Checkout) -> dict:
    failed = checkout.status == CheckoutStatus.FAILED
    return {
        "id": checkout.pk,
        "amount": checkout.amount,
        "status": checkout.status,
        "method_type": checkout.method_type or None,
        "confirmation_url": pay_data.safe_link(checkout.confirmation_url) or None,
        "qr_payload": checkout.qr_payload or None,
        "save_method": checkout.save_method,
        "payment_id": checkout.payment_id,
        "failure_code": checkout.failure_code or None if failed else None,
        "failure_reason": pay_data.failure_reason(checkout) if failed else None,
        "balance": get_balance(request.subscriber).balance if checkout.status == CheckoutStatus.SUCCEEDED else None,
        "created_at": checkout.created_at,
        "finished_at": checkout.finished_at,
    }


_KEY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": True,
    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
    "description": "Required. A retry with the same key returns the first payment; the same key with a different "
    "amount or method is a 409.",
}


@router.get("/payments/suggested", response={200: SuggestedOut, **ERRORS}, summary="The amount to suggest")
def suggested(request):
    subscriber = request.subscriber
    suggestion = pay_data.suggested_amount(subscriber)
    return {
        "amount": suggestion.amount,
        "fees": suggestion.fees,
        "balance": suggestion.balance,
        "promised": suggestion.promised,
        "until": suggestion.until,
        "next_charge_on": suggestion.next_charge_on,
        "max_amount": pay_data.online_payment_max(),
        "online_payments_available": pay_data.online_payments_available(),
        "save_consent_text": pay_data.save_consent_text(subscriber),
    }


@router.post(
    "/payments",
    response={201: PaymentOut, 400: ErrorOut, 409: ErrorOut, **ERRORS},
    summary="Pay online: open confirmation_url (card) or show qr_payload (SBP), then follow GET /payments/{id}",
    openapi_extra={"parameters": [_KEY_HEADER]},
)
def start(request, payload: PaymentIn):
    key = request_key(request, required=True)
    if payload.save_method and payload.method_type != "bank_card":
        raise ValidationError(
            {"save_method": ValidationError("Only a bank card can be saved for autopay.", code="save_card_only")}
        )
    try:
        checkout = start_payment(
            request,
            amount=payload.amount,
            method_type=payload.method_type,
            save_method=payload.save_method,
            consent_text=payload.consent_text,
            one_time_key=key,
            consent_source="app",
            return_url=payload.return_url,
        )
    except ValidationError as exc:
        if getattr(exc, "code", None) == "idempotency_key_reused":
            raise key_reused() from None
        raise
    return Status(201, _payment_out(request, checkout))


@router.get(
    "/payments/{checkout_id}",
    response={200: PaymentOut, **ERRORS},
    summary="An online payment; while pending the gateway is asked (at most every few seconds)",
)
def get_payment(request, checkout_id: int):
    checkout = own(Checkout.objects, request, pk=checkout_id)
    if pay_data.needs_sync(checkout):
        try:
            checkout = do_sync_checkout(checkout)
        except (GatewayError, DatabaseError, ValidationError) as exc:
            logger.warning("portal api: checkout %s not synced: %s", checkout.pk, exc)
            checkout.refresh_from_db()
    return _payment_out(request, checkout)


# --- Autopay and saved cards -------------------------------------------------------------------------------------


class MethodOut(Schema):
    id: int
    type: str = Field(alias="method_type", description="bank_card, sbp, …")
    title: str = Field(description='As the gateway names it, masked: "Bank card *4444"')
    active: bool
    consent_text: str
    consented_at: dt.datetime
    unlinked_at: dt.datetime | None


class AutopayOut(Schema):
    enabled: bool
    method_id: int
    mode: str = Field(description="day: on debit_day of each month; low_balance: when the balance runs short")
    debit_day: int
    amount_mode: str = Field(description="cover: what covers the fees until the next debit; fixed: fixed_amount")
    fixed_amount: Money | None
    max_amount: Money | None = Field(description="The most debited at once; null: the system's limit")
    enabled_at: dt.datetime
    disabled_at: dt.datetime | None
    stop_reason: str


class AttemptOut(Schema):
    id: int
    date: dt.date = Field(description="When it was debited (or is to be)")
    amount: Money | None
    status: str = Field(description="scheduled, processing, succeeded, declined, failed, skipped, cancelled")
    status_label: str
    decline_code: str


class AutopayStateOut(Schema):
    autopay: AutopayOut | None
    methods: list[MethodOut] = Field(description="The saved cards that can be used (unlinked ones are not listed)")
    attempts: list[AttemptOut] = Field(description="The newest debits first")
    consent_text: str = Field(description="Show this before turning autopay on; send it back verbatim in PUT")


class AutopayIn(Schema):
    method_id: int
    mode: Literal["day", "low_balance"] = "day"
    debit_day: int | None = Field(None, description="1–31, needed for mode=day; past a month's end: its last day")
    amount_mode: Literal["cover", "fixed"] = "cover"
    fixed_amount: str | None = Field(None, pattern=MONEY_IN, examples=["650.00"])
    max_amount: str | None = Field(None, pattern=MONEY_IN)
    consent_text: str = Field(..., max_length=5000, description="The consent shown (GET /autopay's), verbatim")


def _attempt_out(attempt) -> dict:
    return {
        "id": attempt.pk,
        "date": attempt.finished_at.date() if attempt.finished_at else attempt.scheduled_for,
        "amount": attempt.amount,
        "status": attempt.status,
        "status_label": attempt.get_status_display(),
        "decline_code": attempt.decline_code,
    }


@router.get("/autopay", response={200: AutopayStateOut, **ERRORS}, summary="Autopay, saved cards and debits")
def get_autopay(request):
    subscriber = request.subscriber
    return {
        "autopay": autopay_of(subscriber),
        "methods": list(methods_of(subscriber, active_only=True)),
        "attempts": [_attempt_out(a) for a in attempts_of(subscriber)],
        "consent_text": pay_data.autopay_consent_text(subscriber),
    }


@router.put(
    "/autopay",
    response={200: AutopayOut, **ERRORS},
    summary="Turn autopay on or change it (the whole settings each time, with the consent shown)",
)
def put_autopay(request, payload: AutopayIn):
    try:
        return do_enable_autopay_with_consent(
            request.subscriber,
            consent_text=payload.consent_text,
            consent_source="app",
            method=payload.method_id,
            mode=payload.mode,
            debit_day=payload.debit_day,
            amount_mode=payload.amount_mode,
            fixed_amount=payload.fixed_amount,
            max_amount=payload.max_amount,
        )
    except ValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise
        names = {"method": "method_id", "consent": "consent_text"}
        raise ValidationError({names.get(f, f): errors for f, errors in exc.error_dict.items()}) from None


@router.delete("/autopay", response={200: AutopayOut, **ERRORS}, summary="Turn autopay off")
def delete_autopay(request):
    plan = do_disable_autopay(request.subscriber, acting_user=None, reason="turned off by the subscriber")
    if plan is None:
        raise Http404
    return plan


@router.get("/methods", response={200: list[MethodOut], **ERRORS}, summary="Saved cards that can be used")
def list_methods(request):
    return list(methods_of(request.subscriber, active_only=True))


@router.delete(
    "/methods/{method_id}",
    response={200: MethodOut, **ERRORS},
    summary="Unlink a saved card (autopay with it turns off)",
)
def unlink_method(request, method_id: int):
    method = own(SavedMethod.objects, request, pk=method_id)
    return do_unlink_method_and_stop_autopay(method, acting_user=None, reason="unlinked by the subscriber")


# --- Receipts and the statement ----------------------------------------------------------------------------------


class ReceiptOut(Schema):
    id: int
    operation: str = Field(description="sell (income) or sell_refund (return of income)")
    state: str = Field(description="registered, pending or not_required")
    amount: Money
    receipt_datetime: dt.datetime | None = Field(description="Tag 1012")
    fiscal_total: Money | None = Field(description="Tag 1020")
    fiscal_receipt_number: int | None = Field(description="The receipt's number in the shift (tag 1042)")
    shift_number: int | None = Field(description="Tag 1038")
    fn_number: str = Field(description="The fiscal drive (FN, tag 1041)")
    fiscal_document_number: int | None = Field(description="FD, tag 1040")
    fiscal_document_attribute: int | None = Field(description="FP, tag 1077")
    ecr_registration_number: str = Field(description="The cash register's registration number (tag 1037)")
    fns_site: str = Field(description="Tag 1060")
    qr_text: str = Field(description="The FNS check QR code's text, once registered")
    check_url: str = Field(description="The receipt at the OFD's check page, where configured")


class PaymentReceiptsOut(Schema):
    payment_id: int
    amount: Money
    received_at: dt.datetime
    method: str
    method_label: str
    status: str = Field(description="credited, cancelled, returned")
    receipt_state: str = Field(description="registered, pending, not_required or none")
    receipts: list[ReceiptOut]


class ReceiptsOut(Schema):
    items: list[PaymentReceiptsOut]
    next_cursor: str | None = Field(description="Pass as cursor for the earlier payments")


class ReceiptParams(Schema):
    cursor: str = Field("", max_length=200)
    limit: int = Field(pay_data.RECEIPTS_PAGE, ge=1, le=100)


def _receipt_out(receipt) -> dict:
    return {
        "id": receipt.pk,
        "operation": receipt.operation,
        "state": pay_data.receipt_state([receipt]) if receipt.operation == "sell" else _return_state(receipt),
        "amount": receipt.amount,
        "receipt_datetime": receipt.receipt_datetime,
        "fiscal_total": receipt.fiscal_total,
        "fiscal_receipt_number": receipt.fiscal_receipt_number,
        "shift_number": receipt.shift_number,
        "fn_number": receipt.fn_number,
        "fiscal_document_number": receipt.fiscal_document_number,
        "fiscal_document_attribute": receipt.fiscal_document_attribute,
        "ecr_registration_number": receipt.ecr_registration_number,
        "fns_site": receipt.ofd_url,
        "qr_text": receipt.qr_text,
        "check_url": pay_data.safe_link(receipt.check_url),
    }


def _return_state(receipt) -> str:
    return {"done": "registered", "not_required": "not_required"}.get(receipt.status, "pending")


@router.get("/receipts", response={200: ReceiptsOut, **ERRORS}, summary="Payments with their fiscal receipts")
def list_receipts(request, params: Query[ReceiptParams]):
    page = pay_data.payments_with_receipts(request.subscriber, cursor=params.cursor, limit=params.limit)
    items = []
    for payment in page.payments:
        receipts = list(payment.receipts.all())
        items.append(
            {
                "payment_id": payment.pk,
                "amount": payment.amount,
                "received_at": payment.received_at,
                "method": payment.method,
                "method_label": payment.get_method_display(),
                "status": payment.status,
                "receipt_state": pay_data.receipt_state(receipts),
                "receipts": [_receipt_out(r) for r in receipts],
            }
        )
    return {"items": items, "next_cursor": page.next_cursor}


class StatementParams(Schema):
    date_from: dt.date = Field(..., alias="from", description="The first day, YYYY-MM-DD")
    date_to: dt.date = Field(..., alias="to", description="The last day (included); at most three years later")


class StatementLineOut(Schema):
    date: dt.date
    kind: str = Field(description="payment, fee, plan_change, freeze, refund, promised_take, reversal, …")
    kind_label: str
    description: str
    amount: Money = Field(description="Positive: to the account; negative: off it")
    balance_after: Money
    reversed: bool = Field(description="A later line reverses this one")


class StatementOut(Schema):
    date_from: dt.date
    date_to: dt.date
    opening_balance: Money
    credits: Money
    debits: Money = Field(description="Negative")
    closing_balance: Money = Field(description="opening_balance + credits + debits")
    lines: list[StatementLineOut]


@router.get("/statement", response={200: StatementOut, **ERRORS}, summary="The statement of account for any dates")
def get_statement(request, params: Query[StatementParams]):
    pay_data.check_period(params.date_from, params.date_to)
    account = pay_data.statement(request.subscriber, params.date_from, params.date_to)
    return {
        "date_from": account.start,
        "date_to": account.end,
        "opening_balance": account.opening,
        "credits": account.credits,
        "debits": account.debits,
        "closing_balance": account.closing,
        "lines": [
            {
                "date": line.date,
                "kind": line.kind,
                "kind_label": line.kind_label,
                "description": line.description,
                "amount": line.amount,
                "balance_after": line.balance_after,
                "reversed": line.reversed,
            }
            for line in account.lines
        ],
    }
