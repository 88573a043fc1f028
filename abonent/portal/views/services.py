"""``/my/services/``: freeze, promised payment and turbo. Each shows its terms and amounts first and is confirmed
only as shown (``services_data``); a refusal says why in billing's words."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from abonent.billing import actions as billing
from abonent.core.forms import apply_action_errors
from abonent.core.money import format_money

from .. import services_data
from ..access import own
from ..busy import page_busy_is_503
from ..forms.plans import (
    FreezeConfirmForm,
    FreezeDaysForm,
    PromisedPaymentForm,
    TurboConfirmForm,
    UnfreezeConfirmForm,
)
from ..plans_data import PreviewChanged, subscriptions
from .plans import refusal


def _day(value) -> str:
    return date_format(value, "SHORT_DATE_FORMAT")  # as ``plans._day``


def _services_page(request, *, promised_form=None, unfrozen=None, changed: str = "", status=200):
    """The services page. ``unfrozen`` replaces one subscription's unfreeze preview with the amounts an
    unfreeze just measured (shown again when they were not the ones the page had shown)."""
    page = services_data.services_of(request.subscriber)
    for offer in page.freezes:
        initial = {"days": offer.policy.min_days} if offer.policy else {}
        offer.days_form = FreezeDaysForm(auto_id=f"freeze-{offer.subscription.pk}-%s", initial=initial)
        if unfrozen is not None and offer.subscription.pk == unfrozen.subscription_id:
            offer.unfreeze = unfrozen
        if offer.unfreeze is not None:
            offer.unfreeze_form = UnfreezeConfirmForm.of(offer.unfreeze)
    if promised_form is None and page.promised.policy is not None:
        policy = page.promised.policy
        promised_form = PromisedPaymentForm(initial={"fee": policy.fee, "days": policy.days})
    context = {"page": page, "promised_form": promised_form, "changed": changed}
    return render(request, "portal/services.html", context, status=status)


@require_GET
def services(request):
    return _services_page(request)


# --- freeze -----------------------------------------------------------------------------------------------


def _freeze_page(request, subscription, *, days_form, preview=None, error="", changed=False, status=200):
    context = {
        "subscription": subscription,
        "policy": subscription.plan.freeze_policy,
        "offer": services_data.freeze_offer(subscription),
        "days_form": days_form,
        "preview": preview,
        "form": FreezeConfirmForm.of(preview) if preview else None,
        "error": error,
        "changed": changed,
    }
    return render(request, "portal/freeze.html", context, status=status)


@require_http_methods(["GET", "POST"])
@page_busy_is_503
def freeze(request, sid):
    """GET ``?days=``: the freeze's fee, the part of the period given back, the balance after. POST: freeze, if
    it still costs what the page showed."""
    subscription = own(subscriptions(request), request, pk=sid)
    if request.method == "POST":
        form = FreezeConfirmForm(request.POST)
        days_form = FreezeDaysForm({"days": request.POST.get("days", "")})
        if form.is_valid():
            try:
                done = services_data.freeze_as_seen(subscription, form.cleaned_data["days"], form.seen())
            except PreviewChanged as exc:
                return _freeze_page(
                    request, subscription, days_form=days_form, preview=exc.fresh, changed=True, status=409
                )
            except ValidationError as exc:
                if getattr(exc, "code", None) == "subscription_not_active":  # a second click: frozen already
                    messages.info(request, refusal(exc))
                    return redirect("portal:services")
                return _freeze_page(request, subscription, days_form=days_form, error=refusal(exc), status=422)
            messages.success(
                request,
                _("Frozen until %(date)s inclusive. Service and fees resume on %(resume)s.")
                % {"date": _day(done.last_day), "resume": _day(done.ends_on)},
            )
            return redirect("portal:services")
    else:
        days_form = FreezeDaysForm(request.GET)
    if not days_form.is_valid():
        return _freeze_page(request, subscription, days_form=days_form, status=422)
    try:
        preview = services_data.freeze_preview(subscription, days_form.cleaned_data["days"])
    except ValidationError as exc:
        apply_action_errors(days_form, exc)
        return _freeze_page(request, subscription, days_form=days_form, status=422)
    posted = request.method == "POST"  # a confirmation that did not parse: the amounts shown again
    return _freeze_page(
        request, subscription, days_form=days_form, preview=preview, changed=posted, status=409 if posted else 200
    )


@require_POST
@page_busy_is_503
def unfreeze(request, sid):
    """End the freeze now, if it gives back and charges what the page showed."""
    subscription = own(subscriptions(request), request, pk=sid)
    form = UnfreezeConfirmForm(request.POST)
    if not form.is_valid():
        return _services_page(request, changed=_("Look at the amounts again and confirm."), status=409)
    try:
        done = services_data.unfreeze_as_seen(subscription, form.seen())
    except PreviewChanged as exc:
        changed = _("The amounts have changed since the page was shown; nothing was charged. Look at them again.")
        return _services_page(request, unfrozen=exc.fresh, changed=changed, status=409)
    except ValidationError as exc:
        messages.info(request, refusal(exc))  # a second click: already unfrozen
        return redirect("portal:services")
    messages.success(
        request, _("Unfrozen: service is back. Balance: %(balance)s.") % {"balance": format_money(done.balance_after)}
    )
    return redirect("portal:services")


# --- promised payment -------------------------------------------------------------------------------------


@require_POST
@page_busy_is_503
def promised(request):
    form = PromisedPaymentForm(request.POST)
    if form.is_valid():
        try:
            taken = services_data.take_promised_as_seen(request.subscriber, form.cleaned_data["amount"], form.seen())
        except PreviewChanged:
            changed = _("The terms have changed since the page was shown; nothing was taken. Look at them again.")
            return _services_page(request, changed=changed, status=409)
        except ValidationError as exc:
            if getattr(exc, "code", None) == "promised_already_open":  # a second click of the one taken
                messages.info(request, refusal(exc))
                return redirect("portal:services")
            apply_action_errors(form, exc)
        else:
            messages.success(
                request,
                _("Promised payment of %(amount)s until %(date)s inclusive. Your next payment repays it.")
                % {"amount": format_money(taken.amount), "date": _day(taken.due_on)},
            )
            return redirect("portal:services")
    return _services_page(request, promised_form=form, status=422)


# --- turbo ------------------------------------------------------------------------------------------------


def _turbo_page(request, subscription, turbo, *, preview=None, error="", changed=False, status=200):
    context = {
        "subscription": subscription,
        "turbo": turbo,
        "speed": services_data.TurboCard(turbo).speed,
        "preview": preview,
        "form": TurboConfirmForm.of(preview) if preview else None,
        "error": error,
        "changed": changed,
    }
    return render(request, "portal/turbo.html", context, status=status)


@require_http_methods(["GET", "POST"])
@page_busy_is_503
def turbo(request, sid, turbo_id):
    """GET: the turbo's price, speed and end, and the balance after. POST: buy it, at the price shown."""
    subscription = own(subscriptions(request), request, pk=sid)
    option = services_data.offered_turbo(subscription, turbo_id)
    if option is None:
        return render(request, "portal/turbo.html", {"subscription": subscription, "not_offered": True}, status=404)
    if request.method == "POST":
        form = TurboConfirmForm(request.POST)
        if form.is_valid():
            try:
                activation = services_data.buy_turbo_as_seen(subscription, option, form.seen())
            except PreviewChanged:
                return _turbo_again(request, subscription, option)
            except ValidationError as exc:
                if getattr(exc, "code", None) == "turbo_already_on":  # a second click of the one that went through
                    messages.info(request, refusal(exc))
                    return redirect("portal:services")
                return _turbo_page(request, subscription, option, error=refusal(exc), status=422)
            messages.success(
                request,
                _("Turbo “%(name)s” is on until %(time)s")
                % {
                    "name": option.name,
                    "time": date_format(timezone.localtime(activation.ends_at), "SHORT_DATETIME_FORMAT"),
                },
            )
            return redirect("portal:services")
        return _turbo_again(request, subscription, option)
    try:
        preview = services_data.turbo_preview(subscription, option)
    except ValidationError as exc:
        return _turbo_page(request, subscription, option, error=refusal(exc), status=422)
    return _turbo_page(request, subscription, option, preview=preview)


