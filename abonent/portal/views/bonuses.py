"""Bonuses in the portal: the points, what expires soon, the history, the referral code, and points spent on
services (a one-time key rendered with the form: submitting it twice spends once)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from abonent.bonuses import actions, selectors
from abonent.core import clock
from abonent.core.forms import MoneyDecimalField, apply_action_errors

from ..busy import page_busy_is_503
from ..forms.pay import PortalForm, new_key


class SpendPointsForm(PortalForm):
    points = MoneyDecimalField(label=gettext_lazy("Points to spend"))
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)


@page_busy_is_503
def bonuses(request):
    subscriber = request.subscriber
    form = SpendPointsForm(request.POST or None, initial={"key": new_key()})
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                entry = actions.do_spend_points(
                    subscriber, points=form.cleaned_data["points"],
                    key=f"my:{subscriber.pk}:{form.cleaned_data['key']}", acting_user=None,
                )  # fmt: skip
            except ValidationError as exc:
                apply_action_errors(form, exc)
            else:
                messages.success(
                    request, _("%(points)s points spent: the money is on your account.") % {"points": -entry.points}
                )
                return redirect("portal:bonuses")
    context = {
        "form": form,
        "points": selectors.spendable_of(subscriber.pk, clock.today()),
        "expiring": selectors.expiring_soon(subscriber.pk, clock.today()),
        "entries": selectors.history_of(subscriber.pk),
        "referral_code": actions.ensure_referral_code(subscriber.pk),
        "rules": selectors.rules(),
    }
    return render(request, "portal/bonuses.html", context, status=status)


urlpatterns = [path("bonuses/", bonuses, name="bonuses")]
