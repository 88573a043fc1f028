"""``/api/v1/my/plans…``: the token's subscriber's plans, the plans each subscription may switch to, a change's
preview and the change itself, confirmed only as the app showed it (``expected_net``, and every other term the
preview showed this token: ``portal.as_seen``).

A change whose terms moved since the preview (a day passed, the month turned before the billing run, the price
changed) answers 409 ``preview_changed`` with the preview as it is now, and nothing is written; the app shows it
and asks again. The services (freeze, promised payment, turbo) are in ``services``. Money writes wait at most a
few seconds for a row another transaction holds: then 503 ``busy``, nothing written (``portal.busy``).
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Field, Query, Schema, Status

from abonent.api.errors import ErrorBody, ErrorOut, error_body
from abonent.api.idempotency import idempotent
from abonent.billing import actions as billing
from abonent.billing.api.schemas import MONEY_IN
from abonent.catalog.api import Money
from abonent.core.money import currency

from .. import as_seen, plans_data
from ..access import own
from ..busy import api_busy_is_503
from ..plans_data import PreviewChanged, SeenPlanChange
from . import router

ERRORS = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}
# 400: no Idempotency-Key on a write that moves money; 409: the key was used for another request; 503: busy.
WRITE_ERRORS = {400: ErrorOut, 409: ErrorOut, **ERRORS, 503: ErrorOut}
# The terms of a plan change's preview remembered for the token (the balance is not: a payment may come between).
PLAN_CHANGE_TERMS = ("net", "immediate", "effective_on", "credit", "charge", "catch_up")


# --- shared with ``services`` ----------------------------------------------------------------------------


def owned_subscription(request, subscription_id: int):
    """The token's subscriber's subscription (not terminated), else 404: another subscriber's id included."""
    return own(plans_data.subscriptions(request), request, pk=subscription_id)


def subscription_access(request, payload, **_kwargs):
    """The access check ``idempotent`` runs again before it replays a stored answer."""
    owned_subscription(request, payload.subscription)


def preview_changed_is_409(describe=None, remember=None):
    """Answer ``PreviewChanged`` with 409 ``preview_changed`` and, with ``describe``, the preview as it is now
    (``describe(fresh)``; without, the app reads the terms again). ``remember(request, payload, fresh)`` records
    that the token was shown it (``as_seen``): confirming it next is confirming what was shown.

    Outside ``idempotent``: the exception has rolled the write back and no answer is stored under the key, so
    the app may confirm the new amounts with the same key or a new one.
    """

    def decorator(handler):
        @functools.wraps(handler)
        def wrapped(request, *args, **kwargs):
            try:
                return handler(request, *args, **kwargs)
            except PreviewChanged as exc:
                message = _("The amounts have changed since the preview; nothing was done. Show them again.")
                body = error_body("preview_changed", message)
                if describe is not None:
                    body["preview"] = describe(exc.fresh)
                if remember is not None and exc.fresh is not None:
                    remember(request, kwargs["payload"], exc.fresh)
                return Status(409, body)

        return wrapped

    return decorator


