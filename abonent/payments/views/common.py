"""What the payments views share: a one-time form run once, a safe "back to" address."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from abonent.core.forms import apply_action_errors

from .. import actions


def back_to(request, default: str) -> str:
    """The ``next`` the form names when it is an address of this site, else ``default``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return default


def run_once(request, form, *, kind: str, payment, do, back: str):
    """Run ``do(cleaned_data) -> notice`` once per the form's token, in one transaction with the token's record.

    Returns a redirect to ``back`` after success (or after a repeated send), or None when the form or the action
    refused: the caller renders the form with its errors (422).
    """
    if not form.is_valid():
        return None
    try:
        with transaction.atomic():
            actions.do_record_submission(
                form.cleaned_data["token"], kind=kind, acting_user=request.user, payment=payment
            )
            notice = do(form.cleaned_data)
    except actions.AlreadySubmitted:
        messages.info(request, _("This form was sent already; what it asked for was done once."))
        return redirect(back)
    except ValidationError as exc:
        apply_action_errors(form, exc)
        return None
    messages.success(request, notice)
    return redirect(back)
