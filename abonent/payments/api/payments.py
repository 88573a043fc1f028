"""Payments through the API: list, get, take (cash and manual channels), refund, cancel, the suspense queue and
assigning from it. Every write that moves money requires an Idempotency-Key; its ids are derived from the user
and the key, so a retry after a lost answer credits (or refunds) once, even after the stored answer expired."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Query

from abonent.api.errors import ErrorOut
from abonent.api.idempotency import idempotent, key_reused, request_key
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.core.money import currency
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.models import Subscriber
from abonent.subscribers.selectors import subscriber_by_account, visible_subscribers

from .. import actions, selectors
from ..models import Payment, PaymentMethod, PaymentStatus, Refund
from . import router
from .schemas import (
    AssignIn,
    CancelIn,
    PaymentCreatedOut,
    PaymentDetailOut,
    PaymentIn,
    PaymentListParams,
    PaymentOut,
    PaymentPageOut,
    RefundCreatedOut,
    RefundIn,
    SuspenseParams,
)

ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
# 400: no Idempotency-Key on a write that moves money; 409: the key was used for another request.
WRITE_ERRORS = {400: ErrorOut, 409: ErrorOut, **ERRORS}
# How far back staff may date a payment they enter (a receipt book typed in late), and forward (clock skew).
MAX_BACKDATE = dt.timedelta(days=366)
CLOCK_SKEW = dt.timedelta(minutes=5)


def _candidates(payment: Payment) -> list:
    return list(payment.details.get("candidates", [])) if payment.status == PaymentStatus.SUSPENSE else []


def visible_candidates(user, payments) -> set:
    """Of the suspense payments' candidates, the subscribers ``user`` may see (the console hides the others)."""
    ids = {pk for p in payments for pk in _candidates(p) if isinstance(pk, int)}
    return set(visible_subscribers(user).filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()


def payment_data(payment: Payment, user, visible: set | None = None) -> dict:
    subscriber = payment.subscriber
    if visible is None:
        visible = visible_candidates(user, [payment])
    line = getattr(payment, "statement_line", None) if payment.channel == "bank" else None
    return {
        **{
            name: getattr(payment, name)
            for name in PaymentOut.model_fields
            if name not in ("account_number", "candidates", "statement_id")
        },
        "account_number": subscriber.account_number if subscriber else None,
        "candidates": [pk for pk in _candidates(payment) if pk in visible],
        "statement_id": line.statement_id if line else None,
    }


def refund_data(refund: Refund) -> dict:
    return {
        "id": refund.pk,
        "amount": refund.amount,
        "reason": refund.reason,
        "status": refund.status,
        "external_id": refund.external_id,
        "created_at": refund.created_at,
        "finished_at": refund.finished_at,
        "created_by_id": refund.created_by_id,
    }


def balance_data(subscriber) -> dict:
    balance = get_balance(subscriber)
    return {
        "subscriber_id": subscriber.pk,
        "balance": balance.balance,
        "credit_limit": balance.credit_limit,
        "available": balance.available,
        "promised": balance.promised,
        "currency": currency(),
    }


def _hashed_key(request) -> str:
    """The client's Idempotency-Key as an id of ours: per user, hashed (free text of up to 200 characters)."""
    key = request_key(request, required=True)
    return f"api:{request.user.pk}:{hashlib.sha256(key.encode()).hexdigest()[:48]}"


def _visible_subscriber(request, field: str, **lookup) -> Subscriber:
    subscriber = visible_subscribers(request.user).filter(**lookup).first()
    if subscriber is None:
        raise ValidationError({field: ValidationError(_("No such subscriber."), code="does_not_exist")})
    return subscriber


def _payer(request, payload: PaymentIn) -> Subscriber:
    if (payload.subscriber_id is None) == (not payload.account_number):
        message = _("Give either subscriber_id or account_number.")
        raise ValidationError({"subscriber_id": ValidationError(message, code="subscriber_required")})
    if payload.subscriber_id is not None:
        return _visible_subscriber(request, "subscriber_id", pk=payload.subscriber_id)
    # Ours or the old system's number (docs/adr/0019), among the subscribers the token's user sees.
    subscriber = subscriber_by_account(payload.account_number, queryset=visible_subscribers(request.user))
    if subscriber is None:
        raise ValidationError({"account_number": ValidationError(_("No such subscriber."), code="does_not_exist")})
    return subscriber


def _received_at(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    now = clock.now()
    if value > now + CLOCK_SKEW:
        raise ValidationError(
            {
                "received_at": ValidationError(
                    _("A payment cannot be received in the future."), code="received_in_future"
                )
            }
        )
    if value < now - MAX_BACKDATE:
        raise ValidationError(
            {
                "received_at": ValidationError(
                    _("A payment entered by staff is at most a year old."), code="received_too_long_ago"
                )
            }
        )
    return value


def _may_take(request, payload: PaymentIn, **_kwargs) -> Subscriber:
    check_perm(request.user, Perm.PAYMENT_TAKE)
    return _payer(request, payload)


def _payment_access(perm: Perm):
    def access(request, payment_id: int, **_kwargs) -> Payment:
        check_perm(request.user, perm)
        return selectors.get_payment(request.user, payment_id)

    return access


_viewable = _payment_access(Perm.PAYMENT_VIEW)
_refundable = _payment_access(Perm.PAYMENT_REFUND)
_cancellable = _payment_access(Perm.PAYMENT_CANCEL)
_assignable = _payment_access(Perm.PAYMENT_TAKE)


def _page(user, page: selectors.PaymentPage) -> dict:
    visible = visible_candidates(user, page.items)
    return {"items": [payment_data(p, user, visible) for p in page.items], "next_cursor": page.next_cursor}


@router.get("/payments", response={200: PaymentPageOut, **ERRORS}, summary="List payments, newest first")
def list_payments(request, params: Query[PaymentListParams]):
    check_perm(request.user, Perm.PAYMENT_VIEW)
    filters = selectors.PaymentFilters(
        subscriber_id=params.subscriber_id,
        channel=params.channel or "",
        status=params.status or "",
        received_from=params.received_from,
        received_to=params.received_to,
    )
    return _page(request.user, selectors.list_payments(request.user, filters, limit=params.limit, cursor=params.cursor))


@router.get(
    "/payments/suspense",
    response={200: PaymentPageOut, **ERRORS},
    summary="The suspense queue: payments for no known, open account, waiting to be assigned or returned",
)
def list_suspense(request, params: Query[SuspenseParams]):
    check_perm(request.user, Perm.PAYMENT_VIEW)
    filters = selectors.PaymentFilters(status=PaymentStatus.SUSPENSE)
    return _page(request.user, selectors.list_payments(request.user, filters, limit=params.limit, cursor=params.cursor))


@router.get("/payments/{int:payment_id}", response={200: PaymentDetailOut, **ERRORS}, summary="Get a payment")
def get_payment(request, payment_id: int):
    payment = _viewable(request, payment_id)
    return {**payment_data(payment, request.user), "refunds": [refund_data(r) for r in payment.refunds.all()]}


@router.post(
    "/payments",
    response={201: PaymentCreatedOut, **WRITE_ERRORS},
    summary="Take a payment at the office (cash) or enter one by hand (manual)",
)
@idempotent(201, required=True, access=_may_take)
def create_payment(request, payload: PaymentIn):
    subscriber = _may_take(request, payload)
    external_id = _hashed_key(request)
    intake = actions.do_take_staff_payment(
        subscriber,
        channel=payload.channel,
        external_id=external_id,
        amount=payload.amount,
        method=PaymentMethod.CASH if payload.channel == "cash" else PaymentMethod.MANUAL,
        received_at=_received_at(payload.received_at),
        acting_user=request.user,
        memo=payload.memo,
    )
    if intake.conflict is not None or intake.payment.subscriber_id != subscriber.pk:
        # The key posted another payment before, and its stored answer has expired: not a retry of this one.
        raise key_reused()
    return PaymentCreatedOut.model_validate(
        {"payment": payment_data(intake.payment, request.user), "balance": balance_data(subscriber)}
    )


@router.post(
    "/payments/{int:payment_id}/refunds",
    response={201: RefundCreatedOut, **WRITE_ERRORS},
    summary="Refund a credited payment, whole or in part, with a reason",
)
@idempotent(201, required=True, access=_refundable)
def refund_payment(request, payment_id: int, payload: RefundIn):
    payment = _refundable(request, payment_id)
    try:
        refund = actions.do_refund_payment(
            payment, amount=payload.amount, reason=payload.reason, acting_user=request.user, key=_hashed_key(request)
        )
    except ValidationError as exc:
        if getattr(exc, "code", None) == "idempotency_key_reused":
            raise key_reused() from None
        raise
    payment = Payment.objects.select_related("subscriber").get(pk=payment.pk)
    return RefundCreatedOut.model_validate(
        {
            "refund": refund_data(refund),
            "payment": payment_data(payment, request.user),
            "balance": balance_data(payment.subscriber),
        }
    )


@router.post(
    "/payments/{int:payment_id}/cancel",
    response={200: PaymentOut, 409: ErrorOut, **ERRORS},
    summary="Cancel a payment entered by mistake (its ledger entry is reversed), with a reason",
)
@idempotent(200, access=_cancellable)
def cancel_payment(request, payment_id: int, payload: CancelIn):
    payment = _cancellable(request, payment_id)
    payment = actions.do_cancel_payment(payment, reason=payload.reason, acting_user=request.user)
    return PaymentOut.model_validate(
        payment_data(Payment.objects.select_related("subscriber").get(pk=payment.pk), request.user)
    )


@router.post(
    "/payments/{int:payment_id}/assign",
    response={200: PaymentCreatedOut, 409: ErrorOut, **ERRORS},
    summary="Credit a suspense payment to the subscriber it is for",
)
@idempotent(200, access=_assignable)
def assign_payment(request, payment_id: int, payload: AssignIn):
    payment = _assignable(request, payment_id)
    subscriber = _visible_subscriber(request, "subscriber_id", pk=payload.subscriber_id)
    payment = actions.do_assign_payment(payment, subscriber=subscriber, acting_user=request.user, reason=payload.reason)
    payment = Payment.objects.select_related("subscriber").get(pk=payment.pk)
    return PaymentCreatedOut.model_validate(
        {"payment": payment_data(payment, request.user), "balance": balance_data(subscriber)}
    )
