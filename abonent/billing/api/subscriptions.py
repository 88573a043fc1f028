"""Subscriptions through the API: list, plan-change preview, activation, plan change, freeze, termination and
turbo."""

from __future__ import annotations

from ninja import Query

from abonent.api.idempotency import idempotent
from abonent.catalog.api import turbo_data
from abonent.staff.permissions import Perm

from .. import actions, selectors
from ..selectors import checked_preview
from .common import (
    ERRORS,
    WRITE_ERRORS,
    _activation,
    _fields_as_sent,
    _managed_subscriber,
    _managed_subscription,
    _plan,
    _subscriber,
    _subscription,
    _subscription_out,
    _subscriptions,
    _turbo,
    router,
)
from .schemas import (
    ActivateIn,
    FreezeIn,
    PlanChangeIn,
    PreviewOut,
    PreviewParams,
    ReasonIn,
    SubscriptionOut,
    SubscriptionTurbosOut,
    TerminateIn,
    TurboActivationOut,
    TurboIn,
)


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
