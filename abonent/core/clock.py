"""The one clock every action and selector reads.

``now()`` is timezone-aware UTC; ``today()`` is the operator's local date (``TIME_ZONE``), which is what
billing periods are cut by. Tests move time either with ``time-machine`` or with ``travel_to`` here,
which also works inside subprocesses that import the override from ``ABONENT_CLOCK`` (ISO instant).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.utils import timezone

_override: ContextVar[dt.datetime | None] = ContextVar("abonent_clock_override", default=None)


def _env_override() -> dt.datetime | None:
    raw = os.environ.get("ABONENT_CLOCK")
    if not raw:
        return None
    value = dt.datetime.fromisoformat(raw)
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


# Read once, when the process starts: a subprocess gets the instant in its environment. Looking it up on
# every call cost the RADIUS server a third of its per-packet time (os.environ.get raises and catches a
# KeyError when the variable is unset).
_ENV_OVERRIDE = _env_override() if os.environ.get("ABONENT_CLOCK") else None


def now() -> dt.datetime:
    override = _override.get() or _ENV_OVERRIDE
    return override if override is not None else dt.datetime.now(dt.UTC)


def today() -> dt.date:
    return timezone.localtime(now()).date()


@contextmanager
def travel_to(moment: dt.datetime | dt.date) -> Iterator[None]:
    """Freeze ``now()`` at ``moment`` (a date means local midnight) for the ``with`` block."""
    if isinstance(moment, dt.date) and not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    token = _override.set(moment)
    try:
        yield
    finally:
        _override.reset(token)
