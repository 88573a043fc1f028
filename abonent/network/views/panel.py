"""The forms of the subscriber card's network panel: add a login, disconnect a session."""

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
from abonent.subscribers.selectors import get_subscriber

from .. import actions
from ..forms import LoginForm
from ..models import Session
from ..panels import render_network_panel
from .sessions import queued_message


def _panel_response(request, subscriber, *, form=None, notice: str = "", error: str = ""):
    """The re-rendered panel (422 when the action refused); without HTMX, back to the card with a message."""
    failed = bool(error) or (form is not None and bool(form.errors))
    if not request.htmx:
        if failed:
            text = error or " ".join(str(e) for errors in form.errors.values() for e in errors)
            messages.error(request, text)
        elif notice:
            messages.success(request, notice)
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-network")
    html = render_network_panel(request, subscriber, form=form if failed else None, notice=notice, error=error)
    return HttpResponse(html, status=422 if failed else 200)


@require_POST
@require_perm(Perm.NETWORK_MANAGE)
def login_add(request, pk):
    subscriber = get_subscriber(request.user, pk)
    form = LoginForm(request.POST, auto_id="login-%s")
    notice = ""
    if form.is_valid():
        try:
            login = actions.do_create_login(subscriber, acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            notice = _("Login %(login)s added.") % {"login": login.username}
    return _panel_response(request, subscriber, form=form, notice=notice)


@require_POST
@require_perm(Perm.NETWORK_MANAGE)
def session_disconnect(request, pk, session_pk):
    subscriber = get_subscriber(request.user, pk)
    session = get_object_or_404(Session.objects.select_related("nas"), pk=session_pk, subscriber_id=subscriber.pk)
    try:
        coa = actions.do_disconnect_session(
            session, acting_user=request.user, reason=request.POST.get("reason", "")[:500]
        )
    except ValidationError as exc:
        return _panel_response(request, subscriber, error=" ".join(exc.messages))
    return _panel_response(request, subscriber, notice=queued_message(coa.kind, session))
