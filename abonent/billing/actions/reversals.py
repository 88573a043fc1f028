"""Reversals: a manual adjustment or one-off charge undone as a whole, and one charge (a fee, a plan change's
charge, an activation, a freeze fee, a turbo) given back whole or for some of its days."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events
from abonent.staff.permissions import Perm

from .. import ledger
from ..models import (
    Charge,
    ChargeKind,
    LedgerTransaction,
    Posting,
    TransactionKind,
)
from ..selectors import DAY_REVERSIBLE_CHARGES, SERVICE_KINDS, WHOLE_REVERSIBLE_CHARGES, charge_part_after
from .common import ZERO, _check, _lock_subscription

REVERSIBLE_KINDS = {TransactionKind.ADJUSTMENT, TransactionKind.ONE_OFF}


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Give a reason for the reversal."), code="required")})
    return reason[:500]


@transaction.atomic
def do_reverse_transaction(tx, *, reason: str, acting_user):
    """Undo a manual adjustment or one-off charge made by mistake: a mirror transaction, the original kept."""
    tx = LedgerTransaction.objects.select_for_update().get(pk=tx.pk)
    subscriber = _subscriber_of(tx)
    _check(acting_user, Perm.BILLING_ADJUST, subscriber)
    reason = _reason(reason)
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


@transaction.atomic
def do_reverse_charge(
    charge: Charge,
    *,
    reason: str,
    acting_user,
    first_day: dt.date | None = None,
    until: dt.date | None = None,
) -> Charge:
    """Give one charge back, whole or for the days ``[first_day, until)`` of it, with a reason. For a charge for
    days, only days served (before today) can be given back, and without days given it is every day served so far.

    The reversal is a charge of its own (kind ``reversal``, ``reverses`` = the charge) with a transaction that
    moves the amount from the revenue account the charge went to back to the subscriber. Later prorations count
    it (a termination after a reversed month credits nothing more for it), and the same days are given back once:
    by the schema for a retry (``billing_charge_reversal_once``), and here for days a freeze, a termination or
    another reversal has given back already. A charge for days is measured as the billing run measures it, so
    reversing every day of it one by one gives back exactly the charge.
    """
    reason = _reason(reason)
    charge = Charge.objects.select_related("price__plan__service", "subscription").get(pk=charge.pk)
    subscription = _lock_subscription(charge.subscription)
    _check(acting_user, Perm.BILLING_REVERSE, subscription.subscriber)
    account = ledger.subscriber_account(subscription.subscriber_id, lock=True)
    if charge.kind in DAY_REVERSIBLE_CHARGES:
        # Only days served (before today) are given back: today and days to come given back now would be charged
        # again by an unfreeze or a plan change today or later, which re-charge the rest of the period from their
        # day (the fee property found a reversal of today undone by an upgrade the same day). For those: a freeze.
        served_until = clock.today()
        first_day = first_day or charge.period_start
        until = until or min(charge.period_end, served_until)
        if until > served_until:
            raise ValidationError(
                {
                    "until": ValidationError(
                        _(
                            "Only days already served can be given back (up to %(day)s): freeze the subscription for "
                            "days to come."
                        )
                        % {"day": _day(served_until - dt.timedelta(days=1))},
                        code="days_not_served",
                    )
                }
            )
        if not charge.period_start <= first_day < until <= charge.period_end:
            raise ValidationError(
                {
                    "until": ValidationError(
                        _("The days must lie within the charge's period, %(start)s–%(end)s.")
                        % {"start": _day(charge.period_start), "end": _day(charge.period_end - dt.timedelta(days=1))},
                        code="days_out_of_range",
                    )
                }
            )
        if Charge.objects.filter(reverses=charge, period_start__lt=until, period_end__gt=first_day).exists():
            raise ValidationError(_("Some of these days have been given back already."), code="already_reversed")
        amount = _still_billed(charge, subscription, first_day, until)
        discount_line, discount = _discount_of_days(charge, subscription, first_day, until)
    elif charge.kind in WHOLE_REVERSIBLE_CHARGES:
        if first_day is not None or until is not None:
            raise ValidationError({"until": ValidationError(_("This charge is given back whole."), code="whole_only")})
        # What is left of it: a freeze ended early has given its unused days back already.
        given_back = -sum(charge.reversals.values_list("amount", flat=True), ZERO)
        if charge.reversals.filter(period_start=charge.period_start).exists():
            raise ValidationError(_("This charge has been given back already."), code="already_reversed")
        first_day, until, amount = charge.period_start, charge.period_end, charge.amount - given_back
        discount_line, discount = None, ZERO
    else:
        raise ValidationError(_("Only a charge can be reversed, not a credit."), code="not_reversible")
    if amount <= 0:
        raise ValidationError(_("Nothing is left to give back for these days."), code="nothing_to_reverse")
    revenue_id = _revenue_account_of(charge, account.pk)
    days = f"{_day(first_day)}–{_day(until - dt.timedelta(days=1))}"
    tx, _created = ledger.post(
        key=f"reversal:charge:{charge.pk}:{first_day.isoformat()}",
        kind=TransactionKind.REVERSAL,
        effective_date=clock.today(),
        legs=[(account.pk, amount - discount), (revenue_id, discount - amount)],
        subscriber_id=subscription.subscriber_id,
        acting_user=acting_user,
        memo=_("Reversal of a charge for %(days)s: %(reason)s") % {"days": days, "reason": reason},
    )
    if discount_line is not None:
        # The fee's discount of the same days taken back with it: what is given back is what was paid.
        Charge.objects.create(
            subscription=subscription,
            kind=ChargeKind.DISCOUNT,
            period_start=first_day,
            period_end=until,
            amount=discount,
            price=discount_line.price,
            base_fee=discount_line.base_fee,
            cycle=charge.cycle,
            reverses=discount_line,
            transaction=tx,
        )
    reversal = Charge.objects.create(
        subscription=subscription,
        # Days of service given back are a ``reversal`` that later prorations count; a thing given back (an
        # activation, a freeze fee, a turbo) keeps the thing's kind, so prorations never see it.
        kind=ChargeKind.REVERSAL if charge.kind in DAY_REVERSIBLE_CHARGES else charge.kind,
        period_start=first_day,
        period_end=until,
        amount=-amount,
        price=charge.price,
        base_fee=charge.base_fee,
        cycle=charge.cycle,
        reverses=charge,
        transaction=tx,
    )
    audit.record(
        actor=acting_user,
        action="billing.charge_reversed",
        obj=subscription,
        subscriber_id=subscription.subscriber_id,
        after={"charge": charge.pk, "days": days, "amount": amount - discount},
        reason=reason,
    )
    events.emit("billing.balance_changed", subscriber_id=subscription.subscriber_id)
    return reversal


def _still_billed(charge: Charge, subscription, first_day: dt.date, until: dt.date) -> Decimal:
    """What ``charge`` still bills for the days ``[first_day, until)``, day by day, after the credits and reversals
    made against it (they name its price; a plan change's charge for the same days names the new plan's and is
    given back on its own). Every day asked for must be billed by it in full, so that a reversal's days are exactly
    the days it gave back: days a freeze, a termination, a plan change or an earlier reversal took off are refused
    with the days that are still billed, and nothing billed at all is ``nothing_to_reverse``."""
    anchor, one_day = subscription.anchor_day, dt.timedelta(days=1)
    others = list(
        Charge.objects.filter(
            subscription=subscription,
            kind__in=[k for k in SERVICE_KINDS if k != ChargeKind.DISCOUNT],
            price_id=charge.price_id,
            base_fee=charge.base_fee,
            period_end__gt=first_day,
            period_start__lt=until,
        ).select_related("price__plan")
    )
    total, billed, day = ZERO, [], first_day
    while day < until:
        own = charge_part_after(charge, day, anchor) - charge_part_after(charge, day + one_day, anchor)
        left = sum(
            (charge_part_after(c, day, anchor) - charge_part_after(c, day + one_day, anchor) for c in others), ZERO
        )
        if own > 0 and left >= own:
            billed.append(day)
            total += own
        day += one_day
    if not billed:
        raise ValidationError(_("Nothing is left to give back for these days."), code="nothing_to_reverse")
    if len(billed) < (until - first_day).days:
        raise ValidationError(
            {
                "until": ValidationError(
                    _("Some of these days were given back already; still billed by this charge: %(days)s.")
                    % {"days": ", ".join(_day(d) for d in billed)},
                    code="already_reversed",
                )
            }
        )
    return total


def _discount_of_days(charge: Charge, subscription, first_day: dt.date, until: dt.date):
    """The discount line beside a fee (billing/pricing) and its part for ``[first_day, until)``."""
    if charge.kind != ChargeKind.FEE:
        return None, ZERO
    line = (
        Charge.objects.filter(
            subscription=subscription,
            kind=ChargeKind.DISCOUNT,
            period_start=charge.period_start,
            cycle=charge.cycle,
            event__isnull=True,
            reverses__isnull=True,
        )
        .select_related("price__plan")
        .first()
    )
    if line is None:
        return None, ZERO
    anchor = subscription.anchor_day
    part = charge_part_after(line, first_day, anchor) - charge_part_after(line, until, anchor)
    return (line, -part) if part else (None, ZERO)


def _revenue_account_of(charge: Charge, subscriber_account_id: int) -> int:
    """The revenue account the charge went to: its plan's service, or the other leg of its own transaction."""
    if charge.price_id is not None:
        return ledger.revenue_account(charge.price.plan.service).pk
    legs = Posting.objects.filter(transaction_id=charge.transaction_id).exclude(account_id=subscriber_account_id)
    accounts = list(legs.values_list("account_id", flat=True))
    if len(accounts) != 1:
        raise ValidationError(_("This charge cannot be reversed on its own."), code="not_reversible")
    return accounts[0]


def _day(day: dt.date) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")
