"""Writes of payments, one module per concern. Every channel takes money in through ``intake``.

- ``intake``: ``do_receive_payment``, once per ``(channel, external_id)``; unknown and closed accounts go to
  suspense; a repeated id with another amount is a conflict staff see;
- ``suspense``: a suspense payment assigned to its subscriber or returned to the payer;
- ``methods``: payment methods saved for autopay, linked and unlinked;
- ``refunds``: refunds (full or partial) and cancellation of a mistaken entry by reversal;
- ``autopay``: autopay turned on, changed and off, and the outbox of notices to subscribers;
- ``autopay_run``: the daily autopay run (reminders, debits, retries) and the follow-up of debits in flight.
"""

from .autopay import (
    do_disable_autopay,
    do_enable_autopay,
    do_mark_notices_delivered,
    do_unlink_method_and_stop_autopay,
    queue_notice,
)
from .autopay_run import do_run_autopay, do_sync_autopay
from .intake import Intake, do_receive_payment
from .methods import do_link_method, do_unlink_method
from .refunds import can_cancel, do_cancel_payment, do_finish_refund, do_refund_payment
from .suspense import do_assign_payment, do_resolve_conflict, do_return_payment

__all__ = [
    "Intake",
    "can_cancel",
    "do_assign_payment",
    "do_cancel_payment",
    "do_disable_autopay",
    "do_enable_autopay",
    "do_finish_refund",
    "do_link_method",
    "do_mark_notices_delivered",
    "do_receive_payment",
    "do_refund_payment",
    "do_resolve_conflict",
    "do_return_payment",
    "do_run_autopay",
    "do_sync_autopay",
    "do_unlink_method",
    "do_unlink_method_and_stop_autopay",
    "queue_notice",
]
