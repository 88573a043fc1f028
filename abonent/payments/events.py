"""What payments does after commits (its own events: fiscal receipts, autopay) and the events it emits:

- ``payments.payment_received(payment_id)``: a payment credited or put in suspense (its income receipt; the
  subscriber is told through the outbox, not this event: the terminal fast path does not emit it);
- ``payments.payment_cancelled(payment_id)``;
- ``payments.refund_created(refund_id)``: a refund that needs a return receipt;
- ``payments.receipt_done(receipt_id)``, ``payments.receipt_failed(receipt_id)``: a fiscal receipt's outcome;
- ``payments.method_linked(method_id)``, ``payments.method_unlinked(method_id)``;
- ``payments.autopay_enabled(plan_id, subscriber_id)``, ``payments.autopay_disabled(plan_id, subscriber_id)``.

Messages to subscribers do not go through events: they are rows of the ``PaymentNotice`` outbox, written in the
transaction of what they tell; the notifications app delivers them.
"""

from django.db import transaction

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


@on("payments.method_unlinked")
def stop_autopay_of_unlinked_method(*, event: str, method_id: int, **_payload) -> None:
    # Unlinked anywhere (the portal, staff, a gateway's notice): tell the subscriber and turn off the autopay that
    # used it. The daily run also refuses an unlinked method, so a lost event only delays this to the next run.
    from .actions.autopay import stop_autopay_for_method
    from .models import SavedMethod

    with transaction.atomic():
        method = SavedMethod.objects.filter(pk=method_id).first()
        if method is not None:
            stop_autopay_for_method(method, reason="")
