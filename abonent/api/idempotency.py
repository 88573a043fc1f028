"""``Idempotency-Key`` support for API writes (Stripe-style): retries are answered, not repeated.

A money-moving endpoint requires the header (``required=True``): a client that retries after a lost answer
would otherwise post twice, so a request without it is refused with 400 ``idempotency_key_required`` before
anything runs. Other writes accept it. A stored answer is replayed only to the user who got it, for the same
request (bodies compared as parsed JSON, so key order and spacing do not matter), and only after the
endpoint's access check passes again: a role lost or a branch removed since the first call answers 403/404,
not the stored body.

The key is taken before anything else (a transaction-scoped advisory lock on PostgreSQL; SQLite's transactions are
IMMEDIATE): a retry sent while the first request with its key is still running waits for it, then gets its answer.
A handler that refuses (a 4xx) after a request with the same key committed is answered with that request's answer
too: the retry must not tell the client its request failed when it went through.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils.translation import gettext as _
from ninja import Status
from ninja.utils import contribute_operation_callback

from abonent.core import clock

from .errors import ApiError
from .models import IdempotencyRecord

HEADER = "HTTP_IDEMPOTENCY_KEY"
MAX_KEY_LENGTH = 200  # IdempotencyRecord.key


def owner_of(request) -> dict:
    """Whose stored answers a request may replay: the subscriber's under ``/api/v1/my/`` (the portal's token
    sets ``request.subscriber``), else the staff user's."""
    subscriber = getattr(request, "subscriber", None)
    return {"subscriber": subscriber} if subscriber is not None else {"user": request.user}


def request_key(request, *, required: bool) -> str | None:
    """The request's Idempotency-Key; None when absent and not required, 400 when absent and required."""
    key = request.META.get(HEADER, "").strip()
    if not key:
        if required:
            raise ApiError(
                400,
                "idempotency_key_required",
                _("This request moves money: send an Idempotency-Key header, and the same key when you retry it."),
            )
        return None
    if len(key) > MAX_KEY_LENGTH:
        raise ApiError(400, "idempotency_key_invalid", _("The Idempotency-Key header is too long."))
    if not key.isprintable():
        # A NUL reached PostgreSQL in IdempotencyRecord.key (psycopg raised, a 500); no client's key needs a
        # control character.
        raise ApiError(
            400, "idempotency_key_invalid", _("The Idempotency-Key header may hold only printable characters.")
        )
    return key


def ledger_key(request, kind: str) -> str:
    """The ledger transaction key of a money-moving request: one user's retries post once, whenever they come.

    While the stored answer lives, a retry is answered from it (and a concurrent one rolls back on the
    stored answer's unique key). The answer is pruned after a week (``api.tasks``), the ledger keeps its
    keys for ever: a later retry finds its transaction already posted (``ledger.post`` returns it) or, if
    the content differs (another effective date), is refused with 409, instead of posting again. The
    client's key is hashed: it is free text of up to 200 characters, and the ledger's column holds 200.
    """
    key = request_key(request, required=True)
    digest = hashlib.sha256(key.encode()).hexdigest()
    subscriber = getattr(request, "subscriber", None)
    if subscriber is not None:
        return f"{kind}:my:{subscriber.pk}:{digest}"
    return f"{kind}:api:{request.user.pk}:{digest}"


def key_reused() -> ApiError:
    return ApiError(409, "idempotency_key_reused", _("This Idempotency-Key was already used with a different request."))


def _canonical_body(request) -> bytes:
    """A JSON body as sorted, compact JSON, so that the same request sent with other spacing or key order
    is a retry, not a conflict; any other body as sent."""
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        return request.body
    try:
        data = json.loads(request.body)
    except ValueError:
        return request.body
    # "surrogatepass": a lone surrogate (a valid JSON escape) cannot be encoded to UTF-8 and raised
    # UnicodeEncodeError, a 500. The request guard refuses such a body first; this keeps the hash total. Not
    # ensure_ascii=True: every body with Cyrillic would hash otherwise than its stored answer's, and a retry
    # across the upgrade would be a 409.
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def _request_hash(request) -> str:
    return hashlib.sha256(
        request.method.encode() + request.path.encode() + b"\0" + _canonical_body(request)
    ).hexdigest()


