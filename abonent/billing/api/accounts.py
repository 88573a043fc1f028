"""A subscriber's personal account through the API: balance, statement, adjustments, one-off charges, promised
payments and the credit limit."""

from __future__ import annotations

from dataclasses import asdict

from ninja import Query

from abonent.api.idempotency import idempotent, ledger_key
from abonent.staff.permissions import Perm

from .. import actions, selectors
from .common import (
    ERRORS,
    WRITE_ERRORS,
    _adjustable_subscriber,
    _balance,
    _fields_as_sent,
    _ledger_key_reused_is_409,
    _managed_subscriber,
    _service,
    _subscriber,
    router,
)
from .schemas import (
    AdjustmentIn,
    AdjustmentOut,
    BalanceOut,
    CreditLimitIn,
    LedgerLineOut,
    LedgerParams,
    OneOffChargeIn,
    OneOffChargeOut,
    PromisedPaymentIn,
    PromisedPaymentOut,
)


@router.get("/subscribers/{subscriber_id}/balance", response={200: BalanceOut, **ERRORS}, summary="Get the balance")
def get_balance(request, subscriber_id: int):
    return _balance(_subscriber(request, subscriber_id, Perm.BILLING_VIEW))


@router.get(
    "/subscribers/{subscriber_id}/ledger",
    response={200: list[LedgerLineOut], **ERRORS},
    summary="The account statement, newest first, with the balance after each line",
)
def get_ledger(request, subscriber_id: int, params: Query[LedgerParams]):
    subscriber = _subscriber(request, subscriber_id, Perm.BILLING_VIEW)
    return [asdict(line) for line in selectors.ledger_lines(subscriber, limit=params.limit)]


@router.post(
    "/subscribers/{subscriber_id}/adjustments",
    response={201: AdjustmentOut, **WRITE_ERRORS},
    summary="Adjust the balance by hand, with a reason",
)
@idempotent(201, required=True, access=_adjustable_subscriber)
def adjust_balance(request, subscriber_id: int, payload: AdjustmentIn):
    subscriber = _adjustable_subscriber(request, subscriber_id)
    with _ledger_key_reused_is_409():
        tx = actions.do_adjust_balance(
            subscriber,
            amount=payload.amount,
            reason=payload.reason,
            acting_user=request.user,
            key=ledger_key(request, "adjustment"),
        )
    amount = tx.postings.get(account__subscriber_id=subscriber.pk).amount
    return AdjustmentOut.model_validate(
        {
            "transaction_id": tx.pk,
            "effective_date": tx.effective_date,
            "amount": amount,
            "reason": tx.memo,
            "balance": _balance(subscriber),
        }
    )


@router.post(
    "/subscribers/{subscriber_id}/one-off-charges",
    response={201: OneOffChargeOut, **WRITE_ERRORS},
    summary="Charge a one-off service (installation, cable…): its list price unless an amount is given",
)
@idempotent(201, required=True, access=_adjustable_subscriber)
def charge_one_off(request, subscriber_id: int, payload: OneOffChargeIn):
    subscriber = _adjustable_subscriber(request, subscriber_id)
    with _fields_as_sent(service="service_id"), _ledger_key_reused_is_409():
        tx = actions.do_charge_one_off(
            subscriber,
            service=_service(payload.service_id),
            amount=payload.amount,
            reason=payload.reason,
            acting_user=request.user,
            key=ledger_key(request, "one_off"),
        )
    amount = tx.postings.get(account__subscriber_id=subscriber.pk).amount
    return OneOffChargeOut.model_validate(
        {
            "transaction_id": tx.pk,
            "effective_date": tx.effective_date,
            "service_id": payload.service_id,
            "amount": -amount,
            "memo": tx.memo,
            "balance": _balance(subscriber),
        }
    )


@router.post(
    "/subscribers/{subscriber_id}/promised-payments",
    response={201: PromisedPaymentOut, **WRITE_ERRORS},
    summary="Take a promised payment within the plan's policy",
)
@idempotent(201, required=True, access=_managed_subscriber)
def take_promised_payment(request, subscriber_id: int, payload: PromisedPaymentIn):
    subscriber = _managed_subscriber(request, subscriber_id)
    promised = actions.do_take_promised_payment(subscriber, acting_user=request.user, amount=payload.amount)
    return PromisedPaymentOut.model_validate(
        {
            "id": promised.pk,
            "amount": promised.amount,
            "fee": promised.fee,
            "taken_at": promised.taken_at,
            "due_on": promised.due_on,
            "status": promised.status,
            "balance": _balance(subscriber),
        }
    )


# No Idempotency-Key here: a PUT sets an absolute value and posts nothing to the ledger, so a retry leaves
# the account as the first call did. A key would only spare the audit a second row for the same value.
@router.put(
    "/subscribers/{subscriber_id}/credit-limit",
    response={200: BalanceOut, **ERRORS},
    summary="Set how far below zero the balance may go before access is restricted",
)
def set_credit_limit(request, subscriber_id: int, payload: CreditLimitIn):
    subscriber = _adjustable_subscriber(request, subscriber_id)
    actions.do_set_credit_limit(subscriber, amount=payload.amount, reason=payload.reason, acting_user=request.user)
    return _balance(subscriber)
