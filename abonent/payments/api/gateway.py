"""Online payments through a gateway, for the portal (staff tokens with PAYMENT_TAKE until the portal issue adds
subscriber tokens): start one, then follow it.

Not wrapped in ``api.idempotency.idempotent``: that decorator holds one transaction around the handler, and a
call to the gateway must never run inside one. The checkout's own unique key (the user's Idempotency-Key) makes a
retry return the first checkout instead, and the same key with another request is a 409.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Literal

from django.core.exceptions import ValidationError
from ninja import Field, Schema, Status

from abonent.api.errors import ErrorOut
from abonent.api.idempotency import MAX_KEY_LENGTH, key_reused, request_key
from abonent.catalog.api import Money
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.selectors import get_subscriber

from ..actions import do_start_checkout
from ..models import Checkout
from ..selectors.gateway import get_checkout
from . import router

MONEY_IN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"
ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}


class OnlinePaymentIn(Schema):
    amount: str = Field(..., pattern=MONEY_IN, description='What the subscriber pays, e.g. "500.00"')
    method_type: Literal["bank_card", "sbp"] | None = Field(
        None, description="bank_card, sbp (a QR code), or null: the gateway's page offers every method"
    )
    save_method: bool = Field(False, description="Save the method for autopay (needs consent_text)")
    consent_text: str = Field(
        "", max_length=5000, description="The consent to autopay the subscriber was shown and accepted, verbatim"
    )
    return_url: str = Field(
        "", max_length=2000, description="Where the payer returns after the gateway's page; the setting when empty"
    )


class OnlinePaymentOut(Schema):
    id: int
    subscriber_id: int
    provider: str
    amount: Money
    status: str = Field(description="pending, succeeded or failed")
    method_type: str | None
    confirmation_url: str | None = Field(description="The gateway's page to send the payer to")
    qr_payload: str | None = Field(description="SBP: the QR code's content (a link that also opens a bank app)")
    save_method: bool
    provider_payment_id: str | None
    payment_id: int | None = Field(description="The payment credited, once the gateway confirmed the money")
    failure_code: str | None = Field(description="Why it was not paid (the gateway's reason)")
    created_at: dt.datetime
    finished_at: dt.datetime | None


def _out(checkout: Checkout) -> dict:
    return {
        "id": checkout.pk,
        "subscriber_id": checkout.subscriber_id,
        "provider": checkout.provider,
        "amount": checkout.amount,
        "status": checkout.status,
        "method_type": checkout.method_type or None,
        "confirmation_url": checkout.confirmation_url or None,
        "qr_payload": checkout.qr_payload or None,
        "save_method": checkout.save_method,
        "provider_payment_id": checkout.provider_payment_id or None,
        "payment_id": checkout.payment_id,
        "failure_code": checkout.failure_code or None,
        "created_at": checkout.created_at,
        "finished_at": checkout.finished_at,
    }


_KEY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": True,
    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
    "description": "Required. A retry with the same key returns the first online payment; the same key with a "
    "different request is a 409.",
}


@router.post(
    "/subscribers/{subscriber_id}/online-payments",
    response={201: OnlinePaymentOut, 400: ErrorOut, 409: ErrorOut, **ERRORS},
    summary="Start an online payment at the gateway; send the payer to confirmation_url (or show qr_payload)",
    openapi_extra={"parameters": [_KEY_HEADER]},
)
def start_online_payment(request, subscriber_id: int, payload: OnlinePaymentIn):
    key = request_key(request, required=True)
    check_perm(request.user, Perm.PAYMENT_TAKE)
    subscriber = get_subscriber(request.user, subscriber_id)
    try:
        checkout = do_start_checkout(
            subscriber,
            amount=payload.amount,
            method_type=payload.method_type,
            save_method=payload.save_method,
            consent_text=payload.consent_text,
            return_url=payload.return_url,
            # Scoped to the user, hashed to fit: one client's key never finds another's checkout.
            key=f"api:{request.user.pk}:{hashlib.sha256(key.encode()).hexdigest()}",
            acting_user=request.user,
        )
    except ValidationError as exc:
        if getattr(exc, "code", None) == "idempotency_key_reused":
            raise key_reused() from None
        raise
    return Status(201, _out(checkout))


@router.get(
    "/online-payments/{checkout_id}",
    response={200: OnlinePaymentOut, **ERRORS},
    summary="An online payment: its state at the gateway as last learnt",
)
def get_online_payment(request, checkout_id: int):
    check_perm(request.user, Perm.PAYMENT_TAKE)
    return _out(get_checkout(request.user, checkout_id))
