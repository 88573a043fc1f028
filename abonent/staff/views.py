from django.contrib.auth import login, logout
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from .actions import LoginLockedOut, do_login
from .forms import LoginForm


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/staff/subscribers/"


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
            minutes = max(1, (exc.seconds + 59) // 60)
            form.add_error(
                None,
                ngettext(
                    "Too many failed attempts. Try again in %(minutes)d minute.",
                    "Too many failed attempts. Try again in %(minutes)d minutes.",
                    minutes,
                )
                % {"minutes": minutes},
            )
            status = 429
        else:
            if user is not None:
                login(request, user)
                return redirect(_next_url(request))
            form.add_error(None, _("Wrong login or password."))
            status = 401
    return render(request, "staff/login.html", {"form": form, "next": _next_url(request)}, status=status)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("staff:login")
