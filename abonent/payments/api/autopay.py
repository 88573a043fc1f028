"""Autopay through the API: a subscriber's autopay with their saved methods and the tries (``GET``), turned on or
changed (``PUT``, the whole settings each time, so a repeat is harmless) and turned off (``DELETE``).

Reading needs billing view; changing needs subscription manage. A refusal is a 422 whose ``fields`` carry the
action's codes (``method_foreign``, ``method_unlinked``, ``debit_day_invalid``, ``amount_over_cap``…), named as
the request names them (``method_id``).
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Literal

from django.core.exceptions import ValidationError
from django.http import Http404
from ninja import Field, Schema

from abonent.api.errors import ErrorOut
from abonent.catalog.api import Money
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.selectors import get_subscriber

from .. import actions
from ..selectors import autopay as selectors
from . import router

ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
# As billing's bodies: ASCII digits, two decimals at most, within the ledger's columns.
MONEY_IN = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"


class SavedMethodOut(Schema):
    id: int
    provider: str
    type: str = Field(alias="method_type")
    title: str
    active: bool
    consent_text: str
    consented_at: dt.datetime
    consent_source: str
    unlinked_at: dt.datetime | None
    unlink_reason: str


class AutopayOut(Schema):
    enabled: bool
    method_id: int
    mode: str = Field(description="day: on debit_day of each month; low_balance: when the balance runs short")
    debit_day: int
    amount_mode: str = Field(description="cover: what covers the fees until the next cycle; fixed: fixed_amount")
    fixed_amount: Money | None
    min_amount: Money
    max_amount: Money | None = Field(description="The most debited at once; null: the system's limit")
    enabled_at: dt.datetime
    disabled_at: dt.datetime | None
    stop_reason: str


class AutopayAttemptOut(Schema):
    id: int
    due_on: dt.date
    number: int = Field(description="1 on the debit day, then each retry")
    scheduled_for: dt.date
    amount: Money | None
    status: str
    decline_code: str
    decline_soft: bool | None
    provider_payment_id: str
    payment_id: int | None


class AutopayStateOut(Schema):
    autopay: AutopayOut | None
    methods: list[SavedMethodOut]
    attempts: list[AutopayAttemptOut] = Field(description="The newest tries first")


class AutopayIn(Schema):
    method_id: int
    mode: Literal["day", "low_balance"] = "day"
    debit_day: int | None = Field(None, description="1–31, needed for mode=day; past a month's end: its last day")
    amount_mode: Literal["cover", "fixed"] = "cover"
    fixed_amount: str | None = Field(None, pattern=MONEY_IN, examples=["650.00"])
    min_amount: str | None = Field(None, pattern=MONEY_IN)
    max_amount: str | None = Field(None, pattern=MONEY_IN)


class AutopayOffIn(Schema):
    reason: str = Field("", max_length=200)


@contextmanager
def _fields_as_sent():
    try:
        yield
    except ValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise
        names = {"method": "method_id"}
        raise ValidationError({names.get(f, f): errors for f, errors in exc.error_dict.items()}) from exc


def _subscriber(request, subscriber_id: int, perm: Perm):
    check_perm(request.user, perm)
    return get_subscriber(request.user, subscriber_id)


def _state(subscriber) -> dict:
    return {
        "autopay": selectors.autopay_of(subscriber),
        "methods": list(selectors.methods_of(subscriber)),
        "attempts": selectors.attempts_of(subscriber),
    }


@router.get(
    "/subscribers/{subscriber_id}/autopay",
    response={200: AutopayStateOut, **ERRORS},
    summary="A subscriber's autopay, saved payment methods and debit tries",
)
def get_autopay(request, subscriber_id: int):
    return _state(_subscriber(request, subscriber_id, Perm.BILLING_VIEW))


@router.put(
    "/subscribers/{subscriber_id}/autopay",
    response={200: AutopayOut, **ERRORS},
    summary="Turn autopay on or change it (the subscriber's consent is the saved method's)",
)
def put_autopay(request, subscriber_id: int, payload: AutopayIn):
    subscriber = _subscriber(request, subscriber_id, Perm.SUBSCRIPTION_MANAGE)
    with _fields_as_sent():
        return actions.do_enable_autopay(
            subscriber,
            method=payload.method_id,
            mode=payload.mode,
            debit_day=payload.debit_day,
            amount_mode=payload.amount_mode,
            fixed_amount=payload.fixed_amount,
            min_amount=payload.min_amount,
            max_amount=payload.max_amount,
            acting_user=request.user,
        )


@router.delete(
    "/subscribers/{subscriber_id}/autopay",
    response={200: AutopayOut, **ERRORS},
    summary="Turn autopay off (tries not yet sent are cancelled)",
)
def delete_autopay(request, subscriber_id: int, payload: AutopayOffIn | None = None):
    subscriber = _subscriber(request, subscriber_id, Perm.SUBSCRIPTION_MANAGE)
    plan = actions.do_disable_autopay(subscriber, acting_user=request.user, reason=payload.reason if payload else "")
    if plan is None:
        raise Http404
    return plan
