"""Request-wide concerns: the request id and client address (kept for logs and the audit log), requests refused
before any view, and the security headers of every response."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext

logger = logging.getLogger(__name__)

_request_meta: ContextVar[dict[str, Any] | None] = ContextVar("abonent_request_meta", default=None)


def current_request_meta() -> dict[str, Any]:
    return _request_meta.get() or {}


def set_request_actor(label: str) -> None:
    """Name who acts in this request when it is not a staff user (a subscriber in the portal): the audit log's
    actor for actions called with ``acting_user=None`` instead of "system"."""
    meta = _request_meta.get()
    if meta is not None:
        meta["actor"] = label


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


# --- Requests refused before any view ------------------------------------------------------------------------
#
# What would otherwise reach PostgreSQL or Django's parsers and come back as a 500: a NUL character (PostgreSQL's
# text types cannot store U+0000, and psycopg raises on it), a body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django raises
# RequestDataTooBig inside the view; the API's catch-all turned it into a 500), too many fields. Issue 11.


@dataclass(frozen=True)
class Refusal:
    """Why a request is answered before it reaches a view. ``field`` names the input to blame, if one is."""

    status: int
    code: str
    message: str
    field: str | None = None


def _character_path(value: Any, found: Callable[[str], bool], path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where in parsed JSON the first key or string that ``found`` holds true of sits, as the path to it; None if
    nowhere. Recursive: called only on JSON no deeper than ``MAX_JSON_DEPTH``."""
    if isinstance(value, str):
        return path if found(value) else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), item) for i, item in enumerate(value))
    else:
        return None
    for key, item in items:
        if found(key):
            return (*path, key.replace("\x00", "\\u0000"))
        at = _character_path(item, found, (*path, key))
        if at is not None:
            return at
    return None


def _null_character_path(value: Any) -> tuple[str, ...] | None:
    """Where in parsed JSON the first U+0000 sits (in a key or a string), as the path to it; None if nowhere."""
    return _character_path(value, lambda text: "\x00" in text)


# A lone surrogate (U+D800–U+DFFF not in a pair) is valid in a JSON escape, and json.loads also reads one from the
# bytes of a body it decodes with "surrogatepass"; no database driver can encode it, nor json.dumps to UTF-8
# (api.idempotency's request hash): UnicodeEncodeError, a 500. A pair (an emoji spelt \ud83d\ude00) is one
# character once parsed and passes.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_OR_ITS_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _surrogate_path(value: Any) -> tuple[str, ...] | None:
    """Where in parsed JSON the first lone surrogate sits (in a key or a string); None if nowhere."""
    return _character_path(value, lambda text: _SURROGATE.search(text) is not None)


def _field(path: tuple[str, ...]) -> str | None:
    # Keys may hold the surrogate refused: escaped, so that the plain-text answer and the log can be encoded.
    return ".".join(path).encode("utf-8", "backslashreplace").decode() or None


# No body of ours nests deeper than a few levels. json.loads recurses once a level: a body with a NUL nested some
# hundreds deep raised RecursionError (not a ValueError) in the guard, a 500. Any body deeper than this is refused
# with one code, so no parser after the guard recurses further than it.
MAX_JSON_DEPTH = 64


