"""Payments: money that comes in through a channel, and what happens to it afterwards.

One module per concern; every model is importable from ``abonent.payments.models``.

- ``payment``: the payment itself (any channel), conflicts of a repeated notice, refunds;
- ``methods``: payment methods saved at a gateway for autopay;
- ``agents``: payment agents (terminal networks, bank apps) speaking the ``check``/``pay`` protocol.
"""

from .agents import Agent
from .methods import SavedMethod
from .payment import (
    Payment,
    PaymentConflict,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundStatus,
    SuspenseReason,
)

__all__ = [
    "Agent",
    "Payment",
    "PaymentConflict",
    "PaymentMethod",
    "PaymentStatus",
    "Refund",
    "RefundStatus",
    "SavedMethod",
    "SuspenseReason",
]
