"""Money moved by hand: balance adjustments, one-off charges, credit limits and their reversal."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from abonent.catalog.models import Service
from abonent.core import audit, clock, events
from abonent.core.money import quantize, to_decimal
from abonent.staff.permissions import Perm

from .. import ledger
from ..models import (
    Charge,
    LedgerAccount,
    Subscription,
    TransactionKind,
)
from .common import ZERO, _check, _positive_amount

# --- money moved by hand, payments, promised payments ----------------------------------------------------


def _post_and_record(
    subscriber,
    *,
    key: str,
    kind: str,
    legs,
    memo: str,
    acting_user,
    audit_action: str,
    after: dict,
    reason: str = "",
    effective_date: dt.date | None = None,
):
    """Post a transaction for a subscriber; on its first write (not a retry) audit it and announce the change."""
    tx, created = ledger.post(
        key=key,
        kind=kind,
        effective_date=effective_date or clock.today(),
        legs=legs,
        subscriber_id=subscriber.pk,
        acting_user=acting_user,
        memo=memo,
    )
    if created:
        audit.record(
            actor=acting_user, action=audit_action, obj=tx, subscriber_id=subscriber.pk, after=after, reason=reason
        )
        events.emit("billing.balance_changed", subscriber_id=subscriber.pk)
    return tx, created


@transaction.atomic
def do_adjust_balance(subscriber, *, amount, reason: str, acting_user, key: str | None = None):
    """A manual correction (+ adds to the balance, − takes away), always with a reason."""
    _check(acting_user, Perm.BILLING_ADJUST, subscriber)
    try:
        amount = quantize(to_decimal(amount))
    except ValueError as exc:
        raise ValidationError({"amount": ValidationError(str(exc), code="amount_invalid")}) from exc
    if amount == 0:
        raise ValidationError({"amount": ValidationError(_("The amount must not be zero."), code="amount_zero")})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Give a reason for the adjustment."), code="required")})
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    tx, _created = _post_and_record(
        subscriber,
        key=key or f"adjustment:{uuid.uuid4()}",
        kind=TransactionKind.ADJUSTMENT,
        legs=[(account.pk, amount), (ledger.system_account("adjustments").pk, -amount)],
        memo=reason,
        acting_user=acting_user,
        audit_action="billing.balance_adjusted",
        after={"amount": amount},
        reason=reason,
    )
    return tx


@transaction.atomic
def do_charge_one_off(
    subscriber, *, service: Service, acting_user, amount=None, reason: str = "", key: str | None = None
):
    """Charge a one-off service (installation, cable): its list price unless an amount is given."""
    _check(acting_user, Perm.BILLING_ADJUST, subscriber)
    amount = _positive_amount(amount if amount is not None else (service.one_off_price or 0))
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    revenue = ledger.revenue_account(service)
    tx, _created = _post_and_record(
        subscriber,
        key=key or f"one_off:{uuid.uuid4()}",
        kind=TransactionKind.ONE_OFF,
        legs=[(account.pk, -amount), (revenue.pk, amount)],
        memo=f"{service.name}. {reason}".strip(". "),
        acting_user=acting_user,
        audit_action="billing.one_off_charged",
        after={"service": service.name, "amount": amount},
        reason=reason,
    )
    return tx


@transaction.atomic
def do_set_credit_limit(subscriber, *, amount, reason: str, acting_user) -> LedgerAccount:
    _check(acting_user, Perm.BILLING_ADJUST, subscriber)
    try:
        amount = quantize(to_decimal(amount))
    except ValueError as exc:
        raise ValidationError({"amount": ValidationError(str(exc), code="amount_invalid")}) from exc
    if amount < 0:
        raise ValidationError(
            {"amount": ValidationError(_("A credit limit cannot be negative."), code="amount_negative")}
        )
    ledger.subscriber_account(subscriber.pk)
    account = LedgerAccount.objects.select_for_update().get(subscriber_id=subscriber.pk)
    before = account.credit_limit
    account.credit_limit = amount
    account.save(update_fields=["credit_limit"])
    audit.record(
        actor=acting_user,
        action="billing.credit_limit_set",
        obj=account,
        subscriber_id=subscriber.pk,
        before={"credit_limit": before},
        after={"credit_limit": amount},
        reason=reason,
    )
    events.emit("billing.balance_changed", subscriber_id=subscriber.pk)
    return account

def charged_total(subscription: Subscription) -> Decimal:
    return Charge.objects.filter(subscription=subscription).aggregate(s=Sum("amount"))["s"] or ZERO


REVERSIBLE_KINDS = {TransactionKind.ADJUSTMENT, TransactionKind.ONE_OFF}


@transaction.atomic
def do_reverse_transaction(tx, *, reason: str, acting_user):
    """Undo a manual adjustment or one-off charge made by mistake: a mirror transaction, the original kept."""
    from ..models import LedgerTransaction

    tx = LedgerTransaction.objects.select_for_update().get(pk=tx.pk)
    subscriber = _subscriber_of(tx)
    _check(acting_user, Perm.BILLING_ADJUST, subscriber)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Give a reason for the reversal."), code="required")})
    if tx.kind not in REVERSIBLE_KINDS:
        raise ValidationError(
            _("Only manual adjustments and one-off charges can be reversed here."), code="not_reversible"
        )
    if hasattr(tx, "reversed_by"):
        raise ValidationError(_("This transaction has already been reversed."), code="already_reversed")
    ledger.subscriber_account(tx.subscriber_id, lock=True)
    reversal = ledger.reverse(tx, memo=reason, acting_user=acting_user)
    audit.record(
        actor=acting_user,
        action="billing.transaction_reversed",
        obj=tx,
        subscriber_id=tx.subscriber_id,
        after={"reversal": reversal.pk},
        reason=reason,
    )
    events.emit("billing.balance_changed", subscriber_id=tx.subscriber_id)
    return reversal


def _subscriber_of(tx):
    from abonent.subscribers.models import Subscriber

    return Subscriber.objects.get(pk=tx.subscriber_id)

