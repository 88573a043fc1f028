"""What the billing run will charge next, and what the subscriber should pay for it: the portal's home and the
console's card header show the same figures, from here.

- ``next_charge``: the fee the run will charge a subscription from its cursor, the period and amount exactly as the
  run computes them (``periods.period_for`` / ``amount_for``), at the price it pays (``pricing.next_fee``);
- ``upcoming_fee``: which plan and cursor that is for a subscription as it stands (a frozen one's first charge is on
  the freeze's end; a downgrade scheduled for that day or before charges the new plan);
- ``amount_to_pay``: what brings the money up to the next charges, the open promised payment included (any payment
  repays it first: ``actions.payments``), so "01.01: 900 ₽ will be charged, pay 960,68 ₽" is one rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from abonent.catalog.models import Plan, PlanPrice
from abonent.catalog.selectors import NoPriceError, price_on

from .models import SubscriptionStatus
from .periods import amount_for, period_for

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class NextCharge:
    """The next fee of one subscription: on ``on``, ``amount`` at the price of ``plan_name`` that day (the plan a
    scheduled downgrade switches to, when the switch comes first)."""

    on: dt.date
    amount: Decimal
    plan_name: str
    downgrade: bool


def next_charge(
    plan: Plan, anchor_day: int, cursor: dt.date, shown_on: dt.date, *, downgrade: bool, subscription=None
) -> tuple[NextCharge, PlanPrice] | None:
    """The fee the billing run will charge from ``cursor`` (shown as due on ``shown_on``): the period and amount
    exactly as the run computes them, at the plan's price that day. None when the plan has no price that day
    (the run parks such a subscription too). With ``subscription`` (its id, its subscriber's id and the loaded
    ``RunPricing``), at the price it pays (its own, its group's, a bundle's) net of its discount, and the price
    returned is that ``Effective`` price (billing/pricing)."""
    try:
        price = price_on(plan.pk, cursor)
    except NoPriceError:
        return None
    if subscription is not None:
        from .pricing.selectors import next_fee

        sid, subscriber_id, pricing = subscription
        amount, effective = next_fee(
            plan, price, cursor, anchor_day, subscription_id=sid, subscriber_id=subscriber_id, pricing=pricing
        )
        return NextCharge(shown_on, amount, plan.name, downgrade), effective
    start, end, full_start = period_for(plan, cursor, anchor_day)
    amount = amount_for(plan, price, start, end, full_start)[0]
    return NextCharge(shown_on, amount, plan.name, downgrade), price


def upcoming_fee(
    *,
    plan: Plan,
    pending: Plan | None,
    pending_from: dt.date | None,
    status: str,
    next_charge_on: dt.date,
    frozen_until: dt.date | None,
    anchor_day: int,
    today: dt.date,
    subscription: tuple,
) -> tuple[NextCharge, PlanPrice] | None:
    """The next fee of a live subscription as it stands: ``next_charge`` from its cursor, which for a frozen one is
    the freeze's end (billing's unfreeze moves the cursor there), of the plan a scheduled downgrade switches to when
    the switch comes first. A cursor already passed is charged by the next run, today. ``subscription`` is
    ``next_charge``'s (id, subscriber id, ``RunPricing``)."""
    frozen = status == SubscriptionStatus.FROZEN
    cursor = (frozen_until if frozen else None) or next_charge_on
    charged = pending if pending is not None and pending_from is not None and pending_from <= cursor else plan
    return next_charge(
        charged, anchor_day, cursor, max(cursor, today), downgrade=charged is pending, subscription=subscription
    )


def amount_to_pay(next_total: Decimal, *, available: Decimal, promised: Decimal) -> Decimal:
    """What to pay for the next charges to be covered: they, plus the open promised payment (a payment repays it
    first), less what the account has (balance + credit limit, the promised payment being part of the balance)."""
    return max(next_total + promised - available, ZERO)


def debt_to_pay(*, available: Decimal, promised: Decimal) -> Decimal:
    """The part of ``amount_to_pay`` that brings balance + credit limit back to zero once the promised payment is
    repaid: what restores access by itself."""
    return max(promised - available, ZERO)
