"""Payments: money that comes in through a channel, and what happens to it afterwards.

One module per concern; every model is importable from ``abonent.payments.models``.

- ``payment``: the payment itself (any channel), conflicts of a repeated notice, refunds;
- ``methods``: payment methods saved at a gateway for autopay;
- ``gateway``: online checkouts at a gateway and the provider's notices;
- ``receipts``: fiscal receipts (54-FZ) of payments and refunds;
- ``statements``: bank statements imported (1CClientBankExchange) and their lines;
- ``cashdesk``: a cashier's day at the cash desk, and the one-time tokens of console forms;
- ``autopay``: autopay plans, their debit attempts, and the outbox of notices to subscribers;
- ``agents``: payment agents (terminal networks, bank apps) speaking the ``check``/``pay`` protocol.
"""

from .agents import Agent
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
from .cashdesk import CashDay, FormSubmission
from .gateway import Checkout, CheckoutStatus, EventOutcome, ProviderEvent
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
from .statements import BankStatement, LineStatus, MatchRule, StatementLine

__all__ = [
    "ATTEMPT_OPEN",
    "Agent",
    "AttemptStatus",
    "AutopayAmount",
    "AutopayAttempt",
    "AutopayMode",
    "AutopayPlan",
    "BankStatement",
    "CashDay",
    "Checkout",
    "CheckoutStatus",
    "EventOutcome",
    "FiscalReceipt",
    "FormSubmission",
    "LineStatus",
    "MatchRule",
    "NoticeKind",
    "Payment",
    "PaymentConflict",
    "PaymentMethod",
    "PaymentNotice",
    "PaymentStatus",
    "ProviderEvent",
    "ReceiptOperation",
    "ReceiptStatus",
    "Refund",
    "RefundStatus",
    "SavedMethod",
    "StatementLine",
    "SuspenseReason",
]
