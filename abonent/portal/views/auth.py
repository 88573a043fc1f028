"""Signing in to the portal and out of it: by password; the first login and a forgotten password by a one-time
code (who you are → where to send the code → the code and a new password); the security page (change the
password, the live sessions, end one, log out everywhere).

Every successful sign-in opens a new session with a new cookie: a cookie the browser brought along (a planted one,
or an earlier session) is never carried into the new sign-in. ``next`` leads only to a page of the portal.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from .. import actions, codes, sessions
from ..access import own
from ..auth_data import safe_next, session_rows
from ..errors import AuthRefused
from ..forms.auth import ChangePasswordForm, CodeChannelForm, CodeLoginForm, LoginForm, ResetForm
from ..middleware import public
from ..models import PortalAccount, PortalSession


def _next(request) -> str:
    return safe_next(request.POST.get("next") or request.GET.get("next"))


def _refused(form, exc: AuthRefused, field: str | None = None) -> int:
    """Put the refusal on the form; the page's status (429 for a lock-out, else 422)."""
    for problem in exc.fields or [{"field": field, "message": exc.message}]:
        name = problem.get("field")
        form.add_error(name if name in form.fields else None, problem["message"])
    return exc.status


def _signed_in(request, signed, target: str):
    """Answer a sign-in: the new session's cookie, the one the browser had ended (rotation)."""
    previous = getattr(request, "portal_session", None)
    if previous is not None and previous.pk != signed.session.pk:
        sessions.revoke_session(previous)
    response = redirect(target)
    sessions.set_cookie(response, signed.secret)
    return response


@public
@never_cache
@csrf_protect
def login(request):
    if request.subscriber is not None and request.method == "GET":
        return redirect(_next(request))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            signed = actions.do_log_in(
                request, login=form.cleaned_data["login"], password=form.cleaned_data["password"]
            )
        except AuthRefused as exc:
            status = _refused(form, exc)
        else:
            return _signed_in(request, signed, _next(request))
    elif request.method == "POST":
        status = 422
    return render(request, "portal/login.html", {"form": form, "next": _next(request)}, status=status)


@require_POST
@csrf_protect
def logout(request):
    actions.do_log_out(request.portal_session)
    response = redirect("portal:login")
    sessions.clear_cookie(response)
    messages.info(request, _("You have logged out."))
    return response


# --- a one-time code: who → where → the code and a new password -------------------------------------------------


@public
@never_cache
@csrf_protect
def code_login(request):
    """Step 1: who you are. The answer (step 2) lists both channels for every login, real or not."""
    form = CodeLoginForm(request.POST or None, initial={"login": request.GET.get("login", "")[:100]})
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            destinations = actions.code_destinations(request, login=form.cleaned_data["login"])
        except AuthRefused as exc:
            status = _refused(form, exc, "login" if exc.code == "ambiguous_login" else None)
        else:
            context = {
                "form": CodeChannelForm(initial={"login": form.cleaned_data["login"], "channel": "sms"}),
                "destinations": destinations,
                "next": _next(request),
            }
            return render(request, "portal/code_channel.html", context)
    elif request.method == "POST":
        status = 422
    return render(request, "portal/code.html", {"form": form, "next": _next(request)}, status=status)


@public
@never_cache
@csrf_protect
def code_send(request):
    """Step 2 → 3: send the code; the same page follows for every login ("if the account exists…")."""
    if request.method != "POST":
        return redirect("portal:code")
    form = CodeChannelForm(request.POST)
    if not form.is_valid():
        return redirect("portal:code")
    login_text, channel = form.cleaned_data["login"], form.cleaned_data["channel"]
    try:
        actions.do_request_code(request, login=login_text, channel=channel)
    except AuthRefused as exc:
        back = CodeLoginForm({"login": login_text})
        back.is_valid()
        back.add_error(None, exc.message)
        return render(request, "portal/code.html", {"form": back, "next": _next(request)}, status=exc.status)
    context = {"form": ResetForm(initial={"login": login_text}), "channel": channel, "next": _next(request)}
    return render(request, "portal/code_enter.html", {**context, **_code_facts()})


def _code_facts() -> dict:
    return {"minutes": codes.code_minutes(), "resend_seconds": settings.ABONENT_PORTAL_CODE_RESEND_SECONDS}


@public
@never_cache
@csrf_protect
def code_enter(request):
    """Step 3: the code and the new password; signed in on success, every other session ended."""
    if request.method != "POST":
        return redirect("portal:code")
    form = ResetForm(request.POST)
    status = 422
    if form.is_valid():
        try:
            signed = actions.do_reset_password(
                request,
                login=form.cleaned_data["login"],
                code=form.cleaned_data["code"],
                new_password=form.cleaned_data["new_password"],
            )
        except AuthRefused as exc:
            status = _refused(form, exc, "code" if exc.code.startswith("code") else None)
        else:
            messages.success(request, _("Your password is set. You are signed in."))
            return _signed_in(request, signed, _next(request))
    context = {"form": form, "channel": request.POST.get("channel", ""), "next": _next(request), **_code_facts()}
    return render(request, "portal/code_enter.html", context, status=status)


# --- the security page ----------------------------------------------------------------------------------------------


def _security_context(request, form=None) -> dict:
    subscriber = request.subscriber
    account = PortalAccount.objects.filter(subscriber_id=subscriber.pk).first()
    return {
        "form": form or ChangePasswordForm(),
        "account": account,
        "rows": session_rows(subscriber.pk, request.portal_session),
    }


@never_cache
def security(request):
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET"])
    return render(request, "portal/security.html", _security_context(request))


@require_POST
@csrf_protect
def change_password(request):
    form = ChangePasswordForm(request.POST)
    status = 422
    if form.is_valid():
        try:
            actions.do_change_password(
                request.portal_session,
                current_password=form.cleaned_data["current_password"],
                new_password=form.cleaned_data["new_password"],
            )
        except AuthRefused as exc:
            field = "current_password" if exc.code == "password_wrong" else None
            status = _refused(form, exc, field)
        else:
            messages.success(request, _("Password changed. Your other sessions have ended."))
            return redirect("portal:security")
    return render(request, "portal/security.html", _security_context(request, form), status=status)


@csrf_protect
def end_session(request, pk: int):
    # The session is looked up first, whatever the method: another subscriber's id is a 404, never a 405.
    session = own(PortalSession.objects.filter(revoked_at__isnull=True), request, pk=pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    actions.do_end_session(session)
    if session.pk == request.portal_session.pk:
        response = redirect("portal:login")
        sessions.clear_cookie(response)
        return response
    messages.success(request, _("The session has ended."))
    return redirect("portal:security")


@require_POST
@csrf_protect
def logout_everywhere(request):
    actions.do_log_out_everywhere(request.subscriber)
    response = redirect("portal:login")
    sessions.clear_cookie(response)
    messages.info(request, _("You have logged out on every device."))
    return response


urlpatterns = [
    path("login/", login, name="login"),
    path("login/code/", code_login, name="code"),
    path("login/code/send/", code_send, name="code_send"),
    path("login/code/enter/", code_enter, name="code_enter"),
    path("logout/", logout, name="logout"),
    path("security/", security, name="security"),
    path("security/password/", change_password, name="change_password"),
    path("security/sessions/<int:pk>/end/", end_session, name="end_session"),
    path("security/logout-everywhere/", logout_everywhere, name="logout_everywhere"),
]
