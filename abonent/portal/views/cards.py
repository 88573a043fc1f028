"""Prepaid cards in the portal: Pay's "Prepaid card" tab (a top-up card's code credited to the signed-in
subscriber) and the public Wi-Fi page ``/my/wifi/`` that the hotspot's walled garden lets through (a Wi-Fi card's
code opens a hotspot login). Both count attempts before looking a code up (``vouchers.throttle``): neither runs
inside a transaction, so the view is not wrapped by ``page_busy_is_503``; the activation has its own deadline."""

from __future__ import annotations

import logging

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from abonent.core.deadlines import is_deadline
from abonent.core.forms import apply_action_errors
from abonent.vouchers import actions, selectors, wifi
from abonent.vouchers.throttle import TooManyAttempts

from ..forms.pay import PortalForm
from ..lockout import ip_of
from ..middleware import public

logger = logging.getLogger(__name__)


class CardCodeForm(PortalForm):
    code = forms.CharField(
        label=gettext_lazy("Card code"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
    )


def _try(form, run):
    """Run an activation; its refusals become the form's errors. Returns the result or None. A refusal about the
    code goes under the field; any other (the plan, the branch, a login: nothing the buyer typed) is shown above
    the form as "cannot be activated right now, ask the seller", its cause logged for the operator."""
    try:
        return run()
    except ValidationError as exc:
        if hasattr(exc, "error_dict") and set(exc.error_dict) <= {"code"}:
            apply_action_errors(form, exc)
        else:
            logger.warning("prepaid card refused not for its code: %s", exc.messages)
            form.add_error(None, wifi.cannot_open("unavailable"))
    except TooManyAttempts as exc:
        form.add_error("code", _("Too many wrong codes. Try again in %(minutes)s min.") % {"minutes": exc.minutes})
    except OperationalError as exc:
        if not is_deadline(exc):
            raise
        form.add_error("code", _("Your account is busy with another operation right now; nothing was done. Try again."))
    return None


def pay_card(request):
    subscriber = request.subscriber
    form = CardCodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            result = _try(
                form,
                lambda: actions.activate(
                    subscriber, code=form.cleaned_data["code"], acting_user=None, client_ip=ip_of(request)
                ),
            )
            if result is not None:
                messages.success(
                    request,
                    _("The card %(serial)s is activated: %(amount)s credited to your account.")
                    % {"serial": result.voucher.serial, "amount": result.amount},
                )
                return redirect("portal:pay_card")
    return render(
        request,
        "portal/pay_card.html",
        {"form": form, "activations": selectors.activations_of(subscriber.pk, limit=10)},
        status=status,
    )


@public
@never_cache
@csrf_protect
def wifi_card(request):
    form = CardCodeForm(request.POST or None)
    access, status = None, 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            access = _try(form, lambda: wifi.activate_wifi(code=form.cleaned_data["code"], client_ip=ip_of(request)))
            if access is not None:
                status = 200
    response = render(request, "portal/wifi.html", {"form": form, "access": access}, status=status)
    response["Cache-Control"] = "no-store"  # the login and password in clear
    return response


urlpatterns = [
    path("pay/card/", pay_card, name="pay_card"),
    path("wifi/", wifi_card, name="wifi"),
]
