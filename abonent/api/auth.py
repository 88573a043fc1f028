from django.utils.translation import gettext as _
from ninja.security import HttpBearer

from abonent.staff.actions import touch_api_token
from abonent.staff.selectors import get_user_by_api_token

from .errors import ApiError
from .selectors import radius_binding

# Further checks of a service account's token that other apps plug in (the integrations' scopes): each is called
# with the request and the token and raises ``ApiError`` to refuse. A person's token costs nothing here.
_token_checks: list = []


def register_token_check(check) -> None:
    if check not in _token_checks:
        _token_checks.append(check)


class TokenAuth(HttpBearer):
    """``Authorization: Bearer abn_…``: a staff user's or a service account's API token.

    A RADIUS front-end's token (``RadiusToken``: made by ``abonent create_radius_token`` or bound to a NAS in the
    admin) opens only the FreeRADIUS endpoints (``TokenAuth(radius=True)``), whatever its account's role, and
    elsewhere is a 403. Once it speaks for no NAS (its bindings removed, its NAS deleted) it opens nothing: it
    never falls back to its account's role. Those endpoints read ``request.api_token_nas_ids`` to refuse a
    request for any other NAS.
    """

    def __init__(self, *, radius: bool = False):
        super().__init__()
        self.radius = radius

    def authenticate(self, request, token):
        user, api_token = get_user_by_api_token(token)
        if user is None:
            return None
        # Only a service account's token is ever marked or bound (api.actions; the admin keeps an account that
        # holds one a service account), so a person's request costs no query here.
        radius_only, nas_ids = radius_binding(api_token) if user.is_service_account else (False, frozenset())
        if radius_only and not nas_ids:
            raise ApiError(
                403,
                "radius_token_unbound",
                _("This RADIUS token speaks for no NAS: it opens nothing. Bind it to a NAS again or revoke it."),
            )
        if radius_only and not self.radius:
            raise ApiError(
                403, "radius_token_only", _("This token speaks for a NAS: it opens only the RADIUS endpoints.")
            )
        if user.is_service_account and not radius_only:  # a RADIUS token is never an integration's: no query
            for check in _token_checks:
                check(request, api_token)
        touch_api_token(api_token)
        request.user = user
        request.api_token = api_token
        request.api_token_nas_ids = nas_ids
        return user
