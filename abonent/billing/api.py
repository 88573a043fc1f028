"""REST API for billing: a subscriber's balance, ledger and subscriptions, and what staff do with them.

Money is a string with two decimals (see ``catalog.api.Money``); amounts sent are strings too. An action's
refusal is a 422 whose ``fields`` carry its code (``plan_not_offered``, ``amount_zero``…), named as the
request names them (``plan_id``, not the model's ``plan``).
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import asdict

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from abonent.api.errors import ErrorOut
from abonent.api.idempotency import idempotent, key_reused, ledger_key
from abonent.catalog.api import Money, TurboOut, turbo_data
from abonent.catalog.models import Plan, Service, Turbo
from abonent.core.money import currency
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.selectors import get_subscriber

from . import actions, selectors
from .ledger import IdempotencyConflict
from .models import Freeze, FreezeStatus, Subscription, TurboActivation
from .selectors import checked_preview

router = Router(tags=["billing"])

# ASCII digits only (``\d`` also matches "５", which was booked as 5.00). At most 10 integer digits: the
# ledger's columns are numeric(14,2), so any sum of two amounts sent still fits them (the actions add a
# business limit below this).
MONEY_IN = r"^[+-]?[0-9]{1,10}(\.[0-9]{1,2})?$"


class BalanceOut(Schema):
    subscriber_id: int
    balance: Money = Field(description="The sum of the personal account's postings; negative is a debt")
    credit_limit: Money
    available: Money = Field(description="balance + credit_limit: what may be spent before access is restricted")
    promised: Money = Field(description="Open promised payment, already included in balance")
    currency: str


class LedgerLineOut(Schema):
    transaction_id: int
    effective_date: dt.date
    created_at: dt.datetime
    kind: str
    memo: str
    amount: Money = Field(description="Positive adds to the balance, negative takes away")
    running_balance: Money = Field(description="The balance after this line")
    reversed: bool


class FreezeOut(Schema):
    id: int
    starts_on: dt.date
    ends_on: dt.date


class SubscriptionOut(Schema):
    id: int
    subscriber_id: int
    plan_id: int
    plan_name: str
    service_id: int
    status: str
    started_on: dt.date
    ended_on: dt.date | None
    next_charge_on: dt.date = Field(description="The first day not yet charged")
    pending_plan_id: int | None = Field(description="A downgrade waiting for the next period")
    pending_plan_from: dt.date | None
    freeze: FreezeOut | None = Field(description="The freeze in effect, if frozen")


class ActivateIn(Schema):
    plan_id: int
    reason: str = Field("", max_length=500)


class PreviewParams(Schema):
    plan_id: int
    force: bool = Field(False, description="Apply a downgrade now instead of at the next period")


class PreviewOut(Schema):
    subscription_id: int
    from_plan_id: int
    to_plan_id: int
    immediate: bool = Field(description="false: a downgrade scheduled for effective_on, nothing charged now")
    effective_on: dt.date
    credit: Money = Field(description="The unused part of the current plan, given back")
    charge: Money = Field(description="The new plan for the rest of the period")
    net: Money = Field(description="charge − credit")
    balance_before: Money
    balance_after: Money


class PlanChangeIn(Schema):
    plan_id: int
    force: bool = False
    reason: str = Field("", max_length=500)


class FreezeIn(Schema):
    days: int = Field(..., ge=1, le=366)
    reason: str = Field("", max_length=500)


class ReasonIn(Schema):
    reason: str = Field("", max_length=500)


class TerminateIn(Schema):
    reason: str = Field(..., min_length=1, max_length=500)


class AdjustmentIn(Schema):
    amount: str = Field(..., pattern=MONEY_IN, description="Positive adds to the balance, negative takes away")
    reason: str = Field(..., min_length=1, max_length=500)


class AdjustmentOut(Schema):
    transaction_id: int
    effective_date: dt.date
    amount: Money
    reason: str
    balance: BalanceOut


class OneOffChargeIn(Schema):
    service_id: int
    amount: str | None = Field(None, pattern=MONEY_IN, description="null: the service's list price")
    reason: str = Field(..., min_length=1, max_length=500)


class OneOffChargeOut(Schema):
    transaction_id: int
    effective_date: dt.date
    service_id: int
    amount: Money = Field(description="What was charged: taken from the balance")
    memo: str = Field(description="The ledger line's text: the service's name and the reason")
    balance: BalanceOut


class PromisedPaymentIn(Schema):
    amount: str | None = Field(None, pattern=MONEY_IN, description="null: the most the plan's policy allows")


class PromisedPaymentOut(Schema):
    id: int
    amount: Money
    fee: Money
    taken_at: dt.datetime
    due_on: dt.date
    status: str
    balance: BalanceOut


class CreditLimitIn(Schema):
    amount: str = Field(..., pattern=MONEY_IN)
    reason: str = Field(..., min_length=1, max_length=500)


class TurboRefOut(Schema):
    id: int
    code: str
    name: str


class TurboActivationOut(Schema):
    id: int
    subscription_id: int
    turbo: TurboRefOut
    download_kbps: int = Field(description="As bought: a later change of the option does not change it")
    upload_kbps: int
    price: Money = Field(description="Charged from the balance when bought")
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str = Field(description="active, finished (ran out) or ended_early")
    ended_at: dt.datetime | None


class SubscriptionTurbosOut(Schema):
    subscription_id: int
    offered: list[TurboOut] = Field(description="The options the plan sells, cheapest first")
    active: TurboActivationOut | None = Field(description="The turbo in effect now, if any")


class TurboIn(Schema):
    turbo_id: int
    reason: str = Field("", max_length=500)


class LedgerParams(Schema):
    limit: int = Field(100, ge=1, le=1000)


ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
# 400: no Idempotency-Key on a write that moves money; 409: the key was used for another request.
WRITE_ERRORS = {400: ErrorOut, 409: ErrorOut, **ERRORS}


@contextmanager
def _fields_as_sent(**names):
    """Name an action's field errors as the request does (``plan`` → ``plan_id``)."""
    try:
        yield
    except ValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise
        raise ValidationError({names.get(field, field): errors for field, errors in exc.error_dict.items()}) from exc


