"""Reads of payments, one module per concern: ``payments`` (what a staff user may see, pages of payments,
statements), ``receipts`` (fiscal receipts), ``gateway`` (gateways, their notices, checkouts). The first two are
re-exported here: ``from abonent.payments import selectors``."""

from .payments import (
    PaymentFilters,
    PaymentPage,
    decode_cursor,
    encode_cursor,
    get_payment,
    list_payments,
    list_statements,
    statement_lines,
    visible_payments,
)
from .receipts import RECEIPTS_NOT_DONE, receipts_not_done, receipts_of_payment

__all__ = [
    "RECEIPTS_NOT_DONE",
    "PaymentFilters",
    "PaymentPage",
    "decode_cursor",
    "encode_cursor",
    "get_payment",
    "list_payments",
    "list_statements",
    "receipts_not_done",
    "receipts_of_payment",
    "statement_lines",
    "visible_payments",
]
