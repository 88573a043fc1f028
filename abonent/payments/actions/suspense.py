"""The suspense queue: money that arrived for no known, open account, assigned or returned by staff; and
conflicts (a repeated payment id with another amount) settled."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from abonent.billing import actions as billing
from abonent.billing import ledger
from abonent.billing.models import TransactionKind
from abonent.core import audit, clock, events
from abonent.staff.permissions import Perm
from abonent.subscribers.models import SubscriberStatus

from ..channels import channel_account, online_refund
from ..checks import key_of
from ..models import Payment, PaymentConflict, PaymentStatus, Refund, RefundStatus
from .common import check, deadline, lock, reason_of
from .intake import queue_received_notice


def _suspense_only(payment: Payment) -> None:
    if payment.status != PaymentStatus.SUSPENSE:
        raise ValidationError(_("This payment is not in suspense."), code="not_in_suspense")


@transaction.atomic
def do_assign_payment(payment: Payment, *, subscriber, acting_user, reason: str = "") -> Payment:
    """Credit a suspense payment to the subscriber staff found for it (suspense → the subscriber's account).
    Staff need the branch of the subscriber it goes to and of the one it was for (a closed account's)."""
    deadline()
    check(acting_user, Perm.PAYMENT_TAKE, subscriber)
    payment = lock(payment)
    check(acting_user, Perm.PAYMENT_TAKE, payment=payment)
    _suspense_only(payment)
    if subscriber.status == SubscriberStatus.CLOSED:
        raise ValidationError(
            {"subscriber": ValidationError(_("The subscriber's account is closed."), code="subscriber_closed")}
        )
    # A payment cancelled back into suspense (a wrong assignment) can be assigned again: a key per assignment.
    assignments = int(payment.details.get("assignments", 0)) + 1
    tx = billing.do_post_payment(
        subscriber,
        amount=payment.amount,
        channel=payment.channel,
        external_id=payment.external_id,
        acting_user=acting_user,
        memo=_("Payment %(id)s assigned from suspense") % {"id": payment.external_id},
        source_account=ledger.system_account("suspense"),
        key=f"payment_assign:{payment.pk}:{assignments}",
    )
    before = {"status": payment.status, "reason": payment.suspense_reason}
    # What the payment was before, so that cancelling a wrong assignment puts it back exactly as it was.
    payment.details = {
        **payment.details,
        "assignments": assignments,
        "before_assign": {"reason": payment.suspense_reason, "subscriber": payment.subscriber_id},
    }
    payment.subscriber = subscriber
    payment.status = PaymentStatus.CREDITED
    payment.suspense_reason = ""
    payment.credited_at = clock.now()
    payment.assign_transaction = tx
    payment.status_reason = (reason or "").strip()[:500]
    payment.save(
        update_fields=[
            "details",
            "subscriber",
            "status",
            "suspense_reason",
            "credited_at",
            "assign_transaction",
            "status_reason",
        ]
    )
    audit.record(
        actor=acting_user,
        action="payments.assigned",
        obj=payment,
        subscriber_id=subscriber.pk,
        before=before,
        after={"amount": payment.amount, "subscriber": subscriber.account_number},
        reason=payment.status_reason,
    )
    # Once per payment: one cancelled back into suspense and assigned again is not told a second time.
    queue_received_notice(payment)
    events.emit("payments.payment_received", payment_id=payment.pk)
    return payment


def do_return_payment(payment: Payment, *, reason: str, acting_user, key: str | None = None) -> Refund:
    """Send a suspense payment back to the payer whole (suspense → the channel's account), with a reason.
    ``key`` makes a retry answer with the first return; without one, the payment's own return is the key."""
    reason = reason_of(reason)
    stored_key = f"return:{key_of(key)}" if key is not None else None
    try:
        with transaction.atomic():
            deadline()
            check(acting_user, Perm.PAYMENT_REFUND)
            payment = lock(payment)
            check(acting_user, Perm.PAYMENT_REFUND, payment=payment)
            # The payment's returns so far: a return the gateway refused puts it back in suspense, and returning it
            # again is a new return (its own ledger key and, without a caller's key, its own refund key).
            number = Refund.objects.filter(payment=payment).count() + 1
            if stored_key is None:
                stored_key = f"return:payment:{payment.pk}:{number}"
            existing = Refund.objects.filter(key=stored_key).first()
            if existing is not None:
                if existing.payment_id != payment.pk:
                    raise ValidationError(_("This key was used for another refund."), code="idempotency_key_reused")
                return existing
            _suspense_only(payment)
            return _return(payment, reason=reason, acting_user=acting_user, key=stored_key, number=number)
    except IntegrityError:
        existing = Refund.objects.filter(key=stored_key).first()
        if existing is None:
            raise
        if existing.payment_id != payment.pk:
            raise ValidationError(_("This key was used for another refund."), code="idempotency_key_reused") from None
        return existing


def _return(payment: Payment, *, reason: str, acting_user, key: str, number: int) -> Refund:
    user = acting_user if getattr(acting_user, "pk", None) else None
    suspense, channel = ledger.system_account("suspense"), channel_account(payment.channel)
    tx, _created = ledger.post(
        key=f"payment_return:{payment.pk}:{number}",
        kind=TransactionKind.REFUND,
        effective_date=clock.today(),
        legs=[(suspense.pk, -payment.amount), (channel.pk, payment.amount)],
        acting_user=user,
        memo=reason,
    )
    now = clock.now()
    # Through a gateway that refunds by itself the payer gets the money back only when the gateway is asked: the
    # return is pending until it answers, and one it refuses puts the payment back in suspense (do_finish_refund).
    starter = online_refund(payment.channel)
    refund = Refund.objects.create(
        payment=payment,
        key=key,
        amount=payment.amount,
        reason=reason,
        status=RefundStatus.PENDING if starter else RefundStatus.SUCCEEDED,
        transaction=tx,
        created_by=user,
        created_at=now,
        finished_at=None if starter else now,
    )
    if starter is not None:
        transaction.on_commit(lambda: starter(refund.pk))
    payment.status = PaymentStatus.RETURNED
    payment.status_reason = reason
    payment.refunded_amount = payment.amount
    payment.save(update_fields=["status", "status_reason", "refunded_amount"])
    audit.record(
        actor=acting_user,
        action="payments.returned",
        obj=payment,
        subscriber_id=payment.subscriber_id,
        after={"amount": payment.amount},
        reason=reason,
    )
    events.emit("payments.refund_created", refund_id=refund.pk)  # a return receipt, when it had a receipt
    return refund


@transaction.atomic
def do_resolve_conflict(conflict: PaymentConflict, *, resolution: str, acting_user) -> PaymentConflict:
    """Mark a conflict settled with the channel (the money, if any, is then taken in by its own id)."""
    deadline()
    resolution = reason_of(resolution, "resolution")
    conflict = PaymentConflict.objects.select_for_update().get(pk=conflict.pk)
    check(acting_user, Perm.PAYMENT_TAKE, payment=conflict.payment)
    if conflict.resolved_at is not None:
        raise ValidationError(_("This conflict is settled already."), code="conflict_resolved")
    conflict.resolved_at = clock.now()
    conflict.resolved_by = acting_user if getattr(acting_user, "pk", None) else None
    conflict.resolution = resolution
    conflict.save(update_fields=["resolved_at", "resolved_by", "resolution"])
    audit.record(
        actor=acting_user,
        action="payments.conflict_resolved",
        obj=conflict.payment,
        subscriber_id=conflict.payment.subscriber_id,
        after={"amount": conflict.amount},
        reason=resolution,
    )
    return conflict
