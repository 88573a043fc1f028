"""What the payments views share: a one-time form run once, a safe "back to" address, the answer to a database
that is busy past the deadline."""

from __future__ import annotations

import functools
import logging

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from abonent.core.deadlines import is_deadline
from abonent.core.forms import apply_action_errors

from .. import actions

logger = logging.getLogger(__name__)


def answers_busy(view):
    """A view whose database work ran past its deadline (a lock held by a statement import or the billing run:
    ``lock_timeout``/``statement_timeout``, ``core.deadlines``) answers a page saying nothing was done and to try
    again, with 503 and ``Retry-After``, not a 500: the cashier holding the payer's cash must know it was not
    taken. Everything was rolled back (the actions write in one transaction)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except OperationalError as exc:
            if not is_deadline(exc):
                raise
            logger.warning("%s %s: the database was busy past the deadline", request.method, request.path)
            response = render(request, "payments/busy.html", {"back": back_to(request, request.path)}, status=503)
            response["Retry-After"] = "5"
            return response

    return wrapper


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
