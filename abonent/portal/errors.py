"""Why the portal's login refused: one exception with a stable code, shown by the pages as a form error and by
the API as ``{"error": {"code": ...}}``."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import ngettext


class AuthRefused(Exception):
    """``code``: invalid_credentials, ambiguous_login, locked_out, too_many_requests, code_invalid, code_expired,
    code_used, password_too_weak, password_wrong, session_ended. ``status`` is the API's; ``retry_after`` seconds
    for a lock-out; ``fields`` the per-field problems (a weak password's reasons)."""

    def __init__(self, code: str, message: str, *, status: int = 422, retry_after: int | None = None, fields=None):
        super().__init__(message)
        self.code, self.message, self.status = code, str(message), status
        self.retry_after = retry_after
        self.fields = fields or []


def locked_out(seconds: int) -> AuthRefused:
    # The same words whether or not the login exists: a lock-out must not tell which logins are real.
    minutes = max(1, -(-int(seconds) // 60))
    message = ngettext(
        "Too many failed attempts. Try again in %(minutes)d minute.",
        "Too many failed attempts. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
    return AuthRefused("locked_out", message, status=429, retry_after=int(seconds))


def too_many_requests(seconds: int) -> AuthRefused:
    minutes = max(1, -(-int(seconds) // 60))
    message = ngettext(
        "Too many requests from your address. Try again in %(minutes)d minute.",
        "Too many requests from your address. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
    return AuthRefused("too_many_requests", message, status=429, retry_after=int(seconds))


def invalid_credentials() -> AuthRefused:
    return AuthRefused("invalid_credentials", _("Wrong login or password."))


def ambiguous_login() -> AuthRefused:
    return AuthRefused(
        "ambiguous_login",
        _("This phone number is on several contracts. Enter your account number instead."),
    )


def code_invalid(message: str | None = None) -> AuthRefused:
    return AuthRefused("code_invalid", message or _("Wrong code. Check it, or ask for a new one."))


def session_ended() -> AuthRefused:
    # The session the request came with ended while it ran (another device logged out everywhere, or reset the
    # password): what it asked for is not done.
    return AuthRefused("session_ended", _("Your session has ended. Sign in again."), status=401)
