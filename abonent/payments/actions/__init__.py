"""Writes of payments, one module per concern. Every channel takes money in through ``intake``.

- ``intake``: ``do_receive_payment``, once per ``(channel, external_id)``; unknown and closed accounts go to
  suspense; a repeated id with another amount is a conflict staff see;
- ``suspense``: a suspense payment assigned to its subscriber or returned to the payer;
- ``methods``: payment methods saved for autopay, linked and unlinked;
- ``refunds``: refunds (full or partial) and cancellation of a mistaken entry by reversal;
- ``checkouts``: online payments at a gateway, started and their outcome credited once;
- ``notices``: a gateway's notices, stored once and acted on through the gateway's own answer;
- ``gateway_refunds``: refunds sent back through the gateway that took the payment;
- ``receipts``: fiscal receipts (54-FZ) queued for payments and refunds, sent, polled and retried;
- ``statements``: a bank statement imported, each incoming line matched and taken in;
- ``cashdesk``: cash taken at the office, the cashier's day closed; one-time tokens of console forms;
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
from .cashdesk import (
    AlreadySubmitted,
    do_close_cash_day,
    do_record_submission,
    do_take_cash_payment,
    do_take_staff_payment,
    new_form_token,
)
from .checkouts import do_start_checkout, do_sync_checkout, sync_pending_checkouts
from .gateway_refunds import do_push_refund, push_pending_refunds, start_gateway_refund
from .intake import Intake, do_receive_payment
from .methods import do_link_method, do_unlink_method
from .notices import do_handle_notification
from .receipts import (
    do_advance_receipt,
    do_apply_report,
    do_handle_payment_cancelled,
    do_queue_payment_receipt,
    do_queue_refund_receipt,
    do_receipt_callback,
    do_retry_receipt,
    process_due_receipts,
)
from .refunds import can_cancel, do_cancel_payment, do_finish_refund, do_refund_payment
from .statements import StatementImport, do_import_statement
from .suspense import do_assign_payment, do_resolve_conflict, do_return_payment

__all__ = [
    "AlreadySubmitted",
    "Intake",
    "StatementImport",
    "can_cancel",
    "do_advance_receipt",
    "do_apply_report",
    "do_assign_payment",
    "do_cancel_payment",
    "do_close_cash_day",
    "do_disable_autopay",
    "do_enable_autopay",
    "do_finish_refund",
    "do_handle_notification",
    "do_handle_payment_cancelled",
    "do_import_statement",
    "do_link_method",
    "do_mark_notices_delivered",
    "do_push_refund",
    "do_queue_payment_receipt",
    "do_queue_refund_receipt",
    "do_receipt_callback",
    "do_receive_payment",
    "do_record_submission",
    "do_refund_payment",
    "do_resolve_conflict",
    "do_retry_receipt",
    "do_return_payment",
    "do_run_autopay",
    "do_start_checkout",
    "do_sync_autopay",
    "do_sync_checkout",
    "do_take_cash_payment",
    "do_take_staff_payment",
    "do_unlink_method",
    "do_unlink_method_and_stop_autopay",
    "new_form_token",
    "process_due_receipts",
    "push_pending_refunds",
    "queue_notice",
    "start_gateway_refund",
    "sync_pending_checkouts",
]
