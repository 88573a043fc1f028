"""Writes of payments, one module per concern. Every channel takes money in through ``intake``.

- ``intake``: ``do_receive_payment``, once per ``(channel, external_id)``; unknown and closed accounts go to
  suspense; a repeated id with another amount is a conflict staff see;
- ``suspense``: a suspense payment assigned to its subscriber or returned to the payer;
- ``methods``: payment methods saved for autopay, linked and unlinked;
- ``refunds``: refunds (full or partial) and cancellation of a mistaken entry by reversal;
- ``cashdesk``: cash taken at the office, the cashier's day closed; one-time tokens of console forms.
"""

from .cashdesk import (
    AlreadySubmitted,
    do_close_cash_day,
    do_record_submission,
    do_take_cash_payment,
    new_form_token,
)
from .intake import Intake, do_receive_payment
from .methods import do_link_method, do_unlink_method
from .refunds import can_cancel, do_cancel_payment, do_finish_refund, do_refund_payment
from .suspense import do_assign_payment, do_resolve_conflict, do_return_payment

__all__ = [
    "AlreadySubmitted",
    "Intake",
    "can_cancel",
    "do_assign_payment",
    "do_cancel_payment",
    "do_close_cash_day",
    "do_finish_refund",
    "do_link_method",
    "do_receive_payment",
    "do_record_submission",
    "do_refund_payment",
    "do_resolve_conflict",
    "do_return_payment",
    "do_take_cash_payment",
    "do_unlink_method",
    "new_form_token",
]
