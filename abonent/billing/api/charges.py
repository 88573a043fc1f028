"""Charges through the API: what a subscription was charged, and giving one charge back (the admin role), or
undoing a manual adjustment or one-off charge."""

from __future__ import annotations

from django.db.models import Sum
from django.shortcuts import get_object_or_404

from abonent.api.idempotency import idempotent
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.selectors import get_subscriber

from .. import actions
from ..models import Charge, ChargeKind, LedgerTransaction
from .common import ERRORS, WRITE_ERRORS, _balance, _fields_as_sent, _subscription, router
from .schemas import ChargeOut, ChargeReversalIn, ChargeReversalOut, ReasonIn, TransactionReversalOut


def _charge_data(charge: Charge, reversed_amount=None) -> dict:
    return {
        "id": charge.pk,
        "subscription_id": charge.subscription_id,
        "kind": charge.kind,
        "period_start": charge.period_start,
        "period_end": charge.period_end,
        "amount": charge.amount,
        "price_id": charge.price_id,
        "plan_name": charge.price.plan.name if charge.price_id else None,
        "transaction_id": charge.transaction_id,
        "reverses_id": charge.reverses_id,
        "reversed": -(reversed_amount or 0),
    }


def _reversible_charge(request, charge_id: int, **_kwargs) -> Charge:
    """The charge, if the user may give charges back and sees its subscriber (404 otherwise)."""
    check_perm(request.user, Perm.BILLING_REVERSE)
    charge = get_object_or_404(Charge.objects.select_related("subscription", "price__plan"), pk=charge_id)
    charge.subscription.subscriber = get_subscriber(request.user, charge.subscription.subscriber_id)
    return charge


def _reversible_transaction(request, transaction_id: int, **_kwargs) -> LedgerTransaction:
    check_perm(request.user, Perm.BILLING_ADJUST)
    tx = get_object_or_404(LedgerTransaction, pk=transaction_id, subscriber_id__isnull=False)
    get_subscriber(request.user, tx.subscriber_id)
    return tx


@router.get(
    "/subscriptions/{subscription_id}/charges",
    response={200: list[ChargeOut], **ERRORS},
    summary="What a subscription was charged and given back, newest first",
)
def list_charges(request, subscription_id: int):
    subscription = _subscription(request, subscription_id, Perm.BILLING_VIEW)
    charges = list(
        Charge.objects.filter(subscription=subscription).select_related("price__plan").order_by("-period_start", "-id")
    )
    reversed_amounts = dict(
        Charge.objects.filter(subscription=subscription, kind=ChargeKind.REVERSAL)
        .values("reverses_id")
        .annotate(total=Sum("amount"))
        .values_list("reverses_id", "total")
    )
    return [_charge_data(c, reversed_amounts.get(c.pk)) for c in charges]


@router.post(
    "/charges/{charge_id}/reversals",
    response={201: ChargeReversalOut, **WRITE_ERRORS},
    summary="Give a charge back, whole or for some of its days, with a reason (the admin role)",
)
@idempotent(201, required=True, access=_reversible_charge)
def reverse_charge(request, charge_id: int, payload: ChargeReversalIn):
    charge = _reversible_charge(request, charge_id)
    with _fields_as_sent():
        reversal = actions.do_reverse_charge(
            charge,
            reason=payload.reason,
            acting_user=request.user,
            first_day=payload.first_day,
            until=payload.until,
        )
    return ChargeReversalOut.model_validate(
        {"reversal": _charge_data(reversal), "balance": _balance(charge.subscription.subscriber)}
    )


@router.post(
    "/transactions/{transaction_id}/reversal",
    response={201: TransactionReversalOut, **WRITE_ERRORS},
    summary="Undo a manual adjustment or one-off charge made by mistake, with a reason",
)
@idempotent(201, required=True, access=_reversible_transaction)
def reverse_transaction(request, transaction_id: int, payload: ReasonIn):
    tx = _reversible_transaction(request, transaction_id)
    reversal = actions.do_reverse_transaction(tx, reason=payload.reason, acting_user=request.user)
    subscriber = get_subscriber(request.user, tx.subscriber_id)
    amount = reversal.postings.get(account__subscriber_id=subscriber.pk).amount
    return TransactionReversalOut.model_validate(
        {"transaction_id": reversal.pk, "reverses_id": tx.pk, "amount": amount, "balance": _balance(subscriber)}
    )
