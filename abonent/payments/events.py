"""What payments does after commits (its own events: fiscal receipts) and the events it emits:

- ``payments.payment_received(payment_id)``: a payment credited or put in suspense (receipts, notifications);
- ``payments.payment_cancelled(payment_id)``;
- ``payments.refund_created(refund_id)``: a refund that needs a return receipt;
- ``payments.receipt_done(receipt_id)``, ``payments.receipt_failed(receipt_id)``: a fiscal receipt's outcome.
"""

from abonent.core.events import on


@on("payments.payment_received")
def queue_payment_receipt(*, event: str, payment_id: int, **_payload) -> None:
    from .actions.receipts import do_queue_payment_receipt

    do_queue_payment_receipt(payment_id)


@on("payments.refund_created")
def queue_refund_receipt(*, event: str, refund_id: int, **_payload) -> None:
    from .actions.receipts import do_queue_refund_receipt

    do_queue_refund_receipt(refund_id)


@on("payments.payment_cancelled")
def drop_or_return_receipt(*, event: str, payment_id: int, **_payload) -> None:
    from .actions.receipts import do_handle_payment_cancelled

    do_handle_payment_cancelled(payment_id)
