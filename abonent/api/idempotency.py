"""``Idempotency-Key`` support for API writes (Stripe-style): retries are answered, not repeated."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from ninja import Status

from abonent.core import clock

from .errors import ApiError
from .models import IdempotencyRecord

HEADER = "HTTP_IDEMPOTENCY_KEY"


def _request_hash(request) -> str:
    return hashlib.sha256(request.method.encode() + request.path.encode() + b"\0" + request.body).hexdigest()


def idempotent(status: int):
    """Wrap a write handler. The write and the stored answer commit together, so a crash leaves neither."""

    def decorator(handler):
        @functools.wraps(handler)
        def wrapped(request, *args, **kwargs):
            key = request.META.get(HEADER, "").strip()
            if not key:
                return Status(status, handler(request, *args, **kwargs))
            if len(key) > 200:
                raise ApiError(400, "idempotency_key_invalid", _("The Idempotency-Key header is too long."))
            digest = _request_hash(request)
            existing = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
            if existing is not None:
                return _replay(existing, digest)
            try:
                with transaction.atomic():
                    result = handler(request, *args, **kwargs)
                    body = json.loads(json.dumps(_dump(result), cls=DjangoJSONEncoder))
                    IdempotencyRecord.objects.create(
                        user=request.user,
                        key=key,
                        method=request.method,
                        path=request.path[:500],
                        request_hash=digest,
                        status_code=status,
                        response_body=body,
                        created_at=clock.now(),
                    )
            except IntegrityError:
                # A concurrent retry with the same key won; our write rolled back with this transaction.
                winner = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
                if winner is None:
                    raise
                return _replay(winner, digest)
            return Status(status, body)

        # Ninja builds the request schema from the signature and resolves string annotations (this
        # project uses ``from __future__ import annotations``) in the globals of the function it is
        # given: this module's, where ``SubscriberCreateIn`` is unknown, so the body silently became a
        # query parameter. Resolve them against the handler's own module instead.
        wrapped.__signature__ = inspect.signature(handler, eval_str=True)
        return wrapped

    return decorator


def _dump(result):
    return result.model_dump(mode="json") if hasattr(result, "model_dump") else result


def _replay(record: IdempotencyRecord, digest: str):
    if record.request_hash != digest:
        raise ApiError(
            409, "idempotency_key_reused", _("This Idempotency-Key was already used with a different request.")
        )
    return Status(record.status_code, record.response_body)
