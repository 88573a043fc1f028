"""What payments does after other apps' commits and its own, and the events it emits:

- ``payments.payment_received(payment_id)``: a payment credited or put in suspense (receipts, notifications);
- ``payments.payment_cancelled(payment_id)``;
- ``payments.refund_created(refund_id)``: a refund that needs a return receipt;
- ``payments.autopay_enabled(plan_id, subscriber_id)``, ``payments.autopay_disabled(plan_id, subscriber_id)``.

Messages to subscribers do not go through events: they are rows of the ``PaymentNotice`` outbox, written in the
transaction of what they tell; the notifications app delivers them.
"""

from django.db import transaction

from abonent.core import events


@events.on("payments.method_unlinked")
def stop_autopay_of_unlinked_method(event: str, method_id: int, **_payload) -> None:
    # Unlinked anywhere (the portal, staff, a gateway's notice): tell the subscriber and turn off the autopay that
    # used it. The daily run also refuses an unlinked method, so a lost event only delays this to the next run.
    from .actions.autopay import stop_autopay_for_method
    from .models import SavedMethod

    with transaction.atomic():
        method = SavedMethod.objects.filter(pk=method_id).first()
        if method is not None:
            stop_autopay_for_method(method, reason="")
