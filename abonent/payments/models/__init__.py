"""Payments: money that comes in through a channel, and what happens to it afterwards.

One module per concern; every model is importable from ``abonent.payments.models``.

- ``payment``: the payment itself (any channel), conflicts of a repeated notice, refunds;
- ``methods``: payment methods saved at a gateway for autopay;
- ``statements``: bank statements imported (1CClientBankExchange) and their lines.
"""

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
from .statements import BankStatement, LineStatus, MatchRule, StatementLine

__all__ = [
    "BankStatement",
    "LineStatus",
    "MatchRule",
    "Payment",
    "PaymentConflict",
    "PaymentMethod",
    "PaymentStatus",
    "Refund",
    "RefundStatus",
    "SavedMethod",
    "StatementLine",
    "SuspenseReason",
]
