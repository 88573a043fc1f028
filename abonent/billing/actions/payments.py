"""Payments credited to the ledger and promised payments (temporary credit) repaid from them."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events
from abonent.staff.permissions import Perm

from .. import ledger
from ..models import (
    PromisedPayment,
    PromisedPaymentStatus,
    TransactionKind,
)
from ..offers import check_promised, check_promised_amount
from ..selectors import promised_payment_policy
from .adjustments import _post_and_record
from .common import _check, _check_balance_after, _positive_amount, _refuse_closed


@transaction.atomic
def do_post_payment(
    subscriber,
    *,
    amount,
    channel: str,
    external_id: str,
    acting_user=None,
    paid_on: dt.date | None = None,
    memo: str = "",
    source_account=None,
    key: str | None = None,
):
    """Credit a payment to the subscriber, once per ``(channel, external_id)`` however often it arrives.

    The money comes from ``source_account``: the channel's cash account unless given (a gateway's clearing
    account, or the suspense account when staff assign a payment that arrived for no known subscriber). The
    payments app's intake (``payments.actions.intake``) is the caller every channel goes through; an open
    promised payment is repaid from the payment, as DOMAIN.md describes.
    """
    amount = _positive_amount(amount)
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    _check_balance_after(account, amount)
    source = source_account or ledger.cash_account(channel)
    tx, created = _post_and_record(
        subscriber,
        key=key or f"payment:{channel}:{external_id}",
        kind=TransactionKind.PAYMENT,
        legs=[(account.pk, amount), (source.pk, -amount)],
        memo=memo,
        acting_user=acting_user,
        audit_action="billing.payment_posted",
        effective_date=paid_on,
        date_in_hash=paid_on is not None,
        after={"amount": amount, "channel": channel, "external_id": external_id},
    )
    if created:
        _close_promised_payment(subscriber, status=PromisedPaymentStatus.REPAID, acting_user=acting_user, repaid_by=tx)
    return tx


@transaction.atomic
def do_reopen_promised_payment(payment_tx, *, acting_user, reason: str) -> PromisedPayment | None:
    """Open again the promised payment that ``payment_tx`` repaid, when that payment is cancelled: the money that
    repaid it never arrived. Its credit is given back until its due day (the hourly expiry closes it if that has
    passed). Nothing when the payment repaid none, or another promise has been taken since."""
    promised = (
        PromisedPayment.objects.select_for_update()
        .filter(repaid_by=payment_tx, status=PromisedPaymentStatus.REPAID)
        .first()
    )
    if promised is None:
        return None
    account = ledger.subscriber_account(promised.subscriber_id, lock=True)
    if PromisedPayment.objects.filter(subscriber_id=promised.subscriber_id, status=PromisedPaymentStatus.OPEN).exists():
        return None
    _check_balance_after(account, promised.amount)
    ledger.reverse(promised.close_transaction, memo=reason, acting_user=acting_user)
    promised.status = PromisedPaymentStatus.OPEN
    promised.closed_at = None
    promised.close_transaction = None
    promised.repaid_by = None
    promised.reopened += 1
    promised.save(update_fields=["status", "closed_at", "close_transaction", "repaid_by", "reopened"])
    audit.record(
        actor=acting_user,
        action="billing.promised_payment_reopened",
        obj=promised,
        subscriber_id=promised.subscriber_id,
        after={"amount": promised.amount, "due_on": promised.due_on},
        reason=reason,
    )
    events.emit("billing.balance_changed", subscriber_id=promised.subscriber_id)
    return promised


@transaction.atomic
def do_post_refund(subscriber, *, amount, destination_account, key: str, acting_user, memo: str):
    """Take money back off the subscriber's account for a refund to the payer (``destination_account`` is the
    channel's cash or clearing account it goes out through). The caller (payments) has checked the amount
    against the payment and the balance under the account's lock."""
    amount = _positive_amount(amount)
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    tx, _created = _post_and_record(
        subscriber,
        key=key,
        kind=TransactionKind.REFUND,
        legs=[(account.pk, -amount), (destination_account.pk, amount)],
        memo=memo,
        acting_user=acting_user,
        audit_action="billing.refund_posted",
        after={"amount": amount, "to": destination_account.code},
        reason=memo,
    )
    return tx


