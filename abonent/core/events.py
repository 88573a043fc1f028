"""Domain events delivered after commit.

An action calls ``emit("subscriber.created", subscriber_id=...)`` inside its transaction; handlers
registered with ``@on("subscriber.created")`` run only once the transaction commits, and never if it
rolls back. Handlers should be quick: anything slow or external enqueues a task (which is itself
transactional with the database task backend). Payloads are ids and plain values, never model
instances, so a handler always reads fresh state.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

Handler = Callable[..., None]
_handlers: dict[str, list[Handler]] = defaultdict(list)


def on(event: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if handler not in _handlers[event]:
            _handlers[event].append(handler)
        return handler

    return register


def handlers_for(event: str) -> list[Handler]:
    return list(_handlers.get(event, ())) + list(_handlers.get("*", ()))


def _dispatch(event: str, payload: dict[str, Any]) -> None:
    for handler in handlers_for(event):
        try:
            handler(event=event, **payload)
        except Exception:
            # One broken subscriber must not stop the others; the change itself is committed already.
            logger.exception("event handler %s failed for %s", getattr(handler, "__name__", handler), event)


def emit(event: str, **payload: Any) -> None:
    transaction.on_commit(partial(_dispatch, event, payload), robust=False)
