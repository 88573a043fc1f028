"""The interface every fiscal provider implements (an online cash-register service), and their registry.

A provider is asked to register a document under *our* ``external_id`` (stable across retries: the provider
deduplicates by it) and answers with its own id (``uuid``); the fiscal attributes come later, from its report
(polled, or fetched again when its callback arrives: a callback's body is never trusted). Every call has a
deadline. ``FiscalError.retryable`` says whether the same request may simply be sent again later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


class FiscalError(Exception):
    """The provider could not be asked, or refused. ``retryable``: send the same request again later (a timeout,
    a 5xx, the provider busy); otherwise the receipt fails until staff fix the cause (``code`` says which)."""

    def __init__(self, message: str, *, retryable: bool, code: str = ""):
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class CallbackRejected(Exception):
    """A callback that cannot be about one of our receipts (not JSON, no uuid)."""


@dataclass(frozen=True)
class FiscalReport:
    """A document as the provider sees it: ``status`` ``wait``, ``done`` or ``fail`` (``error`` says why)."""

    uuid: str
    status: str
    error: str = ""
    fn_number: str = ""
    fiscal_receipt_number: int | None = None
    fiscal_document_number: int | None = None
    fiscal_document_attribute: int | None = None
    ecr_registration_number: str = ""
    shift_number: int | None = None
    receipt_datetime: object = None  # an aware datetime
    total: Decimal | None = None
    ofd_url: str = ""
    raw: dict = field(default_factory=dict)


class FiscalProvider(Protocol):
    code: str
    # False for a provider that issues nothing (``none``): receipts are recorded as not required.
    issues_receipts: bool

    def send(self, *, operation: str, external_id: str, document: dict, moment: dt.datetime) -> str:
        """Register ``document`` (the ``receipt`` block) as ``operation``, dated ``moment`` (the same on every
        retry); the provider's uuid. A repeat of an ``external_id`` it already holds answers with that
        document's uuid, never a second document."""
        ...

    def get_report(self, uuid: str) -> FiscalReport: ...

    def parse_callback(self, body: bytes) -> str:
        """The uuid a callback is about (raises ``CallbackRejected``); the caller fetches the report itself."""
        ...


_factories: dict[str, Callable[[], FiscalProvider]] = {}


def register(code: str, factory: Callable[[], FiscalProvider]) -> None:
    _factories[code] = factory


def registered() -> list[str]:
    return sorted(_factories)


def get(code: str) -> FiscalProvider:
    try:
        factory = _factories[code]
    except KeyError:
        raise FiscalError(f"no fiscal provider {code!r}", retryable=False, code="no_provider") from None
    return factory()
