from django.utils.translation import gettext as _
from ninja.security import HttpBearer

from abonent.staff.actions import touch_api_token
from abonent.staff.selectors import get_user_by_api_token

from .errors import ApiError
from .selectors import bound_nas_ids


class TokenAuth(HttpBearer):
    """``Authorization: Bearer abn_…``: a staff user's or a service account's API token.

    A token bound to NAS (``ApiTokenNas``) is a RADIUS front-end's: it opens only the FreeRADIUS endpoints
    (``TokenAuth(radius=True)``), whatever its account's role, and elsewhere is a 403. Those endpoints read
    ``request.api_token_nas_ids`` to refuse a request for any other NAS.
    """

    def __init__(self, *, radius: bool = False):
        super().__init__()
        self.radius = radius

    def authenticate(self, request, token):
        user, api_token = get_user_by_api_token(token)
        if user is None:
            return None
        # Only a service account's token can be bound (api.actions), so a person's request costs no query here.
        nas_ids = bound_nas_ids(api_token) if user.is_service_account else frozenset()
        if nas_ids and not self.radius:
            raise ApiError(
                403, "radius_token_only", _("This token speaks for a NAS: it opens only the RADIUS endpoints.")
            )
        touch_api_token(api_token)
        request.user = user
        request.api_token = api_token
        request.api_token_nas_ids = nas_ids
        return user
