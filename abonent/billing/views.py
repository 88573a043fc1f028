"""Billing on the subscriber card: the forms of the balance and subscriptions panels, and the plan-change
preview. Thin: parse, check access, call an action or selector, re-render the panel (422 with the form's
errors when the action refuses)."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from abonent.core.forms import apply_action_errors
from abonent.core.money import format_money
from abonent.staff.permissions import Perm, check_perm, has_perm
from abonent.subscribers.selectors import get_subscriber

from . import actions, card, offers, selectors
from .forms import (
    ActivateForm,
    AdjustmentForm,
    ChargeReversalForm,
    CreditLimitForm,
    FreezeForm,
    PlanChangeForm,
    PromisedPaymentForm,
    TerminateForm,
    TimePackageForm,
    TurboEndForm,
    TurboForm,
    UnfreezeForm,
    console_form,
)
from .models import Charge
from .panels import PANELS, ledger_context, render_billing_panel
from .rating.time_summary import time_packages_offered
from .selectors import checked_preview


def _day(value) -> str:
    return date_format(value, "SHORT_DATE_FORMAT")


def _moment(value) -> str:
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")


def _subscriber(request, pk: int, perm: Perm):
    # Permission first (403), then visibility (404 for a subscriber of another branch), as the card does.
    check_perm(request.user, perm)
    return get_subscriber(request.user, pk)


def _subscription(subscriber, sid: int):
    subscription = get_object_or_404(selectors.subscriptions_of(subscriber), pk=sid)
    subscription.subscriber = subscriber
    return subscription


def _respond(request, subscriber, name: str, *, form=None, key: str = "", notice: str = ""):
    """The re-rendered panel: 200 with ``notice`` after the action, 422 with ``form``'s errors when it refused.

    After a success the other billing panels come along out of band: a plan change or an adjustment moves
    the balance and adds ledger lines. Without HTMX, back to the card with a message.
    """
    failed = form is not None and bool(form.errors)
    if not request.htmx:
        if failed:
            messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        elif notice:
            messages.success(request, notice)
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + f"#panel-{name}")
    if failed:
        return HttpResponse(render_billing_panel(request, subscriber, name, bound={key: form}), status=422)
    card.forget(subscriber)  # the figures after the action
    html = render_billing_panel(request, subscriber, name, notice=notice)
    html += "".join(
        render_billing_panel(request, subscriber, other, out_of_band=True) for other in PANELS if other != name
    )
    # The card header's plan, balance and next charge move with them.
    if has_perm(request.user, Perm.BILLING_VIEW):
        html += card.render_header(request, subscriber, out_of_band=True)
    return HttpResponse(html)


def _post(
    request, pk: int, *, panel: str, key: str, form_class, perm: Perm, do, sid: int | None = None, form_kwargs=None
):
    """Parse ``form_class``, call ``do(subscriber, subscription, data) -> notice``, re-render ``panel``.

    ``form_kwargs(subscription)`` gives the form's extra arguments (the plans offered to the subscription).
    """
    subscriber = _subscriber(request, pk, perm)
    subscription = _subscription(subscriber, sid) if sid is not None else None
    form = console_form(form_class, key, request.POST, **(form_kwargs(subscription) if form_kwargs else {}))
    notice = ""
    if form.is_valid():
        try:
            notice = do(subscriber, subscription, form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
    return _respond(request, subscriber, panel, form=form, key=key, notice=notice)


# --- balance panel ---------------------------------------------------------------------------------------


@require_POST
@login_required
def adjust(request, pk):
    def do(subscriber, _subscription, data):
        actions.do_adjust_balance(subscriber, amount=data["amount"], reason=data["reason"], acting_user=request.user)
        return _("Balance adjusted by %(amount)s.") % {"amount": format_money(data["amount"])}

    return _post(request, pk, panel="balance", key="adjust", form_class=AdjustmentForm, perm=Perm.BILLING_ADJUST, do=do)


@require_POST
@login_required
def set_credit_limit(request, pk):
    def do(subscriber, _subscription, data):
        account = actions.do_set_credit_limit(
            subscriber, amount=data["amount"], reason=data["reason"], acting_user=request.user
        )
        return _("Credit limit set to %(amount)s.") % {"amount": format_money(account.credit_limit)}

    return _post(
        request, pk, panel="balance", key="credit-limit", form_class=CreditLimitForm, perm=Perm.BILLING_ADJUST, do=do
    )


@require_GET
@login_required
def promised_preview(request, pk):
    """What a promised payment of the amount asked would do, with the form that confirms it."""
    subscriber = _subscriber(request, pk, Perm.SUBSCRIPTION_MANAGE)
    form = console_form(PromisedPaymentForm, "promised", request.GET)
    preview = None
    if form.is_valid():
        try:
            preview = offers.promised_preview(subscriber, form.cleaned_data["amount"])
        except ValidationError as exc:
            apply_action_errors(form, exc)
    return _preview_response(
        request,
        subscriber,
        fragment="billing/_promised_preview.html",
        title=_("Take a promised payment"),
        context={"preview": preview},
        form=form,
    )


@require_POST
@login_required
def take_promised_payment(request, pk):
    def do(subscriber, _subscription, data):
        promised = actions.do_take_promised_payment(subscriber, acting_user=request.user, amount=data["amount"])
        return _("Promised payment of %(amount)s until %(date)s.") % {
            "amount": format_money(promised.amount),
            "date": _day(promised.due_on),
        }

    return _post(
        request,
        pk,
        panel="balance",
        key="promised",
        form_class=PromisedPaymentForm,
        perm=Perm.SUBSCRIPTION_MANAGE,
        do=do,
    )


# --- subscriptions panel ---------------------------------------------------------------------------------


@require_POST
@login_required
def activate(request, pk):
    def do(subscriber, _subscription, data):
        subscription = actions.do_activate_subscription(
            subscriber, plan=data["plan"], acting_user=request.user, reason=data["reason"]
        )
        return _("Subscribed to %(plan)s.") % {"plan": subscription.plan.name}

    return _post(
        request,
        pk,
        panel="subscriptions",
        key="activate",
        form_class=ActivateForm,
        perm=Perm.SUBSCRIPTION_MANAGE,
        do=do,
    )


@require_GET
@login_required
def plan_change_preview(request, pk, sid):
    """What a plan change would charge and credit, with the button that confirms it (an HTMX fragment)."""
    subscriber = _subscriber(request, pk, Perm.SUBSCRIPTION_MANAGE)
    subscription = _subscription(subscriber, sid)
    if not request.GET.get("plan"):
        return HttpResponse("")  # the list went back to its empty choice: nothing to preview
    form = console_form(PlanChangeForm, f"change-{sid}", request.GET, choices=_plan_choices(subscription))
    context = {"subscriber": subscriber, "subscription": subscription, "form": form}
    if form.is_valid():
        plan, force = form.cleaned_data["plan"], form.cleaned_data["force"]
        try:
            preview = checked_preview(subscription, plan, force=force)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            credit_limit = selectors.get_balance(subscriber).credit_limit
            context.update(
                preview=preview,
                to_plan=plan,
                force=force,
                # Signed as the ledger will show them: what each leg does to the balance.
                credit=preview.credit,
                charge=-preview.charge,
                change=-preview.net,
                credit_limit=credit_limit,
                # Access follows money (DESIGN.md invariant 5): below this the subscriber is sent to the payment page.
                restricts=preview.total > 0 and offers.below_access_threshold(preview.balance_after, credit_limit),
            )
    template = "billing/_plan_change_preview.html" if request.htmx else "billing/plan_change_page.html"
    return render(request, template, context, status=422 if form.errors else 200)


def _plan_choices(subscription):
    return offers.plan_choices(subscription, selectors.plans_offered(subscription))


@require_POST
@login_required
def change_plan(request, pk, sid):
    def do(subscriber, subscription, data):
        subscription = actions.do_change_plan(
            subscription,
            plan=data["plan"],
            force=data["force"],
            reason=data["reason"],
            acting_user=request.user,
            channel="staff",
        )
        if subscription.pending_plan_id == data["plan"].pk:
            return _("The change to %(plan)s is scheduled for %(date)s.") % {
                "plan": data["plan"].name,
                "date": _day(subscription.pending_plan_from),
            }
        return _("Plan changed to %(plan)s.") % {"plan": data["plan"].name}

    return _post(
        request,
        pk,
        panel="subscriptions",
        key=f"change-{sid}",
        form_class=PlanChangeForm,
        perm=Perm.SUBSCRIPTION_MANAGE,
        do=do,
        sid=sid,
        form_kwargs=lambda subscription: {"choices": _plan_choices(subscription)},
    )


def _preview_response(request, subscriber, *, fragment: str, title: str, context: dict, form):
    """A preview fragment for the panel that asked (HTMX), or the same as a page; 422 with the refusal."""
    context = {"subscriber": subscriber, "form": form, **context}
    status = 422 if form.errors else 200
    if request.htmx:
        return render(request, fragment, context, status=status)
    page = {**context, "fragment": fragment, "title": title}
    return render(request, "billing/preview_page.html", page, status=status)


@require_GET
@login_required
def freeze_preview(request, pk, sid):
    """What a freeze of the days asked would credit and charge, with the form that confirms it."""
    subscriber = _subscriber(request, pk, Perm.SUBSCRIPTION_MANAGE)
    subscription = _subscription(subscriber, sid)
    form = console_form(FreezeForm, f"freeze-{sid}", request.GET)
    preview = None
    if form.is_valid():
        try:
            preview = offers.freeze_preview(subscription, form.cleaned_data["days"])
        except ValidationError as exc:
            apply_action_errors(form, exc)
    return _preview_response(
        request,
        subscriber,
        fragment="billing/_freeze_preview.html",
        title=_("Freeze"),
        context={"subscription": subscription, "preview": preview},
        form=form,
    )


@require_POST
@login_required
def freeze(request, pk, sid):
    def do(subscriber, subscription, data):
        frozen = actions.do_freeze_subscription(
            subscription, days=data["days"], reason=data["reason"], acting_user=request.user
        )
        return _("Frozen until %(date)s.") % {"date": _day(frozen.ends_on)}

    return _post(
        request,
        pk,
        panel="subscriptions",
        key=f"freeze-{sid}",
        form_class=FreezeForm,
        perm=Perm.SUBSCRIPTION_MANAGE,
        do=do,
        sid=sid,
    )


@require_POST
@login_required
def unfreeze(request, pk, sid):
    def do(subscriber, subscription, data):
        actions.do_unfreeze_subscription(subscription, reason=data["reason"], acting_user=request.user)
        return _("Unfrozen: fees resume from today.")

    return _post(
        request,
        pk,
        panel="subscriptions",
        key=f"unfreeze-{sid}",
        form_class=UnfreezeForm,
        perm=Perm.SUBSCRIPTION_MANAGE,
        do=do,
        sid=sid,
    )


@require_POST
@login_required
def terminate(request, pk, sid):
    def do(subscriber, subscription, data):
        actions.do_terminate_subscription(subscription, reason=data["reason"], acting_user=request.user)
        return _("Subscription to %(plan)s terminated.") % {"plan": subscription.plan.name}

    return _post(
        request,
        pk,
        panel="subscriptions",
        key=f"terminate-{sid}",
        form_class=TerminateForm,
        perm=Perm.SUBSCRIPTION_MANAGE,
        do=do,
        sid=sid,
    )


@require_POST
@login_required
def turbo(request, pk, sid):
    def do(subscriber, subscription, data):
        activation = actions.do_activate_turbo(
            subscription, turbo=data["turbo"], acting_user=request.user, reason=data["reason"]
        )
        # No full stop after the time: in English it ends with "p.m." already.
        return _("Turbo “%(name)s” on until %(time)s") % {
            "name": activation.turbo.name,
            "time": _moment(activation.ends_at),
        }

    return _post(
        request,
        pk,
        panel="subscriptions",
        key=f"turbo-{sid}",
        form_class=TurboForm,
        perm=Perm.SUBSCRIPTION_MANAGE,
        do=do,
        sid=sid,
        form_kwargs=lambda subscription: {"offered": selectors.turbos_offered(subscription)},
    )


@require_POST
@login_required
def time_package(request, pk, sid):
    def do(subscriber, subscription, data):
        purchase = actions.do_buy_time_package(
            subscription, package=data["package"], acting_user=request.user, reason=data["reason"]
        )
        return _("Time package “%(name)s” bought, usable until %(time)s") % {
            "name": purchase.package.name,
            "time": _moment(purchase.expires_at),
        }

    return _post(
        request,
        pk,
        panel="subscriptions",
        key=f"time-package-{sid}",
        form_class=TimePackageForm,
        perm=Perm.SUBSCRIPTION_MANAGE,
        do=do,
        sid=sid,
        form_kwargs=lambda subscription: {"offered": time_packages_offered(subscription)},
    )


@require_POST
@login_required
def turbo_end(request, pk, sid):
    def do(subscriber, subscription, data):
        activation = actions.do_end_turbo(subscription, acting_user=request.user, reason=data["reason"])
        return _("Turbo “%(name)s” ended.") % {"name": activation.turbo.name}

    return _post(
        request,
        pk,
        panel="subscriptions",
        key=f"turbo-end-{sid}",
        form_class=TurboEndForm,
        perm=Perm.SUBSCRIPTION_MANAGE,
        do=do,
        sid=sid,
    )


@require_GET
@login_required
def ledger_panel(request, pk):
    """The ledger panel with more lines ("show more"); without HTMX, the card."""
    subscriber = _subscriber(request, pk, Perm.BILLING_VIEW)
    if not request.htmx:
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-ledger")
    panel = PANELS["ledger"]
    context = ledger_context(request, subscriber, limit=request.GET.get("limit"))
    return render(request, panel.template, {"subscriber": subscriber, "panel": panel, **context})


# --- a subscription's charges ----------------------------------------------------------------------------


def _charges_page(request, subscriber, subscription, *, bound=None, status=200):
    can_reverse = request.user.has_perm(Perm.BILLING_REVERSE)
    lines = selectors.charge_lines(subscription)
    for line in lines:
        key = f"reverse-{line.charge.pk}"
        if not (can_reverse and line.reversible):
            line.form = None
        elif bound is not None and bound.auto_id == f"{key}-%s":
            line.form = bound  # the one that was refused, with its errors
        else:
            line.form = console_form(ChargeReversalForm, key)
    context = {"subscriber": subscriber, "subscription": subscription, "lines": lines, "can_reverse": can_reverse}
    return render(request, "billing/charges_page.html", context, status=status)


@require_GET
@login_required
def charges(request, pk, sid):
    """What a subscription was charged and given back; for the admin role, a charge given back from here."""
    subscriber = _subscriber(request, pk, Perm.BILLING_VIEW)
    return _charges_page(request, subscriber, _subscription(subscriber, sid))


@require_POST
@login_required
def reverse_charge(request, pk, sid, cid):
    subscriber = _subscriber(request, pk, Perm.BILLING_REVERSE)
    subscription = _subscription(subscriber, sid)
    charge = get_object_or_404(Charge, pk=cid, subscription=subscription)
    form = console_form(ChargeReversalForm, f"reverse-{cid}", request.POST)
    if form.is_valid():
        data = form.cleaned_data
        last_day = data["last_day"]
        try:
            reversal = actions.do_reverse_charge(
                charge,
                reason=data["reason"],
                acting_user=request.user,
                first_day=data["first_day"],
                until=last_day + dt.timedelta(days=1) if last_day else None,
            )
        except ValidationError as exc:
            apply_action_errors(form, exc, {"until": "last_day"})
        else:
            messages.success(request, _("%(amount)s given back.") % {"amount": format_money(-reversal.amount)})
            return redirect("billing:charges", pk=subscriber.pk, sid=subscription.pk)
    return _charges_page(request, subscriber, subscription, bound=form, status=422)


# --- individual price (billing/pricing) ------------------------------------------------------------------


@require_POST
@login_required
def price_override(request, pk, sid):
    from .pricing.actions import do_set_price_override
    from .pricing.forms import PriceOverrideForm

    def do(subscriber, subscription, data):
        do_set_price_override(
            subscription=subscription,
            plan=subscription.plan,
            monthly_fee=data["monthly_fee"],
            daily_fee=data["daily_fee"],
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
            reason=data["reason"],
            acting_user=request.user,
        )
        return _("Individual price of %(amount)s from %(date)s.") % {
            "amount": format_money(data["monthly_fee"]),
            "date": _day(data["valid_from"]),
        }

    return _post(
        request,
        pk,
        panel="subscriptions",
        key=f"price-{sid}",
        form_class=PriceOverrideForm,
        perm=Perm.PRICING_MANAGE,
        do=do,
        sid=sid,
    )


@require_POST
@login_required
def price_override_end(request, pk, sid):
    from .pricing.actions import do_end_price_override
    from .pricing.forms import EndPriceForm
    from .pricing.models import PriceOverride
    from .pricing.selectors import in_force

    def do(subscriber, subscription, data):
        own = in_force(PriceOverride.objects.filter(subscription=subscription, plan_id=subscription.plan_id))
        if not own:
            raise ValidationError(_("No individual price is in force."), code="no_price_override")
        do_end_price_override(own[0], valid_until=data["valid_until"], acting_user=request.user, reason=data["reason"])
        return _("The individual price ends on %(date)s.") % {"date": _day(data["valid_until"])}

    return _post(
        request,
        pk,
        panel="subscriptions",
        key=f"price-end-{sid}",
        form_class=EndPriceForm,
        perm=Perm.PRICING_MANAGE,
        do=do,
        sid=sid,
    )
