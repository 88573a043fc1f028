"""Helpers for payments tests: a gateway that behaves as the interface promises (used by tests/payments).

``FakeGateway`` keeps its payments the way a provider does: one payment per idempotence key (a repeat of a key
answers with the same payment and takes no more money), found by id with ``get_payment``. What a charge does is
scripted: ``fake.script.append(outcome)`` with ``"succeeded"``, ``"pending"``, ``"timeout"`` (the provider takes the
money but the answer is lost), ``("declined", code, soft)`` or ``"broken"`` (a non-retryable error); unscripted
charges succeed. ``fake.unreachable = n``: the next ``n`` calls time out before reaching the provider.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal

from . import channels, gateways
from .gateways import GatewayDeclined, GatewayError, GatewayPayment


class FakeGateway:
    code = "fakepay"

    def __init__(self):
        self.script: list = []
        self.payments: dict[str, GatewayPayment] = {}
        self.by_key: dict[str, str] = {}
        self.calls: list[tuple] = []
        self.unreachable = 0
        self._lock = threading.Lock()

    @property
    def taken(self) -> Decimal:
        """The money the provider took: its succeeded payments."""
        return sum((p.amount for p in self.payments.values() if p.status == "succeeded"), Decimal("0.00"))

    def charges(self) -> list[tuple]:
        return [c for c in self.calls if c[0] == "charge"]

    def settle(self, payment_id: str, status: str = "succeeded", **fields) -> None:
        """The provider finishes a pending payment."""
        paid = status == "succeeded"
        self.payments[payment_id] = replace(self.payments[payment_id], status=status, paid=paid, **fields)

    def _reach(self) -> None:
        if self.unreachable > 0:
            self.unreachable -= 1
            raise GatewayError("connect timed out", retryable=True, code="unreachable")

    def charge_saved_method(self, *, amount, method_id, description, key, metadata=None) -> GatewayPayment:
        with self._lock:
            self.calls.append(("charge", key, Decimal(amount), method_id))
            self._reach()
            if key in self.by_key:
                payment = self.payments[self.by_key[key]]
                if payment.status == "canceled":
                    raise GatewayDeclined("declined", soft=payment.decline_soft, code=payment.decline_code)
                return payment
            outcome = self.script.pop(0) if self.script else "succeeded"
            payment_id = f"fp-{len(self.payments) + 1}"
            if isinstance(outcome, tuple) and outcome[0] == "declined":
                _kind, code, soft = outcome
                self.payments[payment_id] = GatewayPayment(
                    id=payment_id, status="canceled", amount=Decimal(amount), decline_code=code, decline_soft=soft
                )
                self.by_key[key] = payment_id
                raise GatewayDeclined(f"declined: {code}", soft=soft, code=code)
            if outcome == "broken":
                raise GatewayError("400 invalid_request", retryable=False, code="invalid_request")
            status = "pending" if outcome == "pending" else "succeeded"
            paid = status == "succeeded"
            payment = GatewayPayment(
                id=payment_id, status=status, amount=Decimal(amount), paid=paid, metadata=metadata or {}
            )
            self.payments[payment_id] = payment
            self.by_key[key] = payment_id
            if outcome == "timeout":
                raise GatewayError("timed out", retryable=True)
            return payment

    def get_payment(self, payment_id: str) -> GatewayPayment:
        with self._lock:
            self.calls.append(("get", payment_id))
            self._reach()
            try:
                return self.payments[payment_id]
            except KeyError:
                raise GatewayError("404 not_found", retryable=False, code="not_found") from None


@contextmanager
def fake_gateway(code: str = "fakepay"):
    """A ``FakeGateway`` registered as gateway and payment channel ``code`` for the block."""
    fake = FakeGateway()
    fake.code = code
    gateways.register(code, lambda: fake)
    channels.register_gateway(code)
    try:
        yield fake
    finally:
        gateways.base._factories.pop(code, None)
        channels._clearing_channels.discard(code)
