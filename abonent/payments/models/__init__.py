"""Payments: money that comes in through a channel, and what happens to it afterwards.

One module per concern; every model is importable from ``abonent.payments.models``.

- ``payment``: the payment itself (any channel), conflicts of a repeated notice, refunds;
- ``methods``: payment methods saved at a gateway for autopay;
- ``receipts``: fiscal receipts (54-FZ) of payments and refunds.
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
from .receipts import FiscalReceipt, ReceiptOperation, ReceiptStatus

__all__ = [
    "FiscalReceipt",
    "Payment",
    "PaymentConflict",
    "PaymentMethod",
    "PaymentStatus",
    "ReceiptOperation",
    "ReceiptStatus",
    "Refund",
    "RefundStatus",
    "SavedMethod",
    "SuspenseReason",
]
