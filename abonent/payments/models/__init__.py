"""Payments: money that comes in through a channel, and what happens to it afterwards.

One module per concern; every model is importable from ``abonent.payments.models``.

- ``payment``: the payment itself (any channel), conflicts of a repeated notice, refunds;
- ``methods``: payment methods saved at a gateway for autopay;
- ``autopay``: autopay plans, their debit attempts, and the outbox of notices to subscribers.
"""

from .autopay import (
    ATTEMPT_OPEN,
    AttemptStatus,
    AutopayAmount,
    AutopayAttempt,
    AutopayMode,
    AutopayPlan,
    NoticeKind,
    PaymentNotice,
)
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
    "ATTEMPT_OPEN",
    "AttemptStatus",
    "AutopayAmount",
    "AutopayAttempt",
    "AutopayMode",
    "AutopayPlan",
    "NoticeKind",
    "Payment",
    "PaymentConflict",
    "PaymentMethod",
    "PaymentNotice",
    "PaymentStatus",
    "Refund",
    "RefundStatus",
    "SavedMethod",
    "SuspenseReason",
]
