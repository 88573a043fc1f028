from ninja.security import HttpBearer

from abonent.staff.actions import touch_api_token
from abonent.staff.selectors import get_user_by_api_token


class TokenAuth(HttpBearer):
    """``Authorization: Bearer abn_…``: a staff user's or a service account's API token."""

    def authenticate(self, request, token):
        user, api_token = get_user_by_api_token(token)
        if user is None:
            return None
        touch_api_token(api_token)
        request.user = user
        request.api_token = api_token
        return user
