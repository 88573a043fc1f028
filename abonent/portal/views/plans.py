"""``/my/plan/``: the subscriber's plans and the plans each may switch to; a change is previewed with its exact
amounts, then confirmed as previewed (``plans_data``), and a scheduled downgrade can be cancelled."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from abonent.billing import actions as billing
from abonent.core.money import format_money

from .. import plans_data
from ..access import own
from ..busy import page_busy_is_503
from ..forms.plans import PlanChangeConfirmForm
from ..plans_data import AlreadyOnPlan, PreviewChanged


def _day(value) -> str:
    # The short form in sentences: Russian's long one ends in "г.", and a full stop after it doubles.
    return date_format(value, "SHORT_DATE_FORMAT")


def refusal(exc: ValidationError) -> str:
    """An action's refusal as one sentence for the page."""
    return " ".join(exc.messages)


@require_GET
def plans(request):
    return render(request, "portal/plans.html", {"rows": plans_data.plans_of(request.subscriber)})


def _change_page(request, subscription, plan, *, preview=None, error: str = "", changed=False, status=200):
    context = {"subscription": subscription, "plan": plan, "preview": preview, "error": error, "changed": changed}
    if preview is not None:
        context["form"] = PlanChangeConfirmForm.of(preview)
        context["card"] = plans_data.PlanCard(
            plan, plans_data.prices_today([plan.pk], preview.effective_on).get(plan.pk)
        )
        context["change"] = -preview.total  # signed as the balance moves
        if preview.immediate:
            context["charge_until"] = plans_data.new_plan_until(subscription, plan)
    return render(request, "portal/plan_change.html", context, status=status)


def _already_on(request, plan):
    # A second click of the confirmation that went through: nothing more to do.
    messages.info(request, _("You are on %(plan)s now.") % {"plan": plan.name})
    return redirect("portal:plans")


@require_http_methods(["GET", "POST"])
@page_busy_is_503
def plan_change(request, sid, plan_id):
    """GET: what changing to the plan would do now. POST: do it, if it still does what the page showed."""
    subscription = own(plans_data.subscriptions(request), request, pk=sid)
    if request.method == "POST" and subscription.plan_id == plan_id:
        return _already_on(request, subscription.plan)
    plan = plans_data.offered_plan(subscription, plan_id)
    if plan is None:
        return render(
            request, "portal/plan_change.html", {"subscription": subscription, "not_offered": True}, status=404
        )
    if subscription.pending_plan_id == plan.pk and request.method == "GET":
        return _change_page(request, subscription, plan)  # already scheduled: shown with its cancel button
    if request.method == "POST":
        form = PlanChangeConfirmForm(request.POST)
        if form.is_valid():
            try:
                done = plans_data.change_plan_as_seen(subscription, plan, form.seen())
            except PreviewChanged as exc:
                return _change_page(request, subscription, plan, preview=exc.fresh, changed=True, status=409)
            except AlreadyOnPlan:  # the first click's change committed while this one waited for it
                return _already_on(request, plan)
            except ValidationError as exc:
                return _change_page(request, subscription, plan, error=refusal(exc), status=422)
            messages.success(request, _done_message(plan, done))
            return redirect("portal:plans")
    try:
        preview = plans_data.preview(subscription, plan)
    except ValidationError as exc:
        return _change_page(request, subscription, plan, error=refusal(exc), status=422)
    # A POST whose form did not parse is shown the amounts again, as a changed preview is.
    posted = request.method == "POST"
    return _change_page(request, subscription, plan, preview=preview, changed=posted, status=409 if posted else 200)


def _done_message(plan, done) -> str:
    if not done.immediate and done.catch_up:
        return _("%(plan)s from %(date)s. Balance: %(balance)s.") % {
            "plan": plan.name,
            "date": _day(done.effective_on),
            "balance": format_money(done.balance_after),
        }
    if not done.immediate:
        return _("%(plan)s from %(date)s. Nothing is charged now.") % {
            "plan": plan.name,
            "date": _day(done.effective_on),
        }
    return _("Your plan is now %(plan)s. Balance: %(balance)s.") % {
        "plan": plan.name,
        "balance": format_money(done.balance_after),
    }


@require_POST
@page_busy_is_503
def plan_cancel_pending(request, sid):
    """Keep the current plan: the downgrade scheduled for the next period is dropped."""
    subscription = own(plans_data.subscriptions(request), request, pk=sid)
    try:
        billing.do_cancel_pending_plan_change(subscription, acting_user=None)
    except ValidationError as exc:
        messages.info(request, refusal(exc))  # a second click: already cancelled
    else:
        messages.success(
            request, _("The change is cancelled: you stay on %(plan)s.") % {"plan": subscription.plan.name}
        )
    return redirect("portal:plans")


urlpatterns = [
    path("plan/", plans, name="plans"),
    path("plan/<int:sid>/change/<int:plan_id>/", plan_change, name="plan_change"),
    path("plan/<int:sid>/cancel-pending/", plan_cancel_pending, name="plan_cancel_pending"),
]
