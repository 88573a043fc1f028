"""Autopay on the subscriber card: the settings, turning it off, unlinking a saved method. Each posts from the
autopay panel and re-renders it (422 with the form's errors when the action refused)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.billing.forms import console_form
from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.selectors import get_subscriber

from .. import actions
from ..forms import AutopayForm, UnlinkForm
from ..models import AutopayPlan
from ..panels import render_autopay_panel
from ..selectors import autopay as selectors


def _subscriber(request, pk: int):
    # Permission first (403), then visibility (404 for a subscriber of another branch), as the card does.
    check_perm(request.user, Perm.SUBSCRIPTION_MANAGE)
    return get_subscriber(request.user, pk)


def _respond(request, subscriber, *, form, key: str, notice: str):
    failed = bool(form.errors)
    if not request.htmx:
        if failed:
            messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        elif notice:
            messages.success(request, notice)
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-autopay")
    if failed:
        return HttpResponse(render_autopay_panel(request, subscriber, bound={key: form}), status=422)
    return HttpResponse(render_autopay_panel(request, subscriber, notice=notice))


def _post(request, pk: int, *, key: str, form_class, do, form_kwargs=None):
    subscriber = _subscriber(request, pk)
    form = console_form(form_class, key, request.POST, **(form_kwargs(subscriber) if form_kwargs else {}))
    notice = ""
    if form.is_valid():
        try:
            notice = do(subscriber, form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
    return _respond(request, subscriber, form=form, key=key, notice=notice)


@require_POST
@login_required
def autopay(request, pk):
    def do(subscriber, data):
        # An empty "at least" keeps the plan's own (set in the portal or the API), not the system default.
        min_amount = data.get("min_amount")
        if min_amount is None:
            min_amount = AutopayPlan.objects.filter(subscriber=subscriber).values_list("min_amount", flat=True).first()
        actions.do_enable_autopay(
            subscriber,
            method=data["method"],
            mode=data["mode"],
            debit_day=data["debit_day"],
            amount_mode=data["amount_mode"],
            fixed_amount=data["fixed_amount"],
            min_amount=min_amount,
            max_amount=data["max_amount"],
            acting_user=request.user,
        )
        return _("Autopay saved.")

    return _post(
        request,
        pk,
        key="autopay",
        form_class=AutopayForm,
        do=do,
        form_kwargs=lambda s: {"methods": selectors.methods_of(s, active_only=True)},
    )


@require_POST
@login_required
def autopay_off(request, pk):
    def do(subscriber, data):
        actions.do_disable_autopay(subscriber, acting_user=request.user, reason=data["reason"])
        return _("Autopay turned off.")

    return _post(request, pk, key="autopay-off", form_class=UnlinkForm, do=do)


@require_POST
@login_required
def unlink_method(request, pk, mid):
    subscriber = _subscriber(request, pk)
    method = get_object_or_404(selectors.methods_of(subscriber), pk=mid)

    def do(_subscriber, data):
        actions.do_unlink_method_and_stop_autopay(method, acting_user=request.user, reason=data["reason"])
        return _("Payment method unlinked.")

    return _post(request, pk, key=f"unlink-{mid}", form_class=UnlinkForm, do=do)
