"""The second factor in front of every console page and the admin (everything under /staff/)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from .two_factor import two_factor_required

# Pages a signed-in user reaches before passing the second factor: the login steps, enrolment, logging out.
OPEN_VIEWS = frozenset(
    {
        ("staff", "login"),
        ("staff", "login_page"),
        ("staff", "login_code"),
        ("staff", "two_factor_setup"),
        ("staff", "logout"),
    }
)


class TwoFactorMiddleware:
    """Sends a console session that has not passed the second factor where it has to go.

    - A user with two-factor authentication whose session was not verified with a code (one that was signed in
      before the factor was turned on) is signed out: the login asks for the code.
    - A user whose role must use it (``ABONENT_REQUIRE_2FA_ROLES``) and has no authenticator yet is sent to
      enrolment, and reaches no other page, the admin included, until it is done.

    Runs after django-otp's ``OTPMiddleware`` (``request.user.is_verified()``). Costs no query for a user without
    the factor: the flag is on the user row the session loads anyway. API requests (bearer tokens) are not under
    the console's prefix and are left alone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = request.user
        if not user.is_authenticated or not request.path.startswith(reverse("staff:login")):
            return None
        match = request.resolver_match
        if (match.namespace, match.url_name) in OPEN_VIEWS:
            return None
        if user.two_factor_enabled:
            if user.is_verified():
                return None
            logout(request)
            messages.info(request, _("Two-factor authentication is on for your login: sign in again with your code."))
            return self._go(request, redirect_to_login(request.get_full_path(), reverse("staff:login")).url)
        if two_factor_required(user):
            target = f"{reverse('staff:two_factor_setup')}?{urlencode({'next': request.get_full_path()})}"
            return self._go(request, target)
        return None

    @staticmethod
    def _go(request, url: str):
        # An HTMX request would swap the target page into a fragment; make the browser navigate instead.
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(url)
        return HttpResponseRedirect(url)
