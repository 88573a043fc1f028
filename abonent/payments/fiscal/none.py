"""The provider of an installation without a cash register: nothing is fiscalized, receipts are not required."""

from __future__ import annotations

from .base import CallbackRejected, FiscalError, FiscalReport


class NoFiscalProvider:
    code = "none"
    issues_receipts = False

    def send(self, *, operation: str, external_id: str, document: dict, moment) -> str:
        raise FiscalError("no cash register is configured", retryable=False, code="no_provider")

    def get_report(self, uuid: str) -> FiscalReport:
        raise FiscalError("no cash register is configured", retryable=False, code="no_provider")

    def parse_callback(self, body: bytes) -> str:
        raise CallbackRejected("no cash register is configured")
