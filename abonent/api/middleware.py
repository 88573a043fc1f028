"""Requests refused before any view (``abonent.core.middleware.check_request``), answered under /api/ in the API's
error shape so that clients branch on a stable code: 422 ``validation_error`` naming the field for a NUL
character, 413 ``body_too_large``, 400 ``too_many_fields`` / ``malformed_body``, 415 ``unsupported_media_type``
for a body that is not JSON (the API reads no other), 400 ``body_not_utf8`` for JSON in another encoding.

Under /pay/agents/ (the check/pay protocol of terminals) the same refusals are answered in the protocol's XML with a
result code (4 for a bad account, 300 otherwise): an agent reads nothing else, and an answer it cannot parse is a
connection failure it retries for ever."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse

from abonent.core.middleware import Refusal
from abonent.core.middleware import RequestGuardMiddleware as ConsoleRequestGuardMiddleware

from .errors import error_body

API_PREFIX = "/api/"
AGENTS_PREFIX = "/pay/agents/"
# JSON endpoints that take U+0000 in their strings and store U+FFFD in its place: FreeRADIUS's accounting, read by
# ``network.acct_fields`` as abonent radius reads the same record. Refused, the NAS would resend it for ever.
NUL_REPLACED = frozenset({"/api/v1/radius/accounting"})
# Endpoints that take a file (a multipart form or the raw body) instead of JSON: a bank statement's text.
FILE_UPLOADS = frozenset({"/api/v1/payments/statements"})


class RequestGuardMiddleware(ConsoleRequestGuardMiddleware):
    """Core's request guard, in JSON for the API and in plain text elsewhere."""

    def json_only(self, request) -> bool:
        return request.path.startswith(API_PREFIX) and request.path not in FILE_UPLOADS

    def nul_allowed(self, request) -> bool:
        return request.path in NUL_REPLACED

    def refuse(self, request, refusal: Refusal):
        if request.path.startswith(AGENTS_PREFIX):
            return _agent_refusal(refusal)
        if not request.path.startswith(API_PREFIX):
            return super().refuse(request, refusal)
        if refusal.status == 422:
            fields = [{"field": refusal.field, "code": refusal.code, "message": refusal.message}]
            return JsonResponse(error_body("validation_error", refusal.message, fields), status=422)
        return JsonResponse(error_body(refusal.code, refusal.message), status=refusal.status)


def _agent_refusal(refusal: Refusal) -> HttpResponse:
    from abonent.payments.views.terminals import refused

    return refused(refusal)
