"""The app's Pay: the suggested amount, online payments at the gateway, autopay and saved cards, receipts, the
statement of account. Only the token's subscriber's rows; another subscriber's ids answer 404.

``POST /payments`` requires ``Idempotency-Key`` but is not wrapped in ``api.idempotency.idempotent``: that holds a
transaction around the handler, and a call to the gateway never runs inside one (payments/api/gateway.py). The
checkout's own unique key ``portal:<subscriber>:<sha256 of the Idempotency-Key>`` makes a retry return the first
checkout; the same key with another amount or method is a 409.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.http import Http404
from django.utils.translation import gettext as _
from ninja import Query, Status

from abonent.api.errors import ApiError, ErrorOut
from abonent.api.idempotency import MAX_KEY_LENGTH, key_reused, request_key
from abonent.billing.selectors import get_balance
from abonent.payments.actions import do_disable_autopay, do_sync_checkout, do_unlink_method_and_stop_autopay
from abonent.payments.gateways import GatewayError
from abonent.payments.models import Checkout, CheckoutStatus, SavedMethod
from abonent.payments.selectors.autopay import attempts_of, autopay_of, methods_of

from .. import pay_data
from ..access import own
from ..pay_actions import (
    TooManyCheckouts,
    consent_mismatch,
    do_enable_autopay_with_consent,
    same_wording,
    start_payment,
)
from . import router
from .pay_schemas import (
    MyAutopayIn,
    MyAutopayOut,
    MyAutopayStateOut,
    MyPaymentIn,
    MyPaymentOut,
    MyReceiptParams,
    MyReceiptsOut,
    MySavedMethodOut,
    MyStatementOut,
    MyStatementParams,
    MySuggestedOut,
)

logger = logging.getLogger(__name__)
ERRORS = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}


# --- Online payments ---------------------------------------------------------------------------------------------


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
        "failure_code": (checkout.failure_code or None) if failed else None,
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


@router.get("/payments/suggested", response={200: MySuggestedOut, **ERRORS}, summary="The amount to suggest")
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
    response={201: MyPaymentOut, 400: ErrorOut, 409: ErrorOut, 429: ErrorOut, **ERRORS},
    summary="Pay online: open confirmation_url (card) or show qr_payload (SBP), then follow GET /payments/{id}",
    openapi_extra={"parameters": [_KEY_HEADER]},
)
def start(request, payload: MyPaymentIn):
    key = request_key(request, required=True)
    if payload.save_method and payload.method_type != "bank_card":
        raise ValidationError(
            {
                "save_method": ValidationError(
                    _("Only a bank card can be saved for autopay here."), code="save_card_only"
                )
            }
        )
    consent_text = payload.consent_text
    if payload.save_method and consent_text.strip():
        # The consent stored with the card is the wording the server shows (``save_consent_text``), never text an
        # app made up; a blank one is the payments app's own refusal (consent_required).
        shown = pay_data.save_consent_text(request.subscriber)
        if not same_wording(consent_text, shown):
            raise consent_mismatch("consent_text")
        consent_text = shown
    try:
        checkout = start_payment(
            request,
            amount=payload.amount,
            method_type=payload.method_type,
            save_method=payload.save_method,
            consent_text=consent_text,
            one_time_key=key,
            consent_source="app",
            return_url=payload.return_url,
        )
    except TooManyCheckouts as exc:
        raise ApiError(429, exc.code, exc.message) from None
    except ValidationError as exc:
        if getattr(exc, "code", None) == "idempotency_key_reused":
            raise key_reused() from None
        raise
    return Status(201, _payment_out(request, checkout))


@router.get(
    "/payments/{checkout_id}",
    response={200: MyPaymentOut, **ERRORS},
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


def _attempt_out(attempt) -> dict:
    return {
        "id": attempt.pk,
        "date": attempt.finished_at.date() if attempt.finished_at else attempt.scheduled_for,
        "amount": attempt.amount,
        "status": attempt.status,
        "status_label": attempt.get_status_display(),
        "decline_code": attempt.decline_code,
    }


@router.get("/autopay", response={200: MyAutopayStateOut, **ERRORS}, summary="Autopay, saved cards and debits")
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
    response={200: MyAutopayOut, **ERRORS},
    summary="Turn autopay on or change it (the whole settings each time, with the consent shown)",
)
def put_autopay(request, payload: MyAutopayIn):
    try:
        return do_enable_autopay_with_consent(
            request.subscriber,
            consent_text=payload.consent_text,
            consent_source="app",
            shown_text=pay_data.autopay_consent_text(request.subscriber),
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


@router.delete("/autopay", response={200: MyAutopayOut, **ERRORS}, summary="Turn autopay off")
def delete_autopay(request):
    plan = do_disable_autopay(request.subscriber, acting_user=None, reason=_("turned off by the subscriber"))
    if plan is None:
        raise Http404
    return plan


@router.get("/methods", response={200: list[MySavedMethodOut], **ERRORS}, summary="Saved cards that can be used")
def list_methods(request):
    return list(methods_of(request.subscriber, active_only=True))


@router.delete(
    "/methods/{method_id}",
    response={200: MySavedMethodOut, **ERRORS},
    summary="Unlink a saved card (autopay with it turns off)",
)
def unlink_method(request, method_id: int):
    method = own(SavedMethod.objects, request, pk=method_id)
    return do_unlink_method_and_stop_autopay(method, acting_user=None, reason=_("unlinked by the subscriber"))


# --- Receipts and the statement ----------------------------------------------------------------------------------


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


@router.get("/receipts", response={200: MyReceiptsOut, **ERRORS}, summary="Payments with their fiscal receipts")
def list_receipts(request, params: Query[MyReceiptParams]):
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


@router.get("/statement", response={200: MyStatementOut, **ERRORS}, summary="The statement of account for any dates")
def get_statement(request, params: Query[MyStatementParams]):
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
