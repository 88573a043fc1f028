"""Every API error is ``{"error": {"code": "...", "message": "...", "fields": [...]}}`` with a stable code.

Clients branch on ``code`` (never on the translated ``message``); ``fields`` lists per-field problems
as ``{"field": "contacts.0.value", "code": "phone_invalid", "message": "..."}``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []


class ErrorDetail(Schema):
    field: str | None = None
    code: str
    message: str


class ErrorBody(Schema):
    code: str
    message: str
    fields: list[ErrorDetail]


class ErrorOut(Schema):
    """The body of every error response; routers list it under their error status codes."""

    error: ErrorBody


def error_body(code: str, message: str, fields: list[dict] | None = None) -> dict:
    # ``fields`` is always present (empty when no field is to blame): one shape for clients to read.
    return {"error": {"code": code, "message": str(message), "fields": fields or []}}


def django_validation_fields(exc: DjangoValidationError) -> list[dict]:
    if hasattr(exc, "error_dict"):
        return [
            {"field": name, "code": err.code or "invalid", "message": " ".join(err.messages)}
            for name, errors in exc.error_dict.items()
            for err in errors
        ]
    return [{"field": None, "code": err.code or "invalid", "message": " ".join(err.messages)} for err in exc.error_list]


def _pydantic_message(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return _("This field is required.")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return _("This value has the wrong type.")
    return str(error.get("msg", _("This value is invalid.")))


def install(api) -> None:
    def respond(request, status: int, body: dict):
        return api.create_response(request, body, status=status)

    @api.exception_handler(ApiError)
    def on_api_error(request, exc: ApiError):
        return respond(request, exc.status, error_body(exc.code, exc.message, exc.fields))

    @api.exception_handler(NinjaValidationError)
    def on_schema_error(request, exc: NinjaValidationError):
        fields = []
        for error in exc.errors:
            location = [str(p) for p in error.get("loc", ()) if p not in ("body", "payload", "query", "path")]
            fields.append(
                {
                    "field": ".".join(location) or None,
                    "code": error.get("type", "invalid"),
                    "message": _pydantic_message(error),
                }
            )
        return respond(request, 422, error_body("validation_error", _("The request has invalid fields."), fields))

    @api.exception_handler(DjangoValidationError)
    def on_domain_error(request, exc: DjangoValidationError):
        fields = django_validation_fields(exc)
        message = fields[0]["message"] if len(fields) == 1 else _("The request has invalid fields.")
        return respond(request, 422, error_body("validation_error", message, fields))

    @api.exception_handler(AuthenticationError)
    def on_auth_error(request, exc):
        response = respond(
            request, 401, error_body("not_authenticated", _("Send a valid API token: Authorization: Bearer <token>."))
        )
        response["WWW-Authenticate"] = 'Bearer realm="abonent"'
        return response

    @api.exception_handler(PermissionDenied)
    def on_denied(request, exc):
        return respond(
            request, 403, error_body("permission_denied", str(exc) or _("You do not have permission to do this."))
        )

    @api.exception_handler(Http404)
    def on_not_found(request, exc):
        return respond(request, 404, error_body("not_found", _("Not found.")))

    @api.exception_handler(HttpError)
    def on_http_error(request, exc: HttpError):
        if exc.status_code == 400:
            return respond(request, 400, error_body("malformed_body", _("The request body is not valid JSON.")))
        if exc.status_code == 405:
            return respond(request, 405, error_body("method_not_allowed", _("Method not allowed.")))
        return respond(request, exc.status_code, error_body("http_error", str(exc)))

    @api.exception_handler(RequestDataTooBig)
    def on_body_too_large(request, exc):
        # Normally refused before the view by abonent.api.middleware; this covers a body read past the guard.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        message = _("The request body is larger than %(limit)s bytes.") % {"limit": limit}
        return respond(request, 413, error_body("body_too_large", message))

    @api.exception_handler(Exception)
    def on_crash(request, exc: Exception):
        logger.exception("API error on %s %s", request.method, request.path)
        return respond(request, 500, error_body("internal_error", _("Internal error; it has been logged.")))


def not_found_view(request, *args, **kwargs):
    """Unknown paths under /api/ answer in the API's error shape, not with Django's HTML 404 page."""
    from django.http import JsonResponse

    return JsonResponse(error_body("not_found", _("No such API endpoint.")), status=404)
