"""The "Access" panel's forms on the subscriber card: block, unblock, terminate, reinstate, exempt, revoke.

With HTMX a refusal re-renders the panel with its errors (422); a success reloads the card, whose header badge
shows the new state too. Without HTMX every answer is a redirect back to the card with a message."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, require_perm
from abonent.subscribers.panels import panels_for, render_panel
from abonent.subscribers.selectors import get_subscriber

from .. import actions
from ..forms import ReasonForm, SubscriberExemptionForm
from ..models import Exemption


def _card_url(subscriber) -> str:
    return reverse("subscribers:card", args=[subscriber.pk]) + "#panel-access"


def _answer(request, subscriber, *, done: str | None, forms: dict | None = None):
    if done is not None:
        messages.success(request, done)
        if request.htmx:
            return HttpResponse(status=200, headers={"HX-Redirect": _card_url(subscriber)})
        return redirect(_card_url(subscriber))
    forms = forms or {}
    if not request.htmx:
        errors = [
            e for form in forms.values() if hasattr(form, "errors") for errs in form.errors.values() for e in errs
        ]
        messages.error(request, " ".join(str(e) for e in errors) or forms.get("failed", ""))
        return redirect(_card_url(subscriber))
    panel = next(p for p in panels_for(request.user) if p.name == "access")
    return HttpResponse(render_panel(request, subscriber, panel, **forms), status=422)


def _change(request, pk, do, done: str):
    subscriber = get_subscriber(request.user, pk)
    form = ReasonForm(request.POST)
    if form.is_valid():
        try:
            do(subscriber, acting_user=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            apply_action_errors(form, exc)
        except actions.AccessBusy as exc:
            form.add_error(None, str(exc))
        else:
            return _answer(request, subscriber, done=done)
    return _answer(request, subscriber, done=None, forms={"reason_form": form})


@require_POST
@require_perm(Perm.DUNNING_MANAGE)
def block(request, pk):
    return _change(request, pk, actions.do_block_access, _("Access blocked."))


@require_POST
@require_perm(Perm.DUNNING_MANAGE)
def unblock(request, pk):
    return _change(request, pk, actions.do_unblock_access, _("Access unblocked."))


@require_POST
@require_perm(Perm.DUNNING_TERMINATE)
def terminate(request, pk):
    return _change(request, pk, actions.do_terminate_access, _("Access terminated."))


@require_POST
@require_perm(Perm.DUNNING_TERMINATE)
def reinstate(request, pk):
    return _change(request, pk, actions.do_reinstate_access, _("Access reinstated."))


@require_POST
@require_perm(Perm.DUNNING_MANAGE)
def exemption_add(request, pk):
    subscriber = get_subscriber(request.user, pk)
    form = SubscriberExemptionForm(request.POST)
    if form.is_valid():
        try:
            actions.do_create_exemption(subscriber=subscriber, acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        except actions.AccessBusy as exc:
            form.add_error(None, str(exc))
        else:
            return _answer(request, subscriber, done=_("Exempt from blocking."))
    return _answer(request, subscriber, done=None, forms={"exemption_form": form})


@require_POST
@require_perm(Perm.DUNNING_MANAGE)
def exemption_revoke(request, pk, exemption_pk):
    subscriber = get_subscriber(request.user, pk)
    exemption = get_object_or_404(Exemption, pk=exemption_pk, subscriber=subscriber)
    try:
        actions.do_revoke_exemption(exemption, acting_user=request.user, reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        return _answer(request, subscriber, done=None, forms={"failed": " ".join(exc.messages)})
    except actions.AccessBusy as exc:
        return _answer(request, subscriber, done=None, forms={"failed": str(exc)})
    return _answer(request, subscriber, done=_("Exemption revoked."))
