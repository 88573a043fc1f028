"""Who may read the API's description (``/api/v1/docs`` and ``/api/v1/openapi.json``).

In production only staff signed in to the console or holding an API token: the schema lists every endpoint and
field, which helps an attacker more than a customer. Outside production (``settings.ABONENT_API_DOCS_PUBLIC``)
anyone may, so the demo's docs open with one click.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.utils.translation import gettext as _

from abonent.staff.two_factor import two_factor_required

from .auth import TokenAuth
from .errors import ApiError, error_body


def _signed_in_to_the_console(user) -> bool:
    if not user.is_authenticated:
        return False
    # The console's second-factor rule (abonent.staff.middleware): a session still owing its code is not in yet.
    if user.two_factor_enabled:
        return user.is_verified()
    return not two_factor_required(user)


def docs_access(view):
    """``NinjaAPI(docs_decorator=...)``: wraps the docs page and the schema."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if settings.ABONENT_API_DOCS_PUBLIC or _signed_in_to_the_console(request.user):
            return view(request, *args, **kwargs)
        try:
            token_user = TokenAuth()(request)
        except ApiError as exc:
            # A RADIUS token opens no endpoint but FreeRADIUS's: this refusal outside ninja was a 500.
            return JsonResponse(error_body(exc.code, exc.message, exc.fields), status=exc.status)
        if token_user is not None:
            return view(request, *args, **kwargs)
        if request.path.endswith("/openapi.json"):
            response = JsonResponse(
                error_body("not_authenticated", _("Send a valid API token: Authorization: Bearer <token>.")), status=401
            )
            response["WWW-Authenticate"] = 'Bearer realm="abonent"'
            return response
        return redirect_to_login(request.get_full_path())

    return wrapped
