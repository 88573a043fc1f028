"""The console's bonuses: the rules page, and the card panel's spend and referrer forms."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, has_perm, require_perm
from abonent.subscribers.panels import render_panel
from abonent.subscribers.selectors import get_subscriber

from . import actions, selectors
from .forms import ReferrerForm, RulesForm, SpendForm
from .panels import PANEL


@require_perm(Perm.BONUS_VIEW)
def rules(request):
    can_manage = has_perm(request.user, Perm.BONUS_MANAGE)
    current = selectors.rules()
    initial = {name: getattr(current, name) for name in actions.RULE_FIELDS}
    form = RulesForm(request.POST if request.method == "POST" else None, initial=initial)
    status = 200
    if request.method == "POST":
        if not can_manage:
            return HttpResponse(status=403)
        status = 422
        if form.is_valid():
            try:
                actions.do_update_rules(acting_user=request.user, **form.cleaned_data)
            except ValidationError as exc:
                apply_action_errors(form, exc)
            else:
                messages.success(request, _("Bonus rules saved."))
                return redirect("bonuses:rules")
    return render(request, "bonuses/rules.html", {"form": form, "can_manage": can_manage}, status=status)


def _panel(request, subscriber, form, ok_message, status_ok=200, **overrides):
    if not request.htmx:
        if form is not None and form.errors:
            messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        elif ok_message:
            messages.success(request, ok_message)
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-bonuses")
    status = 422 if form is not None and form.errors else status_ok
    return HttpResponse(render_panel(request, subscriber, PANEL, **overrides), status=status)


@require_POST
@require_perm(Perm.BONUS_MANAGE)
def spend(request, pk: int):
    subscriber = get_subscriber(request.user, pk)
    form = SpendForm(request.POST, auto_id="bonus-%s")
    if form.is_valid():
        try:
            actions.do_spend_points(
                subscriber, points=form.cleaned_data["points"], key=f"staff:{form.cleaned_data['key']}",
                acting_user=request.user,
            )  # fmt: skip
        except ValidationError as exc:
            apply_action_errors(form, exc)
    failed = bool(form.errors)
    return _panel(request, subscriber, form, _("Points spent."), **({"form": form} if failed else {}))


@require_POST
@require_perm(Perm.BONUS_MANAGE)
def referrer(request, pk: int):
    subscriber = get_subscriber(request.user, pk)
    form = ReferrerForm(request.POST, auto_id="referrer-%s")
    if form.is_valid():
        try:
            actions.do_set_referrer(subscriber, referrer_ref=form.cleaned_data["referrer"], acting_user=request.user)
        except ValidationError as exc:
            apply_action_errors(form, exc)
    failed = bool(form.errors)
    return _panel(request, subscriber, form, _("Referrer recorded."), **({"referrer_form": form} if failed else {}))


urlpatterns = [
    path("", rules, name="rules"),
    path("spend/<int:pk>/", spend, name="spend"),
    path("referrer/<int:pk>/", referrer, name="referrer"),
]
