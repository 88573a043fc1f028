"""A lean ASGI route for the payment agents' endpoint, ``/pay/agents/<code>/`` (``abonent.asgi``).

Under ``abonent web`` every request otherwise goes through Django's whole middleware stack (sessions, CSRF, auth,
two-factor, messages, htmx: the console's), and Django runs sync code one request at a time per process
(``thread_sensitive``). An agent's ``check``/``pay`` needs none of that: this handler reads the body (capped),
builds Django's ``ASGIRequest``, and runs the very same view (``views.terminals.agent_protocol``: the networks,
credentials, constant-time compare, proxy rule, deadlines and the answer 1 on a timeout are all its own) in a small
pool of threads, ``ABONENT_AGENT_THREADS`` per process, each returning its database connection to the pool after
every request. What the middleware did that still matters here is done here: the request id and the client's
address for the audit log (``RequestIdMiddleware``), the refusal of a NUL character, an oversized body
(``DATA_UPLOAD_MAX_MEMORY_SIZE``, 413 before it is read) and too many fields, and ``Cache-Control: no-store``.

A request this route does not take as it is (a percent-encoded NUL, a body it cannot decode, a Host outside
``ALLOWED_HOSTS``, plain HTTP under ``SECURE_SSL_REDIRECT``) goes to the full Django application, which answers it as
before; so do other paths.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, SuspiciousOperation
from django.core.handlers.asgi import ASGIRequest
from django.db import connection, connections
from django.http import HttpResponse

from abonent.core import middleware

logger = logging.getLogger(__name__)

_PATH = re.compile(r"/pay/agents/([^/\x00]{1,100})/\Z")
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=max(1, settings.ABONENT_AGENT_THREADS), thread_name_prefix="abonent-agents"
        )
    return _executor


def close_connections() -> None:
    """Close the database connection each of the route's threads keeps (tests; a process going away)."""
    if _executor is None:
        return
    count = _executor._max_workers
    barrier = threading.Barrier(count)

    def close():
        barrier.wait(timeout=10)  # one task per thread: each waits until every thread holds one
        connections.close_all()

    for future in [_executor.submit(close) for _ in range(count)]:
        future.result(timeout=20)


def takes(scope) -> bool:
    """Whether this route serves the request (the rest goes to Django as before)."""
    if scope["type"] != "http" or not settings.ABONENT_AGENT_LEAN_ROUTE or not _PATH.match(scope.get("path", "")):
        return False
    raw = scope.get("query_string", b"")
    return b"%00" not in raw and b"\x00" not in raw


async def _send(response: HttpResponse, send) -> None:
    """A plain (not streaming) response out over ASGI. Django's ``ASGIHandler.send_response`` would also close the
    response through the one thread-sensitive executor (``request_finished``), which this route does not use."""
    body = response.content
    headers = [(name.lower().encode("ascii"), value.encode("latin1")) for name, value in response.items()]
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (not read further)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            return None
        chunks.append(body)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _content_length(scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return 0


def _serve(request: ASGIRequest, code: str) -> HttpResponse:
    from .views.terminals import agent_protocol, refused

    incoming = request.META.get("HTTP_X_REQUEST_ID", "")
    request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
    request.request_id = request_id
    token = middleware._request_meta.set({"request_id": request_id, "ip": middleware.client_ip(request)})
    try:
        # The full stack's guard, answered as the full stack answers it (views.terminals.refused): a body that
        # cannot be read (a multipart without its boundary, a charset Django refuses) is a result code, not a 500.
        refusal = middleware.check_request(request)
        if refusal is not None:
            response = refused(refusal)
        else:
            try:
                response = agent_protocol(request, code)
            except RequestDataTooBig:
                response = HttpResponse("Request body too large", status=413, content_type="text/plain")
            except SuspiciousOperation:  # read past the guard: too many fields, a malformed body
                response = HttpResponse("Bad request", status=400, content_type="text/plain")
    finally:
        middleware._request_meta.reset(token)
        # Each of these threads keeps its connection from request to request (taking one from the pool costs a
        # round trip of the pool's health check), unless something went wrong on it: then it goes back to the pool,
        # which checks it before handing it out again.
        if connection.errors_occurred or connection.needs_rollback or connection.in_atomic_block:
            connection.close()
    response["X-Request-ID"] = request_id
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _plain(request: ASGIRequest) -> bool:
    """Whether the middleware this route skips would let the request through as it is."""
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return not (settings.SECURE_SSL_REDIRECT and not request.is_secure())


async def _delegate(scope, body: bytes, receive, send, django_app) -> None:
    """Hand the request, its body already read, to the full Django application."""
    replay = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def again():
        # The body once, then the server's own messages (a disconnect when the client goes away).
        message = next(replay, None)
        return message if message is not None else await receive()

    await django_app(scope, again, send)


async def handle(scope, receive, send, django_app) -> None:
    """Serve an agent's request (``takes(scope)`` is true), or hand it to ``django_app``."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
    if _content_length(scope) > limit:
        await _send(HttpResponse("Request body too large", status=413, content_type="text/plain"), send)
        return
    try:
        body = await _read_body(receive, limit)
    except ConnectionAbortedError:
        return
    if body is None:
        await _send(HttpResponse("Request body too large", status=413, content_type="text/plain"), send)
        return
    if b"\x00" in body or b"%00" in body:
        # The full stack's guard answers it (422, in the client's language).
        await _delegate(scope, body, receive, send, django_app)
        return
    try:
        request = ASGIRequest(scope, io.BytesIO(body))
    except UnicodeDecodeError:
        await _delegate(scope, body, receive, send, django_app)
        return
    if not _plain(request):
        # A Host not in ALLOWED_HOSTS (400), plain HTTP where SECURE_SSL_REDIRECT sends it to HTTPS (301): the
        # full stack answers as before.
        await _delegate(scope, body, receive, send, django_app)
        return
    code = _PATH.match(scope["path"])[1]
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    response = await loop.run_in_executor(_pool(), context.run, _serve, request, code)
    await _send(response, send)
