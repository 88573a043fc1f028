"""What the HTTP transports share: one ``httpx.Client`` per transport, the whole-call deadline, and what a failed
call means for the message.

A failure *before* the request went out (no connection, the pool full) is safe to retry: the provider never saw
it. A failure *after* (a read timeout, the deadline, a dropped connection) is ambiguous: the provider may have
taken the message. Those outcomes carry ``MessageError.TIMEOUT`` so a transport that can ask the provider
(SMSC's ``status.php``) does so before sending again; the others send again (at least once, see
docs/notifications-delivery.md).
"""

from __future__ import annotations

import httpx
from django.conf import settings

from abonent.payments.deadline import DeadlineExceeded, request

from ..errors import MessageError
from .base import Outcome, Result


def client() -> httpx.Client:
    deadline = float(settings.ABONENT_NOTIFY_HTTP_DEADLINE)
    concurrency = int(settings.ABONENT_NOTIFY_CONCURRENCY)
    return httpx.Client(
        timeout=httpx.Timeout(deadline, connect=min(5.0, deadline), pool=deadline),
        limits=httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2),
        headers={"User-Agent": "Abonent"},
    )


def call(http: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    """The request with ``ABONENT_NOTIFY_HTTP_DEADLINE`` as its whole-call deadline."""
    return request(http, method, url, deadline=float(settings.ABONENT_NOTIFY_HTTP_DEADLINE), **kwargs)


def failure(exc: Exception) -> Outcome:
    """The outcome of a call that raised: retried, and marked ambiguous when the request may have gone out."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Outcome(Result.RETRY, error=MessageError.UNREACHABLE, detail=_words(exc))
    if isinstance(exc, DeadlineExceeded | httpx.TimeoutException | httpx.TransportError):
        return Outcome(Result.RETRY, error=MessageError.TIMEOUT, detail=_words(exc))
    return Outcome(Result.RETRY, error=MessageError.PROVIDER_ERROR, detail=_words(exc))


def http_error(response: httpx.Response) -> Outcome:
    """The outcome of an HTTP status that is not an answer of the API (a proxy's 502, a 5xx, a 429)."""
    retry_after = None
    if response.status_code == 429:
        try:
            retry_after = float(response.headers.get("Retry-After", ""))
        except ValueError:
            retry_after = None
        return Outcome(Result.RETRY, error=MessageError.RATE_LIMITED, detail="HTTP 429", retry_after=retry_after)
    return Outcome(
        Result.RETRY, error=MessageError.PROVIDER_ERROR, detail=f"HTTP {response.status_code} {response.text[:200]}"
    )


def _words(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]
