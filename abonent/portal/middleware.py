"""Who is signed in to the portal: ``request.subscriber`` under ``/my/`` (None when nobody is).

Every portal view needs a signed-in subscriber unless it is marked ``@public`` (login, codes, the manifest):
a route added later is closed by default, never open by omission.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import redirect

from abonent.core.middleware import set_request_actor

from .models import SessionKind
from .sessions import COOKIE, find_session

PREFIX = "/my/"


def public(view):
    """Mark a portal view that answers without a signed-in subscriber."""
    view.portal_public = True
    return view


def actor_label(subscriber) -> str:
    """How the audit log names a subscriber acting in the portal or its API."""
    return f"subscriber:{subscriber.account_number}"


class PortalMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(PREFIX):
            session = find_session(request.COOKIES.get(COOKIE, ""), kind=SessionKind.WEB)
            request.portal_session = session
            request.subscriber = session.subscriber if session else None
            if session is not None:
                set_request_actor(actor_label(session.subscriber))
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not request.path.startswith(PREFIX) or getattr(view_func, "portal_public", False):
            return None
        if request.subscriber is None:
            query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
            return redirect(f"{PREFIX}login/" + (f"?{query}" if query else ""))
        return None