def _subscriber(request, subscriber_id: int, perm: Perm):
    check_perm(request.user, perm)
    return get_subscriber(request.user, subscriber_id)


def _subscription(request, subscription_id: int, perm: Perm) -> Subscription:
    """The subscription, if its subscriber is visible to the user (404 otherwise, as for the subscriber)."""
    check_perm(request.user, perm)
    subscription = get_object_or_404(Subscription.objects.select_related("plan"), pk=subscription_id)
    subscription.subscriber = get_subscriber(request.user, subscription.subscriber_id)
    return subscription


def _subscriber_access(perm: Perm):
    """The access check of an endpoint on ``/subscribers/{subscriber_id}/…``: its handler runs it, and
    ``idempotent`` runs it again before replaying a stored answer."""

    def subscriber(request, subscriber_id: int, **_kwargs):
        return _subscriber(request, subscriber_id, perm)

    return subscriber


def _subscription_access(perm: Perm):
    """As ``_subscriber_access``, for an endpoint on ``/subscriptions/{subscription_id}/…``."""

    def subscription(request, subscription_id: int, **_kwargs) -> Subscription:
        return _subscription(request, subscription_id, perm)

    return subscription


_adjustable_subscriber = _subscriber_access(Perm.BILLING_ADJUST)
_managed_subscriber = _subscriber_access(Perm.SUBSCRIPTION_MANAGE)
_managed_subscription = _subscription_access(Perm.SUBSCRIPTION_MANAGE)


@contextmanager
def _ledger_key_reused_is_409():
    """A ledger key derived from an Idempotency-Key already posted with other content (the stored answer has
    expired, so the decorator could not tell): the same refusal as the decorator's."""
    try:
        yield
    except IdempotencyConflict:
        raise key_reused() from None


def _plan(plan_id: int) -> Plan:
    plan = Plan.objects.select_related("service").filter(pk=plan_id).first()
    if plan is None:
        raise ValidationError({"plan_id": ValidationError(_("No such plan."), code="does_not_exist")})
    return plan


def _service(service_id: int) -> Service:
    service = Service.objects.filter(pk=service_id).first()
    if service is None:
        raise ValidationError({"service_id": ValidationError(_("No such service."), code="does_not_exist")})
    return service


