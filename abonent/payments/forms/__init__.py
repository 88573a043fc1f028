"""Forms of the payments console, one module per concern: ``console`` (the journal, a payment's card, the cash
desk; the forms that move money carry a one-time token), ``autopay`` (a subscriber's autopay settings) and
``agents`` (payment agents, their register)."""

from .autopay import AutopayForm, UnlinkForm
from .console import (
    AccountLookupForm,
    AmountField,
    AssignForm,
    CloseDayForm,
    JournalFilterForm,
    OneTimeForm,
    ReasonForm,
    RefundForm,
    ResolveForm,
    TakePaymentForm,
)

__all__ = [
    "AccountLookupForm",
    "AmountField",
    "AssignForm",
    "AutopayForm",
    "CloseDayForm",
    "JournalFilterForm",
    "OneTimeForm",
    "ReasonForm",
    "RefundForm",
    "ResolveForm",
    "TakePaymentForm",
    "UnlinkForm",
]
