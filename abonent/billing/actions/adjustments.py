"""Money moved by hand: balance adjustments, one-off charges, credit limits and their reversal."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from abonent.catalog.models import Service
from abonent.core import audit, clock, events
from abonent.core.money import AMOUNT_LIMIT, quantize
from abonent.staff.permissions import Perm

from .. import ledger
from ..models import (
    Charge,
    LedgerAccount,
    Subscription,
    TransactionKind,
)
from .common import ZERO, _amount, _check, _check_balance_after, _positive_amount


def manual_amount_limit() -> Decimal:
    """The most one manual adjustment or one-off charge may move (``ABONENT_MAX_MANUAL_AMOUNT``): a typo of
    three extra zeros is refused instead of booked."""
    return min(quantize(settings.ABONENT_MAX_MANUAL_AMOUNT), AMOUNT_LIMIT)


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
    date_in_hash: bool = True,
):
    """Post a transaction for a subscriber; on its first write (not a retry) audit it and announce the change."""
    tx, created = ledger.post(
        date_in_hash=date_in_hash,
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
        # ``credit``: the subscriber's money only grew (its leg is the first, as every caller writes it), which
        # lets a listener skip what only a debit can cause (dunning: an active subscriber stays active).
        credit = bool(legs) and Decimal(legs[0][1]) > 0
        events.emit("billing.balance_changed", subscriber_id=subscriber.pk, credit=credit)
    return tx, created


@transaction.atomic
def do_adjust_balance(subscriber, *, amount, reason: str, acting_user, key: str | None = None):
    """A manual correction (+ adds to the balance, − takes away), always with a reason."""
    _check(acting_user, Perm.BILLING_ADJUST, subscriber)
    amount = _amount(amount, limit=manual_amount_limit())
    if amount == 0:
        raise ValidationError({"amount": ValidationError(_("The amount must not be zero."), code="amount_zero")})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Give a reason for the adjustment."), code="required")})
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    _check_balance_after(account, amount)
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
    amount = _positive_amount(
        amount if amount is not None else (service.one_off_price or 0), limit=manual_amount_limit()
    )
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    _check_balance_after(account, -amount)
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
    amount = _amount(amount)
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