def _turbo(turbo_id: int) -> Turbo:
    turbo = Turbo.objects.filter(pk=turbo_id).first()
    if turbo is None:
        raise ValidationError({"turbo_id": ValidationError(_("No such turbo option."), code="does_not_exist")})
    return turbo


def _activation(activation: TurboActivation) -> dict:
    return {
        **{name: getattr(activation, name) for name in TurboActivationOut.model_fields if name != "turbo"},
        "turbo": {"id": activation.turbo.pk, "code": activation.turbo.code, "name": activation.turbo.name},
    }


def _balance(subscriber) -> dict:
    balance = selectors.get_balance(subscriber)
    return {
        "subscriber_id": subscriber.pk,
        "balance": balance.balance,
        "credit_limit": balance.credit_limit,
        "available": balance.available,
        "promised": balance.promised,
        "currency": currency(),
    }


def _subscriptions(subscriptions: list[Subscription]) -> list[dict]:
    freezes = {
        f.subscription_id: f
        for f in Freeze.objects.filter(subscription__in=[s.pk for s in subscriptions], status=FreezeStatus.ACTIVE)
    }
    return [
        {
            "id": s.pk,
            "subscriber_id": s.subscriber_id,
            "plan_id": s.plan_id,
            "plan_name": s.plan.name,
            "service_id": s.plan.service_id,
            "status": s.status,
            "started_on": s.started_on,
            "ended_on": s.ended_on,
            "next_charge_on": s.next_charge_on,
            "pending_plan_id": s.pending_plan_id,
            "pending_plan_from": s.pending_plan_from,
            "freeze": _freeze(freezes.get(s.pk)),
        }
        for s in subscriptions
    ]


def _freeze(freeze: Freeze | None) -> dict | None:
    return None if freeze is None else {"id": freeze.pk, "starts_on": freeze.starts_on, "ends_on": freeze.ends_on}


def _subscription_out(subscription: Subscription) -> SubscriptionOut:
    # A schema, not a dict: ``idempotent`` stores the answer as JSON, money included as strings.
    subscription = Subscription.objects.select_related("plan").get(pk=subscription.pk)
    return SubscriptionOut.model_validate(_subscriptions([subscription])[0])


# --- reads -----------------------------------------------------------------------------------------------


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


@router.get(
    "/subscribers/{subscriber_id}/subscriptions",
    response={200: list[SubscriptionOut], **ERRORS},
    summary="List a subscriber's subscriptions, terminated ones included",
)
def list_subscriptions(request, subscriber_id: int):
    subscriber = _subscriber(request, subscriber_id, Perm.BILLING_VIEW)
    return _subscriptions(list(selectors.subscriptions_of(subscriber)))


@router.get(
    "/subscriptions/{subscription_id}/plan-change-preview",
    response={200: PreviewOut, **ERRORS},
    summary="What a plan change would credit and charge, before it is made",
)
def preview_plan_change(request, subscription_id: int, params: Query[PreviewParams]):
    subscription = _subscription(request, subscription_id, Perm.SUBSCRIPTION_MANAGE)
    with _fields_as_sent(plan="plan_id"):
        preview = checked_preview(subscription, _plan(params.plan_id), force=params.force)
    return {
        **{name: getattr(preview, name) for name in PreviewOut.model_fields if name not in ("net", "balance_after")},
        "net": preview.net,
        "balance_after": preview.balance_after,
    }


@router.get(
    "/subscriptions/{subscription_id}/turbos",
    response={200: SubscriptionTurbosOut, **ERRORS},
    summary="The turbo options a subscription may buy, and the turbo on now",
)
def get_turbos(request, subscription_id: int):
    subscription = _subscription(request, subscription_id, Perm.BILLING_VIEW)
    active = selectors.active_turbos([subscription.pk]).get(subscription.pk)
    return {
        "subscription_id": subscription.pk,
        "offered": [turbo_data(t) for t in selectors.turbos_offered(subscription)],
        "active": _activation(active) if active else None,
    }


# --- writes ----------------------------------------------------------------------------------------------
# Every write here but the credit limit moves money (a fee, a credit, a charge, a posting), so each requires
# an Idempotency-Key (400 without it).