def _json_depth(value: Any) -> int:
    """How deep parsed JSON nests its arrays and objects (a scalar is 0), counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        else:
            continue
        deepest = max(deepest, depth)
    return deepest


def _body_too_deep() -> Refusal:
    return Refusal(
        400,
        "body_too_deep",
        gettext("The JSON body is nested deeper than %(limit)s levels.") % {"limit": MAX_JSON_DEPTH},
    )


def _null_character(field: str | None) -> Refusal:
    return Refusal(422, "null_character", gettext("Null characters are not allowed."), field)


def _surrogate_character(field: str | None) -> Refusal:
    return Refusal(422, "surrogate_character", gettext("Unpaired surrogate characters are not allowed."), field)


def _form_null_character(data) -> Refusal | None:
    for key, values in data.lists():
        if "\x00" in key or any("\x00" in v for v in values):
            return _null_character(key.replace("\x00", "\\u0000"))
    return None


def _is_form(request) -> bool:
    return request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")


def _is_json(request) -> bool:
    # No Content-Type at all is read as JSON, as django-ninja reads it.
    return request.content_type in ("", "application/json") or request.content_type.endswith("+json")


def _unsupported_media_type() -> Refusal:
    return Refusal(
        415, "unsupported_media_type", gettext("Send the request body as JSON (Content-Type: application/json).")
    )


def _body_too_large() -> Refusal:
    return Refusal(
        413,
        "body_too_large",
        gettext("The request body is larger than %(limit)s bytes.") % {"limit": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
    )


def _check_request(request, *, json_only: bool, nul_allowed: bool = False) -> Refusal | None:
    if "\x00" in request.path:
        return Refusal(404, "not_found", gettext("Not found."))
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return Refusal(400, "malformed_body", gettext("The request body cannot be read."))
    if json_only and length and not _is_json(request):
        # Before request.POST is read below: a form body parsed here is a stream consumed, and the JSON
        # parser reading request.body after it raised RawPostDataException (a 500).
        return _unsupported_media_type()
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    # Uploaded files do not count towards the limit (Django's multipart parser checks the other fields itself).
    if limit is not None and length > limit and request.content_type != "multipart/form-data":
        return _body_too_large()
    # Reading GET and POST here is no extra work: the views and CsrfViewMiddleware parse them anyway (cached).
    if (refusal := _form_null_character(request.GET)) is not None:
        return refusal
    if request.method == "POST" and _is_form(request):
        return _form_null_character(request.POST)
    if length and not _is_form(request):
        return _check_json_body(request.body, utf8_only=json_only, nul_allowed=nul_allowed)
    return None


def _check_json_body(body: bytes, *, utf8_only: bool, nul_allowed: bool = False) -> Refusal | None:
    """What a body read as JSON would carry to the database that it cannot store, read as ``json.loads`` reads it.

    ``json.loads`` also reads UTF-16 and UTF-32 (RFC 4627's detection), where the escape ``\\u0000`` is spelt with
    zero bytes between its characters: looked for in the bytes, it was missed. A JSON API (``utf8_only``) takes
    UTF-8 only (RFC 8259 §8.1): anything else is refused, 400 ``body_not_utf8``.
    """
    encoding = json.detect_encoding(body)
    if utf8_only:
        # UTF-16 without a byte order mark is valid UTF-8 (ASCII with zero bytes): ask json.loads's detection too.
        try:
            text = body.decode("utf-8") if encoding in ("utf-8", "utf-8-sig") else None
        except UnicodeDecodeError:
            text = None
        if text is None:
            return Refusal(400, "body_not_utf8", gettext("The request body must be JSON encoded in UTF-8."))
        text = text.removeprefix("\ufeff")
    else:
        try:
            text = body.decode(encoding, "surrogatepass")
        except UnicodeDecodeError:
            return None  # json.loads cannot read it either: not JSON
    # JSON spells U+0000 as \u0000 (a raw NUL byte in a string is invalid JSON, refused by the parser). A body
    # with no more brackets than MAX_JSON_DEPTH cannot be nested deeper: most bodies are not parsed here.
    maybe_surrogate = _SURROGATE_OR_ITS_ESCAPE.search(text) is not None
    if "\\u0000" not in text and not maybe_surrogate and text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return None
    try:
        parsed = json.loads(text)
    except RecursionError:
        return _body_too_deep()
    except ValueError:
        return None  # the view's own parser answers for malformed JSON
    if _json_depth(parsed) > MAX_JSON_DEPTH:
        return _body_too_deep()
    path = None if nul_allowed else _null_character_path(parsed)
    if path is not None:
        return _null_character(_field(path))
    path = _surrogate_path(parsed) if maybe_surrogate else None
    if path is not None:
        return _surrogate_character(_field(path))
    return None


def check_request(request, *, json_only: bool = False, nul_allowed: bool = False) -> Refusal | None:
    """The reason to refuse ``request`` before any view (see above), or None to let it through.

    ``json_only``: the request goes to a JSON API, which takes a body only as JSON (415 otherwise).
    ``nul_allowed``: its view takes U+0000 in the body's strings and stores U+FFFD in its place.
    """
    try:
        return _check_request(request, json_only=json_only, nul_allowed=nul_allowed)
    except RequestDataTooBig:
        return _body_too_large()
    except (TooManyFieldsSent, TooManyFilesSent):
        return Refusal(400, "too_many_fields", gettext("The request has too many fields."))
    except (SuspiciousOperation, BadRequest, MultiPartParserError, UnicodeDecodeError):
        return Refusal(400, "malformed_body", gettext("The request body cannot be read."))


class RequestGuardMiddleware:
    """Answers a request that would crash a view (``check_request``) with a 4xx naming the reason, as plain text.

    ``abonent.api.middleware`` answers the same refusals in the API's JSON error shape under /api/.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refusal = check_request(request, json_only=self.json_only(request), nul_allowed=self.nul_allowed(request))
        if refusal is None:
            return self.get_response(request)
        logger.info("Refused %s %s: %s (%s)", request.method, request.path, refusal.code, refusal.field or "-")
        return self.refuse(request, refusal)

    def json_only(self, request) -> bool:
        """Whether ``request`` goes to a JSON API (``check_request``); none here."""
        return False

    def nul_allowed(self, request) -> bool:
        """Whether ``request``'s JSON body may carry U+0000 (the view stores U+FFFD in its place); none here."""
        return False

    def refuse(self, request, refusal: Refusal) -> HttpResponse:
        text = f"{refusal.field}: {refusal.message}" if refusal.field else refusal.message
        return HttpResponse(text, status=refusal.status, content_type="text/plain; charset=utf-8")


# --- Headers of every response -------------------------------------------------------------------------------

# Console pages and API answers carry personal data (names, phones, passports, balances): no browser or proxy cache
# may keep them, and the back button after logging out must not show them. The client portal (/my/) will too.
NO_STORE_PREFIXES = ("/staff/", "/api/", "/my/")


class SecurityHeadersMiddleware:
    """``Content-Security-Policy`` on every response (``settings.ABONENT_CONTENT_SECURITY_POLICY``), and
    ``Cache-Control: no-store`` under ``NO_STORE_PREFIXES``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.ABONENT_CONTENT_SECURITY_POLICY
        # Django's technical 404/500 pages (DEBUG only) style and script themselves inline.
        debug_page = settings.DEBUG and response.status_code in (404, 500)
        if policy and not debug_page and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        if request.path.startswith(NO_STORE_PREFIXES):
            patch_cache_control(response, no_store=True)
        return response
