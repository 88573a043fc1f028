"""Payments: money that comes in through a channel, and what happens to it afterwards.

One module per concern; every model is importable from ``abonent.payments.models``.

- ``payment``: the payment itself (any channel), conflicts of a repeated notice, refunds;
- ``methods``: payment methods saved at a gateway for autopay;
- ``cashdesk``: a cashier's day at the cash desk, and the one-time tokens of console forms.
"""

from .cashdesk import CashDay, FormSubmission
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
    "CashDay",
    "FormSubmission",
    "Payment",
    "PaymentConflict",
    "PaymentMethod",
    "PaymentStatus",
    "Refund",
    "RefundStatus",
    "SavedMethod",
    "SuspenseReason",
]