@router.post(
    "/subscribers/{subscriber_id}/subscriptions",
    response={201: SubscriptionOut, **WRITE_ERRORS},
    summary="Subscribe to a plan from today, charging what is due now",
)
@idempotent(201, required=True, access=_managed_subscriber)
def activate_subscription(request, subscriber_id: int, payload: ActivateIn):
    subscriber = _managed_subscriber(request, subscriber_id)
    with _fields_as_sent(plan="plan_id"):
        subscription = actions.do_activate_subscription(
            subscriber, plan=_plan(payload.plan_id), acting_user=request.user, reason=payload.reason
        )
    return _subscription_out(subscription)


@router.post(
    "/subscriptions/{subscription_id}/plan-change",
    response={200: SubscriptionOut, **WRITE_ERRORS},
    summary="Change the plan: an upgrade now with proration, a downgrade at the next period unless forced",
)
@idempotent(200, required=True, access=_managed_subscription)
def change_plan(request, subscription_id: int, payload: PlanChangeIn):
    subscription = _managed_subscription(request, subscription_id)
    with _fields_as_sent(plan="plan_id"):
        subscription = actions.do_change_plan(
            subscription,
            plan=_plan(payload.plan_id),
            force=payload.force,
            reason=payload.reason,
            acting_user=request.user,
            channel="staff",
        )
    return _subscription_out(subscription)


@router.post(
    "/subscriptions/{subscription_id}/freeze",
    response={200: SubscriptionOut, **WRITE_ERRORS},
    summary="Freeze from today for a number of days",
)
@idempotent(200, required=True, access=_managed_subscription)
def freeze_subscription(request, subscription_id: int, payload: FreezeIn):
    subscription = _managed_subscription(request, subscription_id)
    actions.do_freeze_subscription(subscription, days=payload.days, reason=payload.reason, acting_user=request.user)
    return _subscription_out(subscription)


@router.post(
    "/subscriptions/{subscription_id}/unfreeze",
    response={200: SubscriptionOut, **WRITE_ERRORS},
    summary="End a freeze now; fees resume from today",
)
@idempotent(200, required=True, access=_managed_subscription)
def unfreeze_subscription(request, subscription_id: int, payload: ReasonIn):
    subscription = _managed_subscription(request, subscription_id)
    actions.do_unfreeze_subscription(subscription, reason=payload.reason, acting_user=request.user)
    return _subscription_out(subscription)


@router.post(
    "/subscriptions/{subscription_id}/terminate",
    response={200: SubscriptionOut, **WRITE_ERRORS},
    summary="End a subscription today, crediting what was charged beyond today",
)
@idempotent(200, required=True, access=_managed_subscription)
def terminate_subscription(request, subscription_id: int, payload: TerminateIn):
    subscription = _managed_subscription(request, subscription_id)
    actions.do_terminate_subscription(subscription, reason=payload.reason, acting_user=request.user)
    return _subscription_out(subscription)


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


@router.post(
    "/subscriptions/{subscription_id}/turbo",
    response={201: TurboActivationOut, **WRITE_ERRORS},
    summary="Buy a turbo: its price is charged from the balance now, its speed lasts for its hours",
)
@idempotent(201, required=True, access=_managed_subscription)
def activate_turbo(request, subscription_id: int, payload: TurboIn):
    subscription = _managed_subscription(request, subscription_id)
    with _fields_as_sent(turbo="turbo_id"):
        activation = actions.do_activate_turbo(
            subscription, turbo=_turbo(payload.turbo_id), acting_user=request.user, reason=payload.reason
        )
    return TurboActivationOut.model_validate(_activation(activation))


@router.post(
    "/subscriptions/{subscription_id}/turbo/end",
    response={200: TurboActivationOut, **WRITE_ERRORS},
    summary="End the turbo on now, before its time; nothing is refunded",
)
@idempotent(200, required=True, access=_managed_subscription)
def end_turbo(request, subscription_id: int, payload: ReasonIn):
    subscription = _managed_subscription(request, subscription_id)
    activation = actions.do_end_turbo(subscription, acting_user=request.user, reason=payload.reason)
    return TurboActivationOut.model_validate(_activation(activation))
