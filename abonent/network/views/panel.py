"""The forms of the subscriber card's network panel: add a login, disconnect a session."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, require_perm
from abonent.subscribers.selectors import get_subscriber

from .. import actions
from ..forms import LoginActiveForm, LoginForm, LoginPasswordForm
from ..models import Login, Session
from ..panels import render_network_panel
from ..policy import PASSWORD_KINDS
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


def _login_of(subscriber, login_pk: int) -> Login:
    return get_object_or_404(Login.objects.select_related("pool"), pk=login_pk, subscriber_id=subscriber.pk)


@require_POST
@require_perm(Perm.NETWORK_MANAGE)
def login_password(request, pk, login_pk):
    """Reset a login's password (typed, or generated); the panel shows it once, the audit row never does."""
    subscriber = get_subscriber(request.user, pk)
    login = _login_of(subscriber, login_pk)
    form = LoginPasswordForm(request.POST, auto_id=f"password-{login.pk}-%s")
    if login.kind not in PASSWORD_KINDS:  # the panel offers no form for it: say why above the logins
        message = _("Only a PPPoE or hotspot login has a password: IPoE logins are the device's address.")
        return _panel_response(request, subscriber, error=message)
    if form.is_valid():
        try:
            login, password = actions.do_reset_login_password(login, acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            shown = {"login": login, "password": password}
            if not request.htmx:  # a page of its own: the password is never put in a message (a cookie)
                return render(request, "network/password_shown.html", {"subscriber": subscriber, **shown})
            html = render_network_panel(request, subscriber, new_password=shown)
            return HttpResponse(html)
    if not request.htmx:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-network")
    return HttpResponse(render_network_panel(request, subscriber, bound={login.pk: form}), status=422)


@require_POST
@require_perm(Perm.NETWORK_MANAGE)
def login_active(request, pk, login_pk):
    """Disable a login (its sessions are disconnected, RADIUS rejects it) or enable it again."""
    subscriber = get_subscriber(request.user, pk)
    login = _login_of(subscriber, login_pk)
    form = LoginActiveForm(request.POST)
    if not form.is_valid():
        return _panel_response(request, subscriber, error=" ".join(e for errs in form.errors.values() for e in errs))
    login = actions.do_set_login_active(
        login, active=form.cleaned_data["active"], acting_user=request.user, reason=form.cleaned_data["reason"]
    )
    if login.is_active:
        notice = _("Login %(login)s enabled.") % {"login": login.username}
    else:
        notice = _("Login %(login)s disabled: RADIUS rejects it, its sessions are disconnected.") % {
            "login": login.username
        }
    return _panel_response(request, subscriber, notice=notice)
