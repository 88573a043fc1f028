"""The one intake every channel uses: money in, once per ``(channel, external_id)``, never lost.

A channel (the cash desk, a statement line, a terminal's ``pay``, a gateway's notice) calls
``do_receive_payment``. The payment row's unique ``(channel, external_id)`` is what makes a repeated or
concurrent notice harmless: the second insert waits on the first's index entry and then fails, and the
intake answers with the first payment. The same id with another amount or for another account is not
credited: it is recorded as a ``PaymentConflict`` for staff and reported to the channel. Money for an unknown or
closed account (or one whose balance cannot take it) is posted to the suspense account, never dropped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing import actions as billing
from abonent.billing import ledger
from abonent.billing.models import TransactionKind
from abonent.core import audit, clock, events
from abonent.staff.permissions import Perm
from abonent.subscribers.accounts import subscriber_by_account
from abonent.subscribers.models import Subscriber, SubscriberStatus

from ..channels import channel_account
from ..checks import channel_of, external_id_of, json_of, moment_of, payment_amount, text_of
from ..models import NoticeKind, Payment, PaymentConflict, PaymentMethod, PaymentStatus, SuspenseReason
from .autopay import queue_notice
from .common import check, deadline

__all__ = ["Intake", "do_receive_payment", "external_id_of", "find_account", "ledger_key", "queue_received_notice"]


@dataclass(frozen=True)
class Intake:
    """What the intake did: ``created`` is False for a repeat (the first payment is returned); ``conflict`` is
    set when the repeat differs from the first (nothing was credited for it)."""

    payment: Payment
    created: bool
    conflict: PaymentConflict | None = None


def ledger_key(channel: str, external_id: str) -> str:
    # ``|`` cannot occur in a channel (checks.channel_of), so no other (channel, id) pair makes the same key.
    return f"payment:{channel}|{external_id}"


def find_account(account_ref: str, *, lock: bool = False) -> Subscriber | None:
    """The subscriber whose account number, ours or else the old system's, is ``account_ref`` exactly (spaces around
    it ignored; ``subscribers.accounts.subscriber_by_account``). ``lock`` takes the subscriber's row lock, which
    closing the account takes too: a payment is credited to an account that is open when it commits, or goes to
    suspense."""
    return subscriber_by_account(account_ref, lock=lock)


def do_receive_payment(
    *,
    channel: str,
    external_id,
    amount,
    method: str,
    subscriber: Subscriber | None = None,
    account_ref: str = "",
    received_at: dt.datetime | None = None,
    payer: str = "",
    payer_inn: str = "",
    acting_user=None,
    memo: str = "",
    details: dict | None = None,
    suspense_reason: str = "",
) -> Intake:
    """Take a payment in. ``subscriber`` when the channel knows it (the cash desk, a matched statement line);
    otherwise ``account_ref`` is looked up as an account number. ``suspense_reason`` sends it to suspense even
    when a subscriber is known (a statement line matching two subscribers: ``ambiguous``).

    ``acting_user`` is the person taking the money (a cashier: PAYMENT_TAKE and the subscriber's branch are
    checked), or None when a channel reports it. ``received_at`` is when the channel took the money (its date
    is the ledger date, so a retry after midnight is the same payment); now when the channel does not say. Bad
    input raises ``ValidationError`` with a field code before anything is written; a database that does not
    answer within the deadline raises ``OperationalError`` (``core.deadlines.is_deadline``) and writes nothing.
    """
    amount = payment_amount(amount)
    channel = channel_of(channel)
    external_id = external_id_of(external_id)
    received_at = moment_of(received_at)
    if method not in PaymentMethod.values:
        raise ValidationError({"method": ValidationError(_("Unknown payment method."), code="method_invalid")})
    if suspense_reason and suspense_reason not in SuspenseReason.values:
        raise ValueError(f"unknown suspense reason {suspense_reason!r}")
    check(acting_user, Perm.PAYMENT_TAKE, subscriber)
    account_ref = text_of(account_ref, 255) or (subscriber.account_number if subscriber is not None else "")
    fields = {
        "channel": channel,
        "external_id": external_id,
        "method": method,
        "amount": amount,
        "account_ref": account_ref,
        "payer": text_of(payer, 255),
        "payer_inn": text_of(payer_inn, 12),
        "received_at": received_at or clock.now(),
        "taken_by": acting_user if getattr(acting_user, "pk", None) else None,
        "memo": text_of(memo, 500),
        "details": json_of(details or {}),
    }
    with transaction.atomic():
        deadline()
        repeat = _repeat(fields)
        if repeat is not None:
            return repeat
        if subscriber is None and not suspense_reason:
            subscriber = find_account(account_ref, lock=True)
            if subscriber is None:
                suspense_reason = SuspenseReason.UNKNOWN_ACCOUNT
        elif subscriber is not None:
            # Its status as of now, under the row lock that closing the account takes (see find_account).
            subscriber.status = (
                Subscriber.objects.select_for_update().values_list("status", flat=True).get(pk=subscriber.pk)
            )
        if subscriber is not None and subscriber.status == SubscriberStatus.CLOSED and not suspense_reason:
            suspense_reason = SuspenseReason.CLOSED_ACCOUNT
        try:
            with transaction.atomic():
                payment = None
                if not suspense_reason:
                    try:
                        with transaction.atomic():
                            payment = _credit(subscriber, fields, acting_user)
                    except ValidationError as exc:
                        if "amount" not in getattr(exc, "error_dict", {}):
                            raise
                        # The balance cannot take it (past what the column holds): the money still arrived.
                        suspense_reason = SuspenseReason.BALANCE_LIMIT
                if payment is None:
                    payment = _to_suspense(subscriber, fields, suspense_reason, acting_user)
        except (IntegrityError, ledger.IdempotencyConflict):
            # A concurrent notice of the same payment inserted first (the unique constraint); answer with it.
            repeat = _repeat(fields)
            if repeat is None:
                raise
            return repeat
        queue_received_notice(payment)
        events.emit("payments.payment_received", payment_id=payment.pk)
    return Intake(payment=payment, created=True)


def queue_received_notice(payment: Payment) -> None:
    """The "payment received" notice for the subscriber a payment was just credited to, into the outbox
    (``PaymentNotice``) in the caller's transaction: one INSERT, a repeat ignored by the unique ``payment:<id>``.
    The notifications app drains it every minute, so the payment's request does no more. The terminal fast path's
    SQL function writes the same row (migration 0010); suspense has nobody to tell (``do_assign_payment`` does)."""
    if payment.status == PaymentStatus.CREDITED and payment.subscriber_id is not None:
        queue_notice(NoticeKind.PAYMENT_RECEIVED, payment.subscriber_id, f"payment:{payment.pk}", payment_id=payment.pk)


def _ledger_date(fields) -> dt.date:
    return timezone.localdate(fields["received_at"])


def _credit(subscriber, fields, acting_user) -> Payment:
    tx = billing.do_post_payment(
        subscriber,
        amount=fields["amount"],
        channel=fields["channel"],
        external_id=fields["external_id"],
        acting_user=acting_user,
        paid_on=_ledger_date(fields),
        memo=fields["memo"] or _("Payment %(id)s") % {"id": fields["external_id"]},
        source_account=channel_account(fields["channel"]),
        key=ledger_key(fields["channel"], fields["external_id"]),
    )
    payment = Payment.objects.create(
        **fields,
        subscriber=subscriber,
        status=PaymentStatus.CREDITED,
        credited_at=clock.now(),
        created_at=clock.now(),
        transaction=tx,
    )
    audit.record(
        actor=acting_user,
        action="payments.received",
        obj=payment,
        subscriber_id=subscriber.pk,
        after={"amount": payment.amount, "channel": payment.channel, "external_id": payment.external_id},
    )
    return payment


def _to_suspense(subscriber, fields, reason: str, acting_user) -> Payment:
    amount = fields["amount"]
    tx, _created = ledger.post(
        key=ledger_key(fields["channel"], fields["external_id"]),
        kind=TransactionKind.PAYMENT,
        effective_date=_ledger_date(fields),
        legs=[(ledger.system_account("suspense").pk, amount), (channel_account(fields["channel"]).pk, -amount)],
        acting_user=fields["taken_by"],
        memo=(_("Suspense: %(ref)s") % {"ref": fields["account_ref"]})[:500],
    )
    payment = Payment.objects.create(
        **fields,
        subscriber=subscriber if reason != SuspenseReason.UNKNOWN_ACCOUNT else None,
        status=PaymentStatus.SUSPENSE,
        suspense_reason=reason,
        created_at=clock.now(),
        transaction=tx,
    )
    audit.record(
        actor=acting_user,
        action="payments.suspense",
        obj=payment,
        subscriber_id=payment.subscriber_id,
        after={"amount": amount, "channel": payment.channel, "reason": reason, "account": fields["account_ref"]},
    )
    return payment


def _repeat(fields) -> Intake | None:
    """The answer to a notice already taken in: the first payment, and a conflict when this one differs in its
    amount or its account (a channel that names the subscriber itself gives its account number)."""
    first = Payment.objects.filter(channel=fields["channel"], external_id=fields["external_id"]).first()
    if first is None:
        return None
    amount, account_ref = fields["amount"], fields["account_ref"]
    if first.amount == amount and (not account_ref or account_ref == first.account_ref):
        return Intake(payment=first, created=False)
    return Intake(payment=first, created=False, conflict=_record_conflict(first, amount, account_ref))


def _record_conflict(payment: Payment, amount, account_ref: str) -> PaymentConflict:
    now = clock.now()
    with transaction.atomic():
        conflict, created = PaymentConflict.objects.get_or_create(
            payment=payment,
            amount=amount,
            account_ref=account_ref,
            defaults={"first_at": now, "last_at": now},
        )
        if not created:
            PaymentConflict.objects.filter(pk=conflict.pk).update(times=F("times") + 1, last_at=now)
            conflict.refresh_from_db()
        else:
            audit.record(
                actor=None,
                action="payments.conflict",
                obj=payment,
                subscriber_id=payment.subscriber_id,
                before={"amount": payment.amount, "account": payment.account_ref},
                after={"amount": amount, "account": account_ref},
            )
    return conflict
