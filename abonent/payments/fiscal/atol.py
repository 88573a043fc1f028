"""ATOL Online, API v5 (FFD 1.2): a thin ``httpx`` client (notes/payments-ru.md §2.1).

- ``POST {base}getToken`` ``{"login", "pass"}`` → ``{"token"}``; the token lives 24 h: cached per process until
  shortly before that, and fetched again when ATOL calls it missing or expired (error codes 10, 11).
- ``POST {base}{group_code}/{sell|sell_refund}`` with the ``Token`` header and ``{"external_id", "timestamp",
  "service": {"callback_url"}, "receipt"}`` → ``{"uuid", "status": "wait"}``.
- ``GET {base}{group_code}/report/{uuid}`` → ``{"uuid", "status": "wait|done|fail", "error", "payload": {…}}``;
  the callback POSTs the same body.
- Errors come as ``{"error": {"code", "text", "type"}}``. The v5 service codes (section 7.1 of the protocol, as
  the Ruby gem ``atol`` maps them): 10 token missing, 11 token expired, 12 wrong login or password, 13
  validation, 14 user blocked, 20/21 group code, 30 uuid missing, 31 operation not supported, 32 validation of
  the document, 33 the ``external_id`` exists already (the answer carries that document's uuid, which is how
  a retry after a timeout finds the first document), 34 no such document, 40 bad request, 41 bad media type,
  50 ATOL's own configuration error.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import httpx
from django.conf import settings
from django.utils import timezone

from abonent.core import clock
from abonent.payments import deadline

from .base import CallbackRejected, FiscalError, FiscalReport
from .content import from_json, to_json

logger = logging.getLogger(__name__)

TOKEN_LIFETIME = dt.timedelta(hours=24)
TOKEN_MARGIN = dt.timedelta(minutes=30)
TOKEN_ERRORS = {10, 11}
DUPLICATE = 33
# Errors of the report call itself (no uuid, no such document), not of the document it reports on.
REPORT_ERRORS = {30, 34}
# The settings are wrong (credentials, group code): permanent until staff fix them.
SETTINGS_ERRORS = {12, 14, 20, 21, 22}
# The document itself is refused: permanent for this content.
DOCUMENT_ERRORS = {13, 31, 32, 40, 41}

_tokens: dict[tuple[str, str], tuple[str, dt.datetime]] = {}
_tokens_lock = threading.Lock()


def forget_tokens() -> None:
    """Drop every cached token (tests; a password change)."""
    with _tokens_lock:
        _tokens.clear()


class AtolProvider:
    code = "atol"
    issues_receipts = True

    def __init__(self):
        base = (settings.ABONENT_ATOL_API_URL or "").strip()
        self.base = base if base.endswith("/") else base + "/"
        self.login = settings.ABONENT_ATOL_LOGIN
        self.password = settings.ABONENT_ATOL_PASSWORD
        self.group = settings.ABONENT_ATOL_GROUP_CODE
        self.timeout = httpx.Timeout(settings.ABONENT_ATOL_TIMEOUT)
        self.deadline = 2 * settings.ABONENT_ATOL_TIMEOUT  # the whole call (connect + answer), deadline.py
        self.callback_url = (settings.ABONENT_FISCAL_CALLBACK_URL or "").strip()

    # The calls.

    def send(self, *, operation: str, external_id: str, document: dict, moment: dt.datetime) -> str:
        if operation not in ("sell", "sell_refund"):
            raise FiscalError(f"unknown operation {operation!r}", retryable=False, code="operation")
        self._check_settings()
        body = {
            "external_id": external_id,
            "timestamp": timezone.localtime(moment).strftime("%d.%m.%Y %H:%M:%S"),
            "receipt": document,
        }
        if self.callback_url:
            body["service"] = {"callback_url": self.callback_url}
        answer = self._with_token("POST", f"{self.group}/{operation}", content=to_json(body))
        uuid = str(answer.get("uuid") or "").strip()
        if not uuid:
            raise FiscalError("ATOL accepted the document without a uuid", retryable=True, code="no_uuid")
        return uuid

    def get_report(self, uuid: str) -> FiscalReport:
        self._check_settings()
        if not uuid or "/" in uuid:
            raise FiscalError("bad uuid", retryable=False, code="uuid")
        return parse_report(self._with_token("GET", f"{self.group}/report/{uuid}", report=True))

    def parse_callback(self, body: bytes) -> str:
        try:
            data = from_json(body)
        except ValueError:
            raise CallbackRejected("not JSON") from None
        uuid = str(data.get("uuid") or "").strip() if isinstance(data, dict) else ""
        if not uuid or len(uuid) > 64 or not uuid.isprintable():
            raise CallbackRejected("no uuid")
        return uuid

    # HTTP.

    def _check_settings(self) -> None:
        missing = [
            name
            for name, value in (
                ("ABONENT_ATOL_LOGIN", self.login),
                ("ABONENT_ATOL_PASSWORD", self.password),
                ("ABONENT_ATOL_GROUP_CODE", self.group),
            )
            if not value
        ]
        if missing:
            raise FiscalError(f"{', '.join(missing)} not set", retryable=False, code="settings")

    def _with_token(self, method: str, path: str, *, content: str | None = None, report: bool = False) -> dict:
        token = self._token()
        try:
            return self._call(method, path, token=token, content=content, report=report)
        except _TokenRejected:
            token = self._token(refresh=True)
            try:
                return self._call(method, path, token=token, content=content, report=report)
            except _TokenRejected as exc:
                raise FiscalError(f"ATOL refused a fresh token: {exc}", retryable=True, code="token") from None

    def _token(self, *, refresh: bool = False) -> str:
        key = (self.base, self.login)
        now = clock.now()
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not refresh and cached[1] > now:
                return cached[0]
        answer = self._request("POST", "getToken", content=to_json({"login": self.login, "pass": self.password}))
        error = answer.get("error")
        token = str(answer.get("token") or "")
        if error or not token:
            code, text = _error_of(answer)
            raise FiscalError(f"ATOL getToken: {text or 'no token'} (code {code})", retryable=False, code="settings")
        with _tokens_lock:
            _tokens[key] = (token, now + TOKEN_LIFETIME - TOKEN_MARGIN)
        return token

    def _call(self, method: str, path: str, *, token: str, content: str | None, report: bool) -> dict:
        answer = self._request(method, path, content=content, token=token)
        code, text = _error_of(answer)
        if code is None:
            return answer
        if code in TOKEN_ERRORS:
            raise _TokenRejected(text)
        if report and code not in REPORT_ERRORS and answer.get("status") in ("wait", "done", "fail"):
            return answer  # the document's own error (the kassa refused it): the report says so
        if code == DUPLICATE and answer.get("uuid"):
            # Our external_id is there already (an earlier attempt got through before its answer was lost).
            logger.info("ATOL already holds this document: %s", answer.get("uuid"))
            return answer
        if code in SETTINGS_ERRORS:
            raise FiscalError(f"ATOL: {text} (code {code})", retryable=False, code="settings")
        if code == DUPLICATE:
            # The document EXISTS at ATOL but it did not say which: for staff, never read as "nothing fiscalized".
            raise FiscalError(f"ATOL: {text} (code {code})", retryable=False, code="duplicate")
        if code in DOCUMENT_ERRORS:
            raise FiscalError(f"ATOL: {text} (code {code})", retryable=False, code="document")
        raise FiscalError(f"ATOL: {text} (code {code})", retryable=True, code=str(code))

    def _request(self, method: str, path: str, *, content: str | None = None, token: str = "") -> dict:
        headers = {"Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        if token:
            headers["Token"] = token
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                response = deadline.request(
                    client,
                    method,
                    self.base + path,
                    deadline=self.deadline,
                    content=content.encode() if content else None,
                    headers=headers,
                )
        except httpx.TimeoutException as exc:
            raise FiscalError(
                f"ATOL did not answer in time ({type(exc).__name__})", retryable=True, code="timeout"
            ) from None
        except httpx.HTTPError as exc:
            raise FiscalError(f"ATOL unreachable: {exc}", retryable=True, code="network") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise FiscalError(f"ATOL answered HTTP {response.status_code}", retryable=True, code="http")
        try:
            answer = from_json(response.content)
        except ValueError:
            raise FiscalError(
                f"ATOL answered HTTP {response.status_code} without JSON", retryable=True, code="http"
            ) from None
        if not isinstance(answer, dict):
            raise FiscalError("ATOL answered with something other than an object", retryable=True, code="http")
        if response.status_code >= 400 and _error_of(answer)[0] is None:
            raise FiscalError(f"ATOL answered HTTP {response.status_code}", retryable=False, code="http")
        return answer


class _TokenRejected(Exception):
    pass


def _error_of(answer: dict) -> tuple[int | None, str]:
    error = answer.get("error")
    if not error:
        return None, ""
    if not isinstance(error, dict):
        return -1, str(error)[:500]
    try:
        code = int(error.get("code"))
    except (TypeError, ValueError):
        code = -1
    return code, str(error.get("text") or "")[:500]


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _moment(text) -> dt.datetime | None:
    # "12.04.2017 20:16:00", the kassa's local time: read in the installation's time zone.
    try:
        return timezone.make_aware(dt.datetime.strptime(str(text), "%d.%m.%Y %H:%M:%S"))
    except (TypeError, ValueError):
        return None


def parse_report(answer: dict) -> FiscalReport:
    status = str(answer.get("status") or "")
    uuid = str(answer.get("uuid") or "")
    code, text = _error_of(answer)
    if status not in ("wait", "done", "fail"):
        raise FiscalError(f"ATOL report with status {status!r}", retryable=True, code="report")
    payload = answer.get("payload") if isinstance(answer.get("payload"), dict) else {}
    if status == "done" and not payload.get("fn_number"):
        raise FiscalError("ATOL report done without fiscal attributes", retryable=True, code="report")
    total = payload.get("total")
    return FiscalReport(
        uuid=uuid,
        status=status,
        error=f"{text} (code {code})" if code is not None else "",
        fn_number=str(payload.get("fn_number") or "")[:32],
        fiscal_receipt_number=_int(payload.get("fiscal_receipt_number")),
        fiscal_document_number=_int(payload.get("fiscal_document_number")),
        fiscal_document_attribute=_int(payload.get("fiscal_document_attribute")),
        ecr_registration_number=str(payload.get("ecr_registration_number") or "")[:32],
        shift_number=_int(payload.get("shift_number")),
        receipt_datetime=_moment(payload.get("receipt_datetime")),
        total=total if total is None else _decimal(total),
        ofd_url=str(payload.get("fns_site") or payload.get("ofd_receipt_url") or "")[:255],
        raw=_plain(answer),
    )


def _decimal(value):
    from abonent.core.money import quantize

    try:
        return quantize(value)
    except ValueError:
        return None


def _plain(value):
    """The answer for a JSON column: Decimals back to text, nothing lost."""
    from decimal import Decimal

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value