def money_in(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


# --- schemas ----------------------------------------------------------------------------------------------


class MyPlanBriefOut(Schema):
    id: int
    name: str
    description: str
    download_kbps: int
    upload_kbps: int
    monthly_fee: Money | None = Field(description="Today's price a month; null: the plan has no price today")


class MySubscriptionPlansOut(Schema):
    id: int
    service: str
    status: str = Field(description="active or frozen (a frozen subscription cannot change plan)")
    plan: MyPlanBriefOut
    next_charge_on: dt.date = Field(description="The first day not yet charged")
    pending_plan: MyPlanBriefOut | None = Field(description="A downgrade scheduled for pending_plan_from")
    pending_plan_from: dt.date | None
    offered: list[MyPlanBriefOut] = Field(description="The plans this subscription may switch to, by name")


class MyPlansOut(Schema):
    currency: str
    subscriptions: list[MySubscriptionPlansOut]


class MyPlanPreviewParams(Schema):
    subscription: int
    plan: int


class MyPlanPreviewOut(Schema):
    subscription: int
    from_plan: int
    to_plan: int
    immediate: bool = Field(description="false: a downgrade from effective_on; nothing is charged for it now")
    effective_on: dt.date
    catch_up: Money = Field(description="Periods not billed yet (on the 1st before the billing run: this month), "
                            "charged first at the current plan's price")  # fmt: skip
    credit: Money = Field(description="The unused part of the current plan, given back")
    charge: Money = Field(description="The new plan for the rest of the period")
    net: Money = Field(description="catch_up + charge − credit: what the balance loses (negative: gains). Send it "
                       "back as expected_net")  # fmt: skip
    balance_before: Money
    balance_after: Money


class MyPlanPreviewChangedOut(Schema):
    """409: ``error.code`` is ``preview_changed`` (with ``preview``, nothing done) or ``idempotency_key_reused``."""

    error: ErrorBody
    preview: MyPlanPreviewOut | None = None


class MyPlanChangeIn(Schema):
    subscription: int
    plan: int
    expected_net: str = Field(pattern=MONEY_IN, description="The preview's net the subscriber agreed to")
    # The other terms shown: compared when sent. The preview this token was last shown for the same subscription
    # and plan is compared whole anyway.
    expected_immediate: bool | None = None
    expected_effective_on: dt.date | None = None
    expected_catch_up: str | None = Field(None, pattern=MONEY_IN)
    expected_credit: str | None = Field(None, pattern=MONEY_IN)
    expected_charge: str | None = Field(None, pattern=MONEY_IN)


class MySubscriptionIn(Schema):
    subscription: int


def plan_brief(card: plans_data.PlanCard) -> dict:
    plan = card.plan
    return {
        "id": plan.pk,
        "name": plan.name,
        "description": plan.description,
        "download_kbps": plan.download_kbps,
        "upload_kbps": plan.upload_kbps,
        "monthly_fee": card.monthly_fee,
    }


def _subscription_plans(row: plans_data.SubscriptionPlans) -> dict:
    s = row.subscription
    return {
        "id": s.pk,
        "service": s.plan.service.name,
        "status": s.status,
        "plan": plan_brief(row.current),
        "next_charge_on": s.next_charge_on,
        "pending_plan": plan_brief(row.pending) if row.pending else None,
        "pending_plan_from": s.pending_plan_from,
        "offered": [plan_brief(card) for card in row.offered],
    }


def _preview(preview) -> dict:
    return {
        "subscription": preview.subscription_id,
        "from_plan": preview.from_plan_id,
        "to_plan": preview.to_plan_id,
        "immediate": preview.immediate,
        "effective_on": preview.effective_on,
        "catch_up": preview.catch_up,
        "credit": preview.credit,
        "charge": preview.charge,
        "net": preview.total,
        "balance_before": preview.balance_before,
        "balance_after": preview.balance_after,
    }


def _offered_plan(subscription, plan_id: int):
    """The plan, if offered to the subscription in the portal: any other id (another service's, hidden,
    archived, unknown) is the same 422, so plan ids cannot be probed."""
    plan = plans_data.offered_plan(subscription, plan_id)
    if plan is None:
        message = _("This plan is not offered to this subscriber.")
        raise ValidationError({"plan": ValidationError(message, code="plan_not_offered")})
    return plan


# --- routes -----------------------------------------------------------------------------------------------


@router.get("/plans", response={200: MyPlansOut, **ERRORS}, summary="My plans and the plans I may switch to")
def my_plans(request):
    rows = plans_data.plans_of(request.subscriber)
    return {"currency": currency(), "subscriptions": [_subscription_plans(row) for row in rows]}


@router.get(
    "/plans/preview",
    response={200: MyPlanPreviewOut, **ERRORS},
    summary="What switching a subscription to a plan would credit and charge now",
)
def preview_plan_change(request, params: Query[MyPlanPreviewParams]):
    subscription = owned_subscription(request, params.subscription)
    preview = plans_data.preview(subscription, _offered_plan(subscription, params.plan))
    _remember_plan_change(request, params, preview)
    return _preview(preview)


def _remember_plan_change(request, params, preview) -> None:
    subject = f"{params.subscription}:{params.plan}"
    as_seen.remember(request, "plan_change", subject, as_seen.terms(preview, PLAN_CHANGE_TERMS, net=preview.total))


@router.post(
    "/plans/change",
    response={200: MyPlanPreviewOut, **WRITE_ERRORS, 409: MyPlanPreviewChangedOut},
    summary="Switch plan with the amounts of the preview: an upgrade now, a downgrade from the next period",
)
@api_busy_is_503
@preview_changed_is_409(_preview, remember=_remember_plan_change)
@idempotent(200, required=True, access=subscription_access)
def change_plan(request, payload: MyPlanChangeIn):
    subscription = owned_subscription(request, payload.subscription)
    plan = _offered_plan(subscription, payload.plan)
    seen = as_seen.seen_by_app(
        request,
        SeenPlanChange,
        "plan_change",
        f"{payload.subscription}:{payload.plan}",
        net=Decimal(payload.expected_net),
        immediate=payload.expected_immediate,
        effective_on=payload.expected_effective_on,
        catch_up=money_in(payload.expected_catch_up),
        credit=money_in(payload.expected_credit),
        charge=money_in(payload.expected_charge),
    )
    done = plans_data.change_plan_as_seen(subscription, plan, seen)
    return MyPlanPreviewOut.model_validate(_preview(done))


@router.post(
    "/plans/cancel-pending",
    response={200: MySubscriptionPlansOut, **WRITE_ERRORS},
    summary="Keep the current plan: cancel the downgrade scheduled for the next period",
)
@api_busy_is_503
@idempotent(200, access=subscription_access)
def cancel_pending_plan_change(request, payload: MySubscriptionIn):
    subscription = owned_subscription(request, payload.subscription)
    billing.do_cancel_pending_plan_change(subscription, acting_user=None)
    row = next(r for r in plans_data.plans_of(request.subscriber) if r.subscription.pk == subscription.pk)
    return MySubscriptionPlansOut.model_validate(_subscription_plans(row))


from . import services  # noqa: E402,F401  (the services' routes, on the same router)
