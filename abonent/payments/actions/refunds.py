"""Money given back: a refund of a credited payment (full or partial) and the cancellation of a mistaken entry.

A refund never exceeds what is left of the payment (``refunded_amount``, checked under the payment's lock and
by a check constraint) nor the subscriber's balance (money already spent on fees is not handed out). It leaves
the subscriber's account at once, through the channel's account; a gateway that refunds by itself is then
asked after commit (``channels.online_refund``), and a refund it refuses is reversed back onto the balance.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing import actions as billing
from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.core import audit, clock, events
from abonent.core.money import format_money
from abonent.staff.permissions import Perm, has_perm

from ..channels import channel_account, online_refund
from ..checks import key_of, payment_amount
from ..models import Payment, PaymentStatus, Refund, RefundStatus, SuspenseReason
from ..signals import refund_recorded
from .cashdesk import is_day_closed, lock_cash_day_of
from .common import check, deadline, lock, reason_of


def do_refund_payment(payment: Payment, *, amount, reason: str, acting_user, key: str) -> Refund:
    """Refund ``amount`` of a credited payment to the payer. ``key`` (the API's Idempotency-Key, a form's token)
    makes a retry return the first refund — after the same access checks, and looked up under the payment's
    lock, so a retry racing the first request waits for it and answers with it."""
    amount = payment_amount(amount)
    reason = reason_of(reason)
    stored_key = f"refund:{key_of(key)}"
    try:
        with transaction.atomic():
            deadline()
            check(acting_user, Perm.PAYMENT_REFUND)
            payment = lock(payment)
            check(acting_user, Perm.PAYMENT_REFUND, payment=payment)
            existing = Refund.objects.filter(key=stored_key).first()
            if existing is not None:
                return _same_refund(existing, payment, amount)
            refund = _refund(payment, amount=amount, reason=reason, acting_user=acting_user, key=stored_key)
    except IntegrityError:
        existing = Refund.objects.filter(key=stored_key).first()
        if existing is None:
            raise
        return _same_refund(existing, payment, amount)
    starter = online_refund(refund.payment.channel)
    if starter is not None:
        transaction.on_commit(lambda: starter(refund.pk))
    return refund


def _same_refund(existing: Refund, payment: Payment, amount) -> Refund:
    if existing.payment_id != payment.pk or existing.amount != amount:
        raise ValidationError(_("This key was used for another refund."), code="idempotency_key_reused")
    return existing


def _refund(payment: Payment, *, amount, reason: str, acting_user, key: str) -> Refund:
    if payment.status != PaymentStatus.CREDITED:
        raise ValidationError(_("Only a credited payment can be refunded."), code="payment_not_credited")
    if amount > payment.refundable:
        raise ValidationError(
            {
                "amount": ValidationError(
                    _("At most %(left)s of this payment can still be refunded.")
                    % {"left": format_money(payment.refundable)},
                    code="refund_exceeds_payment",
                )
            }
        )
    ledger.subscriber_account(payment.subscriber_id, lock=True)
    # The subscriber's own money: the balance without an open promised payment's credit, which is the ISP's.
    balance = get_balance(payment.subscriber)
    own = balance.balance - balance.promised
    if amount > own:
        raise ValidationError(
            {
                "amount": ValidationError(
                    _("The subscriber has %(own)s of their own: money spent on services or lent is not refunded.")
                    % {"own": format_money(max(own, 0))},
                    code="refund_exceeds_balance",
                )
            }
        )
    gateway = online_refund(payment.channel) is not None
    refund = Refund.objects.create(
        payment=payment,
        key=key,
        amount=amount,
        reason=reason,
        status=RefundStatus.PENDING if gateway else RefundStatus.SUCCEEDED,
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
        created_at=clock.now(),
        finished_at=None if gateway else clock.now(),
    )
    refund.transaction = billing.do_post_refund(
        payment.subscriber,
        amount=amount,
        destination_account=channel_account(payment.channel),
        key=f"refund:{refund.pk}",
        acting_user=acting_user if getattr(acting_user, "pk", None) else None,
        memo=_("Refund of payment %(id)s: %(reason)s") % {"id": payment.external_id, "reason": reason},
    )
    refund.save(update_fields=["transaction"])
    Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") + amount)
    refund_recorded.send(sender=Payment, payment_id=payment.pk, refund_id=refund.pk)
    audit.record(
        actor=acting_user,
        action="payments.refunded",
        obj=payment,
        subscriber_id=payment.subscriber_id,
        after={"amount": amount, "status": refund.status},
        reason=reason,
    )
    events.emit("payments.refund_created", refund_id=refund.pk)
    return refund


@transaction.atomic
def do_finish_refund(refund: Refund, *, succeeded: bool, external_id: str = "", failure: str = "") -> Refund:
    """The channel's answer to a pending refund: done, or refused (the amount goes back onto the balance)."""
    deadline()
    # Its own row only (the payment is locked just below when needed): a lock joined to the payment took both.
    refund = Refund.objects.select_for_update(of=("self",)).select_related("payment").get(pk=refund.pk)
    if refund.status != RefundStatus.PENDING:
        return refund  # a repeated answer
    refund.external_id = (external_id or refund.external_id)[:100]
    refund.finished_at = clock.now()
    if succeeded:
        refund.status = RefundStatus.SUCCEEDED
    else:
        refund.status = RefundStatus.FAILED
        refund.failure = (failure or "")[:500]
        memo = _("Refund refused by the channel: %(why)s") % {"why": refund.failure}
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        if payment.status == PaymentStatus.RETURNED:
            # A suspense payment's return the gateway refused: the money is back in suspense, and so is the payment.
            refund.reversal_transaction = ledger.reverse(refund.transaction, memo=memo)
            payment.status = PaymentStatus.SUSPENSE
            payment.refunded_amount = 0
            payment.status_reason = memo[:500]
            payment.save(update_fields=["status", "refunded_amount", "status_reason"])
        else:
            ledger.subscriber_account(payment.subscriber_id, lock=True)
            refund.reversal_transaction = ledger.reverse(refund.transaction, memo=memo)
            Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") - refund.amount)
            events.emit("billing.balance_changed", subscriber_id=payment.subscriber_id)
    refund.save(update_fields=["external_id", "finished_at", "status", "failure", "reversal_transaction"])
    audit.record(
        actor=None,
        action=f"payments.refund_{refund.status}",
        obj=refund.payment,
        subscriber_id=refund.payment.subscriber_id,
        after={"amount": refund.amount, "external_id": refund.external_id, "failure": refund.failure},
    )
    return refund


