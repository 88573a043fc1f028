import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from . import two_factor
from .actions import LoginLockedOut, do_login
from .forms import CodeForm, EnrolmentCodeForm, LoginForm, PasswordAndCodeForm
from .permissions import PERMISSION_LABELS, roles_with
from .two_factor import CodeCheck


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse(settings.LOGIN_REDIRECT_URL)


def _lockout_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return ngettext(
        "Too many failed attempts. Try again in %(minutes)d minute.",
        "Too many failed attempts. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


def _throttled_message(seconds: int) -> str:
    return ngettext(
        "Too many wrong codes in a row. Try again in %(seconds)d second.",
        "Too many wrong codes in a row. Try again in %(seconds)d seconds.",
        seconds,
    ) % {"seconds": seconds}


@never_cache
@csrf_protect
def login_view(request):
    if request.user.is_authenticated:
        return redirect(_next_url(request))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            user = do_login(request, username=form.cleaned_data["username"], password=form.cleaned_data["password"])
        except LoginLockedOut as exc:
            form.add_error(None, _lockout_message(exc.seconds))
            status = 429
        else:
            if user is not None and user.two_factor_enabled:
                two_factor.start_pending_login(request, user, next_url=_next_url(request))
                return redirect("staff:login_code")
            if user is not None:
                login(request, user)
                return redirect(_next_url(request))
            form.add_error(None, _("Wrong login or password."))
            status = 401
    return render(request, "staff/login.html", {"form": form, "next": _next_url(request)}, status=status)


@never_cache
@csrf_protect
def login_code_view(request):
    """The second step of a login: the code from the authenticator app, or a recovery code."""
    user, pending = two_factor.pending_login(request)
    if user is None:
        if request.user.is_authenticated:
            return redirect(_next_url(request))
        messages.info(request, _("Enter your login and password first."))
        return redirect("staff:login")
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            result = two_factor.do_verify_login_code(request, user=user, code=form.cleaned_data["code"])
        except LoginLockedOut as exc:
            form.add_error(None, _lockout_message(exc.seconds))
            status = 429
        else:
            if result.check is CodeCheck.ACCEPTED:
                two_factor.clear_pending_login(request)
                login(request, user, backend=pending["backend"])
                otp_login(request, result.device)
                if result.used_recovery_code:
                    left = two_factor.recovery_codes_left(user)
                    messages.warning(
                        request,
                        ngettext(
                            "You signed in with a recovery code; %(count)d code is left. Make a new set on the "
                            "two-factor authentication page.",
                            "You signed in with a recovery code; %(count)d codes are left. Make a new set on the "
                            "two-factor authentication page.",
                            left,
                        )
                        % {"count": left},
                    )
                return redirect(pending["next"])
            if result.check is CodeCheck.THROTTLED:
                form.add_error(None, _throttled_message(result.retry_after_seconds))
                status = 429
            else:
                form.add_error("code", _("Wrong code."))
                status = 401
    return render(request, "staff/login_code.html", {"form": form, "username": user.get_username()}, status=status)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("staff:login")


def _status_page(request, *, disable_form=None, codes_form=None, status=200):
    user = request.user
    enabled = user.two_factor_enabled
    context = {
        "enabled": enabled,
        "required": two_factor.two_factor_required(user),
        "codes_left": two_factor.recovery_codes_left(user) if enabled else 0,
        "disable_form": disable_form or PasswordAndCodeForm(prefix="disable"),
        "codes_form": codes_form or PasswordAndCodeForm(prefix="codes"),
    }
    return render(request, "staff/two_factor.html", context, status=status)


@never_cache
@login_required
def two_factor_view(request):
    return _status_page(request)


@never_cache
@login_required
def two_factor_setup_view(request):
    """Enrolment: scan the QR code (or type the secret), confirm with a code, get the recovery codes once."""
    user = request.user
    if user.two_factor_enabled:
        return redirect("staff:two_factor")
    device = two_factor.do_start_two_factor_enrolment(user)
    form = EnrolmentCodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        enrolment = two_factor.do_confirm_two_factor(user, code=form.cleaned_data["code"])
        if enrolment.result.check is CodeCheck.ACCEPTED:
            # This session typed a right code: it counts as verified, like a login with one.
            otp_login(request, enrolment.result.device)
            return _recovery_codes_page(request, enrolment.recovery_codes, next_url=_next_url(request))
        if enrolment.result.check is CodeCheck.THROTTLED:
            form.add_error(None, _throttled_message(enrolment.result.retry_after_seconds))
            status = 429
        else:
            form.add_error("code", _("Wrong code. Check that the clock on your phone is right and try the next one."))
            status = 422
    qr_code = segno.make(device.config_url, error="m")
    context = {
        "form": form,
        "required": two_factor.two_factor_required(user),
        # segno writes the SVG from the URL alone: nothing in it comes from the request.
        "qr_svg": mark_safe(qr_code.svg_inline(scale=5, light="#fff", border=2)),  # noqa: S308
        "secret": two_factor.secret_for_humans(device),
        "next": _next_url(request),
    }
    return render(request, "staff/two_factor_setup.html", context, status=status)


def _recovery_codes_page(request, codes: list[str], *, next_url: str):
    context = {"codes": [two_factor.format_recovery_code(c) for c in codes], "next": next_url}
    return render(request, "staff/recovery_codes.html", context)


def _reauthenticate(request, form) -> int | None:
    """Check the password and code on ``form``; the HTTP status of the refusal (errors put on the form), or None."""
    if not form.is_valid():
        return 422
    try:
        result = two_factor.check_password_and_code(
            request, user=request.user, password=form.cleaned_data["password"], code=form.cleaned_data["code"]
        )
    except LoginLockedOut as exc:
        form.add_error(None, _lockout_message(exc.seconds))
        return 429
    if result.check is CodeCheck.THROTTLED:
        form.add_error(None, _throttled_message(result.retry_after_seconds))
        return 429
    if result.check is CodeCheck.WRONG:
        form.add_error(None, _("Wrong password or code."))
        return 422
    return None


@require_POST
@login_required
def two_factor_disable_view(request):
    """Turn one's own second factor off (a role that requires it is sent to set up a new one)."""
    if not request.user.two_factor_enabled:
        return redirect("staff:two_factor")
    form = PasswordAndCodeForm(request.POST, prefix="disable")
    refused = _reauthenticate(request, form)
    if refused:
        return _status_page(request, disable_form=form, status=refused)
    two_factor.do_reset_two_factor(request.user, acting_user=request.user, reason=str(_("Turned off by the user")))
    messages.success(request, _("Two-factor authentication is off."))
    return redirect("staff:two_factor")


@require_POST
@login_required
def two_factor_recovery_codes_view(request):
    """Replace one's recovery codes with a new set, shown once."""
    if not request.user.two_factor_enabled:
        return redirect("staff:two_factor")
    form = PasswordAndCodeForm(request.POST, prefix="codes")
    refused = _reauthenticate(request, form)
    if refused:
        return _status_page(request, codes_form=form, status=refused)
    codes = two_factor.do_regenerate_recovery_codes(request.user, acting_user=request.user)
    return _recovery_codes_page(request, codes, next_url=reverse("staff:two_factor"))


def admin_login_view(request):
    """The admin site's login address (``/staff/admin/login/``). Someone signed in lands here only when the admin
    refused them (it is for administrators without a branch limit, ``StaffUser.is_staff``): they get the 403 page,
    not the console's login, which sent them straight back to the admin, which sent them here again
    (ERR_TOO_MANY_REDIRECTS, issue 17). Anyone else goes to the console's login, which is rate-limited."""
    if request.user.is_authenticated:
        raise PermissionDenied(_("The administration pages are for administrators without a branch limit."))
    query = request.META.get("QUERY_STRING", "")
    return redirect(reverse("staff:login") + (f"?{query}" if query else ""))


def permission_denied(request, exception=None):
    """The console's 403 page (``handler403``): what was refused, the permission missing and the roles that hold it."""
    permission = getattr(exception, "permission", None)
    context = {
        "message": str(exception) if exception is not None else "",
        "permission": permission,
        "permission_label": PERMISSION_LABELS.get(permission) if permission else None,
        "roles": roles_with(permission) if permission else [],
    }
    return render(request, "403.html", context, status=403)