def _turbo_again(request, subscription, option):
    """The price was not the one shown (or the form did not parse): the preview again, nothing bought."""
    try:
        preview = services_data.turbo_preview(subscription, option)
    except ValidationError as exc:
        return _turbo_page(request, subscription, option, error=refusal(exc), status=422)
    return _turbo_page(request, subscription, option, preview=preview, changed=True, status=409)


@require_POST
@page_busy_is_503
def turbo_end(request, sid):
    """End the turbo before its time; the plan's speed comes back and nothing is refunded (the page says so)."""
    subscription = own(subscriptions(request), request, pk=sid)
    try:
        activation = billing.do_end_turbo(subscription, acting_user=None)
    except ValidationError as exc:
        messages.info(request, refusal(exc))  # already ended (a second click, or it ran out)
    else:
        messages.success(request, _("Turbo “%(name)s” ended.") % {"name": activation.turbo.name})
    return redirect("portal:services")


urlpatterns = [
    path("services/", services, name="services"),
    path("services/<int:sid>/freeze/", freeze, name="services_freeze"),
    path("services/<int:sid>/unfreeze/", unfreeze, name="services_unfreeze"),
    path("services/promised/", promised, name="services_promised"),
    path("services/<int:sid>/turbo/<int:turbo_id>/", turbo, name="services_turbo"),
    path("services/<int:sid>/turbo/end/", turbo_end, name="services_turbo_end"),
]
