"""The interface every transport implements, what it answers per message, and the ``Budget`` it asks before each
step of a batch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from ..models import Message


class Result:
    SENT = "sent"  # the provider took it: final
    RETRY = "retry"  # a fault on the way (network, 5xx, rate limit): try again after a backoff
    UNDELIVERABLE = "undeliverable"  # the address cannot take it (not a mobile number, bot blocked): final
    FAILED = "failed"  # refused for good (bad credentials, text rejected): final
    NOT_TRIED = "released"  # not started: the worker's claim ran out of time; the attempt is given back


@dataclass
class Outcome:
    result: str
    provider_id: str = ""
    error: str = ""  # a language-neutral code (``errors.MessageError``)
    detail: str = ""  # the provider's own words, for the log
    retry_after: float | None = None  # seconds the provider asked us to wait (HTTP 429, Telegram retry_after)


class Budget:
    """Whether a transport may start one more step of its batch (one request, one e-mail, one ``sendMessage``).

    A batch sent one by one can take far longer than one call: the worker's claim (its lease) must still hold
    when each step starts, or another worker may have claimed the same messages and be sending them too. The
    worker (``delivery``) keeps the lease renewed while steps run and moves ``held_until`` on; a transport asks
    ``allows()`` before each step and answers ``Result.NOT_TRIED`` for every message it did not start. Times are
    ``time.monotonic()`` seconds; ``None`` is no bound (a transport called outside the worker)."""

    def __init__(self, *, start_until: float | None = None, held_until: float | None = None):
        self.start_until = start_until  # no new step after this: the batch's share of the claim is used up
        self.held_until = held_until  # the lease is ours until about then (renewed by the worker)
        self.lost = False  # the worker found its claim taken: start nothing more

    def allows(self) -> bool:
        if self.lost:
            return False
        now = time.monotonic()
        if self.start_until is not None and now > self.start_until:
            return False
        return self.held_until is None or now < self.held_until


UNBOUNDED = Budget()


def not_tried(count: int) -> list[Outcome]:
    return [Outcome(Result.NOT_TRIED) for _ in range(count)]


class Transport(Protocol):
    channel: str
    # Messages one call may carry (SMS.ru and SMSC take many in one request; SMTP and Telegram one each).
    max_batch: int

    def send(self, messages: list[Message], budget: Budget = UNBOUNDED) -> list[Outcome]:
        """One ``Outcome`` per message, in order. Never raises for a provider's fault: that is an outcome.
        Every wait has a deadline; ``budget.allows()`` is asked before each step (``Result.NOT_TRIED`` if not)."""
        ...
