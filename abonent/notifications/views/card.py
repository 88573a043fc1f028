"""The card panel's preferences form: posted with HTMX, answered with the panel (422 with the form's errors)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.selectors import get_subscriber

from .. import actions
from ..forms import PreferenceForm
from ..panels import render_panel


@require_POST
@login_required
def preferences(request, pk: int):
    check_perm(request.user, Perm.SUBSCRIBER_EDIT)
    subscriber = get_subscriber(request.user, pk)
    form = PreferenceForm(request.POST, auto_id="prefs-%s")
    notice = ""
    if form.is_valid():
        try:
            actions.do_update_preferences(
                subscriber, actions.PreferenceData(**form.cleaned_data), acting_user=request.user
            )
            notice = _("Preferences saved.")
        except ValidationError as exc:
            apply_action_errors(form, exc)
    failed = bool(form.errors)
    if not request.htmx:
        if failed:
            messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        else:
            messages.success(request, notice)
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-notifications")
    html = render_panel(request, subscriber, form=form if failed else None, notice=notice)
    return HttpResponse(html, status=422 if failed else 200)
