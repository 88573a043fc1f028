"""The one intake every channel uses: money in, once per ``(channel, external_id)``, never lost.

A channel (the cash desk, a statement line, a terminal's ``pay``, a gateway's notice) calls
``do_receive_payment``. The payment row's unique ``(channel, external_id)`` is what makes a repeated or
concurrent notice harmless: the second insert waits on the first's index entry and then fails, and the
intake answers with the first payment. The same id with another amount (or account) is not credited: it is
recorded as a ``PaymentConflict`` for staff and reported to the channel. Money for an unknown or closed account
(or one whose balance cannot take it) is posted to the suspense account, never dropped.
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
from abonent.billing.actions.common import _positive_amount
from abonent.billing.models import TransactionKind
from abonent.core import audit, clock, events
from abonent.subscribers.models import Subscriber, SubscriberStatus

from ..channels import channel_account
from ..models import Payment, PaymentConflict, PaymentMethod, PaymentStatus, SuspenseReason

MAX_EXTERNAL_ID = 100


@dataclass(frozen=True)
class Intake:
    """What the intake did: ``created`` is False for a repeat (the first payment is returned); ``conflict`` is
    set when the repeat differs from the first (nothing was credited for it)."""

    payment: Payment
    created: bool
    conflict: PaymentConflict | None = None


def external_id_of(value) -> str:
    text = str(value if value is not None else "").strip()
    if not text:
        raise ValidationError({"external_id": ValidationError(_("The payment has no id."), code="required")})
    if len(text) > MAX_EXTERNAL_ID or not text.isprintable():
        raise ValidationError(
            {
                "external_id": ValidationError(
                    _("A payment id is at most %(n)d printable characters.") % {"n": MAX_EXTERNAL_ID},
                    code="external_id_invalid",
                )
            }
        )
    return text


def find_account(account_ref: str) -> Subscriber | None:
    """The subscriber whose account number is ``account_ref`` exactly (spaces around it ignored)."""
    ref = (account_ref or "").strip()
    if not ref or len(ref) > 20:
        return None
    return Subscriber.objects.filter(account_number=ref).first()


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

    ``received_at`` is when the channel took the money (its date is the ledger date, so a retry after midnight
    is the same payment); now when the channel does not say. Bad input raises ``ValidationError`` with a field
    code before anything is written.
    """
    amount = _positive_amount(amount)
    external_id = external_id_of(external_id)
    if method not in PaymentMethod.values:
        raise ValueError(f"unknown payment method {method!r}")
    account_ref = (account_ref or "").strip()[:255]
    repeat = _repeat(channel, external_id, amount, account_ref)
    if repeat is not None:
        return repeat
    if subscriber is None and not suspense_reason:
        subscriber = find_account(account_ref)
        if subscriber is None:
            suspense_reason = SuspenseReason.UNKNOWN_ACCOUNT
    if subscriber is not None and subscriber.status == SubscriberStatus.CLOSED and not suspense_reason:
        suspense_reason = SuspenseReason.CLOSED_ACCOUNT
    fields = {
        "channel": channel,
        "external_id": external_id,
        "method": method,
        "amount": amount,
        "account_ref": account_ref or (subscriber.account_number if subscriber else ""),
        "payer": (payer or "")[:255],
        "payer_inn": (payer_inn or "")[:12],
        "received_at": received_at or clock.now(),
        "taken_by": acting_user if getattr(acting_user, "pk", None) else None,
        "memo": (memo or "")[:500],
        "details": details or {},
    }
    try:
        with transaction.atomic():
            if not suspense_reason:
                try:
                    with transaction.atomic():
                        payment = _credit(subscriber, fields, acting_user)
                except ValidationError as exc:
                    if "amount" not in getattr(exc, "error_dict", {}):
                        raise
                    # The balance cannot take it (past what the column holds): the money still arrived.
                    suspense_reason = SuspenseReason.BALANCE_LIMIT
            if suspense_reason:
                payment = _to_suspense(subscriber, fields, suspense_reason, acting_user)
    except (IntegrityError, ledger.IdempotencyConflict):
        # A concurrent notice of the same payment inserted first (the unique constraint); answer with it.
        repeat = _repeat(channel, external_id, amount, account_ref)
        if repeat is None:
            raise
        return repeat
    events.emit("payments.payment_received", payment_id=payment.pk)
    return Intake(payment=payment, created=True)


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
        key=f"payment:{fields['channel']}:{fields['external_id']}",
        kind=TransactionKind.PAYMENT,
        effective_date=_ledger_date(fields),
        legs=[(ledger.system_account("suspense").pk, amount), (channel_account(fields["channel"]).pk, -amount)],
        acting_user=acting_user,
        memo=(_("Suspense: %(ref)s") % {"ref": fields["account_ref"]})[:500],
    )
    payment = Payment.objects.create(
        **{**fields, "account_ref": fields["account_ref"]},
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


def _repeat(channel: str, external_id: str, amount, account_ref: str) -> Intake | None:
    """The answer to a notice already taken in: the first payment, and a conflict when this one differs."""
    first = Payment.objects.filter(channel=channel, external_id=external_id).first()
    if first is None:
        return None
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
