"""Request id and client address, kept in a context variable for logs and the audit log."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any

from django.conf import settings

_request_meta: ContextVar[dict[str, Any] | None] = ContextVar("abonent_request_meta", default=None)


def current_request_meta() -> dict[str, Any]:
    return _request_meta.get() or {}


def client_ip(request) -> str | None:
    # Only trust X-Forwarded-For when the operator says a proxy sets it; otherwise anyone can forge it.
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            # The last entry is the one our own proxy appended; earlier ones are whatever the client sent.
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        request.request_id = request_id
        token = _request_meta.set({"request_id": request_id, "ip": client_ip(request)})
        try:
            response = self.get_response(request)
        finally:
            _request_meta.reset(token)
        response["X-Request-ID"] = request_id
        return response