def idempotent(status: int, *, access: Callable[..., object], required: bool = False):
    """Wrap a write handler. The write and the stored answer commit together, so a crash leaves neither.

    ``access(request, **handler_kwargs)`` is the handler's own access check (it raises PermissionDenied or
    Http404); it runs before a stored answer is replayed, since the replay skips the handler. ``required``
    refuses a request without the header (400): set it on every endpoint that moves money.
    """

    def decorator(handler):
        @functools.wraps(handler)
        def wrapped(request, *args, **kwargs):
            key = request_key(request, required=required)
            if key is None:
                return Status(status, handler(request, *args, **kwargs))
            digest = _request_hash(request)
            owner = owner_of(request)
            try:
                with transaction.atomic():
                    # The key is taken first: a retry sent while the first request still runs waits here for it
                    # to finish, then finds and replays its answer instead of running the handler again (whose
                    # write would then be refused, "promised_already_open", although the first went through).
                    _take_key(owner, key)
                    existing = IdempotencyRecord.objects.filter(**owner, key=key).first()
                    if existing is None:
                        result = handler(request, *args, **kwargs)
                        body = json.loads(json.dumps(_dump(result), cls=DjangoJSONEncoder))
                        IdempotencyRecord.objects.create(
                            **owner,
                            key=key,
                            method=request.method,
                            path=request.path[:500],
                            request_hash=digest,
                            status_code=status,
                            response_body=body,
                            created_at=clock.now(),
                        )
            except IntegrityError:
                # A concurrent retry with the same key won; our write rolled back with this transaction. The
                # handler has just checked access for this request, so the winner's answer may be given.
                winner = IdempotencyRecord.objects.filter(**owner, key=key).first()
                if winner is None:
                    raise
                return _replay(winner, digest)
            except DatabaseError:
                raise
            except Exception:
                # The handler refused (a 4xx). If a request with this key committed meanwhile (where the key could
                # not be taken first), its answer is the one to give: the retry must not say the request failed.
                existing = IdempotencyRecord.objects.filter(**owner, key=key).first()
                if existing is None:
                    raise
            if existing is not None:
                access(request, *args, **kwargs)
                return _replay(existing, digest)
            return Status(status, body)

        # Ninja builds the request schema from the signature and resolves string annotations (this
        # project uses ``from __future__ import annotations``) in the globals of the function it is
        # given: this module's, where ``SubscriberCreateIn`` is unknown, so the body silently became a
        # query parameter. Resolve them against the handler's own module instead.
        wrapped.__signature__ = inspect.signature(handler, eval_str=True)
        contribute_operation_callback(wrapped, functools.partial(_document_header, required=required))
        return wrapped

    return decorator


def _document_header(operation, *, required: bool) -> None:
    """Show the header in the OpenAPI schema: the decorator reads it from ``request.META``, which ninja
    does not see."""
    if required:
        description = "Required: this request moves money. Send the same key when you retry the same request."
    else:
        description = "Optional. Send the same key when you retry the same request."
    parameter = {
        "in": "header",
        "name": "Idempotency-Key",
        "required": required,
        "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
        "description": description + " A retry gets the first answer; the same key with a different request is a 409.",
    }
    extra = operation.openapi_extra or {}
    operation.openapi_extra = {**extra, "parameters": [*extra.get("parameters", []), parameter]}


def stored_answer(request, key: str):
    """For a handler that cannot run inside ``idempotent``'s transaction: the answer stored for ``key`` by this
    request's owner, replayed (a ``Status``), 409 ``idempotency_key_reused`` when it answered another request,
    None when there is none. The handler's access check must have passed (the owner is the request's own)."""
    record = IdempotencyRecord.objects.filter(**owner_of(request), key=key).first()
    return None if record is None else _replay(record, _request_hash(request))


def store_answer(request, key: str, status: int, body: dict) -> None:
    """Store the answer to ``key``, inside the transaction of the write it answers: a concurrent request with the
    same key fails on the unique ``(owner, key)`` (IntegrityError, its write rolled back) and then gets this
    answer, or 409, from ``stored_answer``."""
    IdempotencyRecord.objects.create(
        **owner_of(request),
        key=key,
        method=request.method,
        path=request.path[:500],
        request_hash=_request_hash(request),
        status_code=status,
        response_body=json.loads(json.dumps(body, cls=DjangoJSONEncoder)),
        created_at=clock.now(),
    )


def _take_key(owner: dict, key: str) -> None:
    """Hold ``owner``'s ``key`` until this transaction ends (PostgreSQL: a transaction-scoped advisory lock on a
    64-bit hash of it; a collision only makes two requests wait for each other). SQLite needs nothing: its
    transactions are IMMEDIATE here (settings), so one writer at a time reads the stored answers."""
    if connection.vendor != "postgresql":
        return
    ((kind, who),) = owner.items()
    name = f"abonent.api.idempotency:{kind}:{who.pk}:{key}"
    lock_id = int.from_bytes(hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_id])


def _dump(result):
    return result.model_dump(mode="json") if hasattr(result, "model_dump") else result


def _replay(record: IdempotencyRecord, digest: str):
    if record.request_hash != digest:
        raise key_reused()
    return Status(record.status_code, record.response_body)
