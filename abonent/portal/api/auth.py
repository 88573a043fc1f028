from ninja.security import HttpBearer

from abonent.core.middleware import set_request_actor

from ..middleware import actor_label
from ..models import SessionKind
from ..sessions import find_session


class SubscriberTokenAuth(HttpBearer):
    """``Authorization: Bearer abm_…``: a subscriber's portal token. Sets ``request.subscriber`` (the only
    subscriber the request may read or change) and ``request.portal_session``."""

    def authenticate(self, request, token):
        session = find_session(token, kind=SessionKind.API)
        if session is None:
            return None
        request.subscriber = session.subscriber
        request.portal_session = session
        set_request_actor(actor_label(session.subscriber))
        return session.subscriber
