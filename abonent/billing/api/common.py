"""What the billing API's endpoints share: the router, error sets, access checks and answer builders."""

from __future__ import annotations

from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Router

from abonent.api.errors import ErrorOut
from abonent.api.idempotency import key_reused
from abonent.catalog.models import Plan, Service, Turbo
from abonent.core.money import currency
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.selectors import get_subscriber

from .. import selectors
from ..ledger import IdempotencyConflict
from ..models import Freeze, FreezeStatus, Subscription, TurboActivation
from .schemas import (
    SubscriptionOut,
    TurboActivationOut,
)

router = Router(tags=["billing"])

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
    from ..pricing.rules import RunPricing
    from ..pricing.selectors import price_data

    pricing = RunPricing()
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
            "price": None if s.status == "terminated" else price_data(s, pricing=pricing),
        }
        for s in subscriptions
    ]


def _freeze(freeze: Freeze | None) -> dict | None:
    return None if freeze is None else {"id": freeze.pk, "starts_on": freeze.starts_on, "ends_on": freeze.ends_on}


def _subscription_out(subscription: Subscription) -> SubscriptionOut:
    # A schema, not a dict: ``idempotent`` stores the answer as JSON, money included as strings.
    subscription = Subscription.objects.select_related("plan").get(pk=subscription.pk)
    return SubscriptionOut.model_validate(_subscriptions([subscription])[0])
