"""The interface every transport implements, and what it answers per message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..models import Message


class Result:
    SENT = "sent"  # the provider took it: final
    RETRY = "retry"  # a fault on the way (network, 5xx, rate limit): try again after a backoff
    UNDELIVERABLE = "undeliverable"  # the address cannot take it (not a mobile number, bot blocked): final
    FAILED = "failed"  # refused for good (bad credentials, text rejected): final


@dataclass
class Outcome:
    result: str
    provider_id: str = ""
    error: str = ""  # a language-neutral code (``errors.MessageError``)
    detail: str = ""  # the provider's own words, for the log
    retry_after: float | None = None  # seconds the provider asked us to wait (HTTP 429, Telegram retry_after)


class Transport(Protocol):
    channel: str
    # Messages one call may carry (SMS.ru and SMSC take many in one request; SMTP and Telegram one each).
    max_batch: int

    def send(self, messages: list[Message]) -> list[Outcome]:
        """One ``Outcome`` per message, in order. Never raises for a provider's fault: that is an outcome.
        Every wait has a deadline."""
        ...