def can_cancel(user, payment: Payment) -> bool:
    """The administrator cancels any credited payment; a cashier only one they took themselves, the same day, while
    their cash day is not closed."""
    if payment.status != PaymentStatus.CREDITED or payment.refunded_amount > 0:
        return False
    if not has_perm(user, Perm.PAYMENT_CANCEL):
        return False
    if has_perm(user, Perm.PAYMENT_REFUND):
        return True
    if payment.taken_by_id != user.pk or timezone.localdate(payment.created_at) != clock.today():
        return False
    # A closed cash day has been counted and handed over: its payments stay as counted (the administrator may
    # still cancel one, and the report shows it).
    return not is_day_closed(user.pk, timezone.localdate(payment.received_at))


@transaction.atomic
def do_cancel_payment(payment: Payment, *, reason: str, acting_user) -> Payment:
    """Undo a payment entered by mistake (a wrong account, a wrong amount) by reversing its ledger entry.

    A payment assigned from suspense goes back to suspense (the assignment was the mistake); any other leaves
    the subscriber's account and is marked cancelled. A payment with refunds cannot be cancelled.
    """
    reason = reason_of(reason)
    deadline()
    check(acting_user, Perm.PAYMENT_CANCEL)
    payment = lock(payment)
    check(acting_user, Perm.PAYMENT_CANCEL, payment=payment)
    lock_cash_day_of(payment)  # a close of the cashier's day waits for this cancel, or this cancel for it
    if acting_user is not None and not can_cancel(acting_user, payment):
        if payment.status != PaymentStatus.CREDITED:
            raise ValidationError(_("Only a credited payment can be cancelled."), code="payment_not_credited")
        if payment.refunded_amount > 0:
            raise ValidationError(_("A payment with refunds cannot be cancelled."), code="payment_refunded")
        if payment.taken_by_id == acting_user.pk and is_day_closed(
            acting_user.pk, timezone.localdate(payment.received_at)
        ):
            raise ValidationError(
                _("Your cash day of this payment is closed; ask an administrator."), code="cash_day_closed"
            )
        raise ValidationError(
            _("A cashier cancels only their own payments of today; ask an administrator."), code="cancel_not_allowed"
        )
    if payment.status != PaymentStatus.CREDITED or payment.refunded_amount > 0:
        raise ValidationError(
            _("Only a credited payment without refunds can be cancelled."), code="payment_not_credited"
        )
    ledger.subscriber_account(payment.subscriber_id, lock=True)
    subscriber_id = payment.subscriber_id
    user = acting_user if getattr(acting_user, "pk", None) else None
    before = {"status": payment.status}
    credit = payment.assign_transaction if payment.assign_transaction_id else payment.transaction
    if payment.assign_transaction_id:
        ledger.reverse(payment.assign_transaction, memo=reason, acting_user=user)
        before_assign = payment.details.get("before_assign") or {}
        payment.status = PaymentStatus.SUSPENSE
        payment.suspense_reason = before_assign.get("reason") or SuspenseReason.UNKNOWN_ACCOUNT
        payment.subscriber_id = before_assign.get("subscriber")
        payment.assign_transaction = None
        payment.credited_at = None
    else:
        payment.cancel_transaction = ledger.reverse(payment.transaction, memo=reason, acting_user=user)
        payment.status = PaymentStatus.CANCELLED
    # A promised payment this payment repaid was repaid by money that never arrived: it is open again.
    billing.do_reopen_promised_payment(credit, acting_user=user, reason=reason)
    payment.status_reason = reason
    payment.save()
    audit.record(
        actor=acting_user,
        action="payments.cancelled",
        obj=payment,
        subscriber_id=subscriber_id,
        before=before,
        after={"status": payment.status, "amount": payment.amount},
        reason=reason,
    )
    events.emit("billing.balance_changed", subscriber_id=subscriber_id)
    events.emit("payments.payment_cancelled", payment_id=payment.pk)
    return payment