@transaction.atomic
def do_take_promised_payment(subscriber, *, acting_user, amount=None) -> PromisedPayment:
    """Temporary credit within the plan's policy; closed by the next payment or when it runs out."""
    _check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscriber)
    _refuse_closed(subscriber)
    policy = promised_payment_policy(subscriber)
    if policy is None:
        raise ValidationError(_("The subscriber's plan offers no promised payment."), code="promised_not_offered")
    amount = _positive_amount(amount if amount is not None else policy.max_amount)
    check_promised_amount(policy, amount)
    account = ledger.subscriber_account(subscriber.pk, lock=True)  # serialises takes of one subscriber
    _check_balance_after(account, amount)
    now = clock.now()
    today = clock.today()
    # The rules the card and the portal check before offering one (``offers``): one copy, the action's.
    check_promised(subscriber, policy, balance=account.balance, today=today)
    key = f"promised:{subscriber.pk}:{now.isoformat()}"
    take, _created = ledger.post(
        key=key,
        kind=TransactionKind.PROMISED_TAKE,
        effective_date=today,
        legs=[(account.pk, amount), (ledger.system_account("promised").pk, -amount)],
        subscriber_id=subscriber.pk,
        acting_user=acting_user,
        memo=_("Promised payment until %(date)s")
        % {"date": date_format(today + dt.timedelta(days=policy.days), "SHORT_DATE_FORMAT")},
    )
    if policy.fee > 0:
        ledger.post(
            key=f"{key}:fee",
            kind=TransactionKind.PROMISED_TAKE,
            effective_date=today,
            legs=[(account.pk, -policy.fee), (ledger.system_account("promised_fees").pk, policy.fee)],
            subscriber_id=subscriber.pk,
            acting_user=acting_user,
            memo=_("Promised payment fee"),
        )
    promised = PromisedPayment.objects.create(
        subscriber=subscriber,
        policy=policy,
        amount=amount,
        fee=policy.fee,
        taken_at=now,
        due_on=today + dt.timedelta(days=policy.days),
        take_transaction=take,
    )
    audit.record(
        actor=acting_user,
        action="billing.promised_payment_taken",
        obj=promised,
        subscriber_id=subscriber.pk,
        after={"amount": amount, "due_on": promised.due_on, "fee": policy.fee},
    )
    events.emit("billing.balance_changed", subscriber_id=subscriber.pk)
    return promised


def _close_promised_payment(subscriber, *, status: str, acting_user, repaid_by=None) -> PromisedPayment | None:
    promised = (
        PromisedPayment.objects.select_for_update()
        .filter(subscriber=subscriber, status=PromisedPaymentStatus.OPEN)
        .first()
    )
    if promised is None:
        return None
    account = ledger.subscriber_account(subscriber.pk)
    close, _created = ledger.post(
        key=f"promised_close:{promised.pk}" + (f":{promised.reopened}" if promised.reopened else ""),
        kind=TransactionKind.PROMISED_CLOSE,
        effective_date=clock.today(),
        legs=[(account.pk, -promised.amount), (ledger.system_account("promised").pk, promised.amount)],
        subscriber_id=subscriber.pk,
        acting_user=acting_user,
        memo=_("Promised payment repaid") if status == PromisedPaymentStatus.REPAID else _("Promised payment expired"),
    )
    promised.status = status
    promised.closed_at = clock.now()
    promised.close_transaction = close
    promised.repaid_by = repaid_by
    promised.save(update_fields=["status", "closed_at", "close_transaction", "repaid_by"])
    audit.record(
        actor=acting_user,
        action=f"billing.promised_payment_{status}",
        obj=promised,
        subscriber_id=subscriber.pk,
        after={"amount": promised.amount},
    )
    return promised


def do_expire_promised_payments() -> int:
    """Close every promised payment past its last day: the credit is withdrawn and access follows the balance."""
    count = 0
    for promised in PromisedPayment.objects.filter(
        status=PromisedPaymentStatus.OPEN, due_on__lt=clock.today()
    ).select_related("subscriber"):
        with transaction.atomic():
            # The account's lock first, as a payment takes it (then the promise's): the opposite order deadlocked
            # with a payment repaying this promise at the same moment.
            ledger.subscriber_account(promised.subscriber_id, lock=True)
            if _close_promised_payment(promised.subscriber, status=PromisedPaymentStatus.EXPIRED, acting_user=None):
                count += 1
        events.emit("billing.balance_changed", subscriber_id=promised.subscriber_id)
    return count
