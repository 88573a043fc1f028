"""What a subscription is offered before anything is written, for the console's card and the portal alike.

- plan changes: the plans offered with the monthly fee this subscription would pay and what a change to each does
  (``change_direction``: an upgrade or a change at the same price takes effect now, a downgrade at the next
  period, the rule ``selectors.preview_plan_change`` applies);
- freezes: the policy's terms, the days left this year, the fee, and the amounts of a freeze of N days;
- promised payments: the policy's terms and the amounts of one.

Each "no" is the action's own check, raised in the action's words and codes: ``check_freeze`` and
``check_promised`` are called by ``do_freeze_subscription`` and ``do_take_promised_payment`` themselves, so the
card never offers, and the portal never previews, what the action would refuse. The actions stay the authority;
these only read, but for a freeze behind a missed billing run, whose catch-up they do in a savepoint rolled back.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from abonent.catalog.models import FreezePolicy, Plan, PlanPrice, PromisedPaymentPolicy
from abonent.core import clock
from abonent.core.money import format_money, quantize

from .models import Freeze, PromisedPayment, PromisedPaymentStatus, Subscription, SubscriptionStatus

ZERO = Decimal("0.00")


def closed_refusal() -> ValidationError:
    """Billing's refusal of anything asked for a closed account (its actions raise the same)."""
    return ValidationError(_("The account is closed."), code="subscriber_closed")


def below_access_threshold(balance: Decimal, credit_limit: Decimal) -> bool:
    """Whether an account with ``balance`` (an open promised payment included) is one dunning restricts: access
    follows money, and it is cut to the payment page when balance + credit limit falls below zero (DESIGN.md
    invariant 5; an exemption aside)."""
    return balance + credit_limit < 0


# --- plan changes -----------------------------------------------------------------------------------------


class Direction(models.TextChoices):
    UPGRADE = "upgrade", gettext_lazy("Upgrade: takes effect now")
    SAME = "same", gettext_lazy("Same price: takes effect now")
    DOWNGRADE = "downgrade", gettext_lazy("Downgrade: from the next period")


def change_direction(old_fee: Decimal, new_fee: Decimal) -> str:
    """What a change from a plan at ``old_fee`` a month to one at ``new_fee`` is (the prices this subscription
    pays): a dearer or equal plan takes effect now, a cheaper one at the next period (DOMAIN.md, Plan change)."""
    if new_fee > old_fee:
        return Direction.UPGRADE
    return Direction.SAME if new_fee == old_fee else Direction.DOWNGRADE


@dataclass(frozen=True)
class PlanChoice:
    """A plan offered to a subscription: the monthly fee it would pay on it today, and what changing to it does."""

    plan: Plan
    monthly_fee: Decimal
    direction: str


def monthly_fees(subscription: Subscription, plans: Iterable[Plan], day: dt.date, *, pricing=None) -> dict:
    """The monthly fee ``subscription`` would pay on each of ``plans`` on ``day``: the list price (one query for
    all), or with pricing rules its own, its group's or a bundle's (``pricing.effective_for``). A plan without a
    price that day is left out: a change to it cannot be previewed."""
    from .pricing.rules import RunPricing
    from .pricing.selectors import effective_for

    plans = list(plans)
    fees: dict[int, Decimal] = {}
    rows = PlanPrice.objects.filter(plan_id__in=[p.pk for p in plans], valid_from__lte=day)
    for plan_id, fee in rows.order_by("plan_id", "-valid_from").values_list("plan_id", "monthly_fee"):
        fees.setdefault(plan_id, fee)
    pricing = pricing or RunPricing()
    if not pricing.empty:
        for plan in plans:
            if plan.pk in fees:
                fees[plan.pk] = effective_for(subscription, plan, day, pricing=pricing)[1].monthly_fee
    return fees


def plan_choices(subscription: Subscription, offered: Iterable[Plan], *, pricing=None) -> list[PlanChoice]:
    """``offered`` (``selectors.plans_offered``) as the console lists them: dearer first within each direction,
    each with the fee this subscription would pay and what a change to it does."""
    offered = list(offered)
    today = clock.today()
    fees = monthly_fees(subscription, [subscription.plan, *offered], today, pricing=pricing)
    current = fees.get(subscription.plan_id)
    choices = [
        PlanChoice(plan, fees[plan.pk], change_direction(current, fees[plan.pk]) if current is not None else "")
        for plan in offered
        if plan.pk in fees
    ]
    order = {Direction.UPGRADE: 0, Direction.SAME: 1, Direction.DOWNGRADE: 2}
    return sorted(choices, key=lambda c: (order.get(c.direction, 3), -c.monthly_fee, c.plan.name))


# --- freezes ----------------------------------------------------------------------------------------------


def freeze_days_used(subscription: Subscription, year: int) -> int:
    """Frozen days of a calendar year, counting a freeze ended early only up to its end."""
    used = 0
    for freeze in Freeze.objects.filter(
        subscription__subscriber_id=subscription.subscriber_id,
        starts_on__lt=dt.date(year + 1, 1, 1),
        ends_on__gt=dt.date(year, 1, 1),
    ):
        end = freeze.ended_early_on or freeze.ends_on
        start = max(freeze.starts_on, dt.date(year, 1, 1))
        used += max((min(end, dt.date(year + 1, 1, 1)) - start).days, 0)
    return used


def freeze_fee(policy: FreezePolicy, days: int) -> Decimal:
    """What a freeze of ``days`` costs: the one-off fee, the fee per day, and per started month of 30 days."""
    return quantize(policy.activation_fee + policy.fee_per_day * days + policy.fee_per_month * math.ceil(days / 30))


def check_freeze(
    subscription: Subscription,
    policy: FreezePolicy | None,
    days: int,
    *,
    starts_on: dt.date,
    today: dt.date,
    available: Decimal,
    used: int | None = None,
) -> Decimal:
    """Raise ``do_freeze_subscription``'s refusal of a freeze of ``days`` from ``starts_on`` (its words, its codes,
    its order), with ``available`` the balance plus credit limit; return the freeze's fee. ``used``: the days
    frozen this year, when the caller has counted them."""
    if policy is None:
        raise ValidationError(_("This plan cannot be frozen."), code="freeze_not_allowed")
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ValidationError(_("Only an active subscription can be frozen."), code="subscription_not_active")
    if starts_on != today:
        raise ValidationError({"starts_on": ValidationError(_("A freeze starts today."), code="freeze_start")})
    if not policy.min_days <= days <= policy.max_days:
        message = _("A freeze lasts from %(min)d to %(max)d days.") % {"min": policy.min_days, "max": policy.max_days}
        raise ValidationError({"days": ValidationError(message, code="freeze_days_out_of_range")})
    year = starts_on.year
    used = freeze_days_used(subscription, year) if used is None else used
    if used + min(days, (dt.date(year + 1, 1, 1) - starts_on).days) > policy.yearly_quota_days:
        message = _("Only %(left)d freeze days are left this year.") % {"left": max(policy.yearly_quota_days - used, 0)}
        raise ValidationError({"days": ValidationError(message, code="freeze_quota_exceeded")})
    fee = freeze_fee(policy, days)
    if fee > 0 and available < fee:
        raise ValidationError(
            _("The balance does not cover the freeze fee of %(fee)s.") % {"fee": format_money(fee)},
            code="insufficient_funds",
        )
    return fee


@dataclass(frozen=True)
class FreezePreview:
    """A freeze of ``days`` from today: its fee, the unused part of the period given back, the balance after."""

    subscription_id: int
    days: int
    starts_on: dt.date
    ends_on: dt.date  # service and fees resume on this day
    fee: Decimal
    credit: Decimal
    balance_before: Decimal
    # What the freeze charges first for the periods a missed billing run left unbilled (``_catch_up``): the
    # credit is of the period as it stands after that charge, as the action computes it.
    catch_up: Decimal = ZERO

    @property
    def last_day(self) -> dt.date:
        return self.ends_on - dt.timedelta(days=1)

    @property
    def net(self) -> Decimal:
        """What the balance loses (negative: gains)."""
        return self.fee - self.credit + self.catch_up

    @property
    def balance_after(self) -> Decimal:
        return self.balance_before - self.net


def freeze_preview(subscription: Subscription, days: int) -> FreezePreview:
    """A freeze of ``days`` from today, or billing's refusal of it (its codes and words) as ValidationError.

    Behind a missed billing run, the action first charges the periods due up to today (``_catch_up``), which
    changes both the balance the fee is checked against and the credit for the period: the preview then does the
    same catch-up in a savepoint it rolls back, so the card shows, and refuses, what the confirmed freeze does."""
    from .selectors import get_balance

    if subscription.subscriber.is_closed:
        raise closed_refusal()
    today = clock.today()
    balance = get_balance(subscription.subscriber)
    from .actions.common import _catch_up, _lock_subscription, behind, rolled_back

    if not behind(subscription, today):
        return _freeze_now(subscription, days, today, balance.balance, balance.available, ZERO)

    def caught_up_preview() -> FreezePreview:
        caught_up = _catch_up(_lock_subscription(subscription), today)
        after = get_balance(caught_up.subscriber)
        catch_up = quantize(balance.balance - after.balance)
        return _freeze_now(caught_up, days, today, balance.balance, after.available, catch_up)

    return rolled_back(caught_up_preview)


def _freeze_now(
    subscription: Subscription, days: int, today: dt.date, before: Decimal, available: Decimal, catch_up: Decimal
) -> FreezePreview:
    from .selectors import unused_credit

    policy = subscription.plan.freeze_policy
    fee = check_freeze(subscription, policy, days, starts_on=today, today=today, available=available)
    credit = unused_credit(subscription, today)
    return FreezePreview(subscription.pk, days, today, today + dt.timedelta(days=days), fee, credit, before, catch_up)


@dataclass(frozen=True)
class FreezeTerms:
    """A freezable subscription's policy as the card states it, the days left of this year's quota, and why a
    freeze cannot be taken now (the action's words for the shortest one the policy allows), or ``""``."""

    policy: FreezePolicy
    days_left: int
    refusal: str = ""

    @property
    def fees(self) -> list[str]:
        """The policy's fees that are not zero, as the form states them ("21,00 ₽ a freeze", "3,00 ₽ a day")."""
        parts = (
            (self.policy.activation_fee, _("%(fee)s a freeze")),
            (self.policy.fee_per_day, _("%(fee)s a day")),
            (self.policy.fee_per_month, _("%(fee)s a started month")),
        )
        return [text % {"fee": format_money(fee)} for fee, text in parts if fee]


def freeze_terms(subscription: Subscription, *, available: Decimal) -> FreezeTerms | None:
    """The freeze terms of an active subscription whose plan has a freeze policy (None otherwise); one query."""
    policy = subscription.plan.freeze_policy
    if policy is None:
        return None
    today = clock.today()
    used = freeze_days_used(subscription, today.year)
    terms = FreezeTerms(policy, max(policy.yearly_quota_days - used, 0))
    try:
        check_freeze(
            subscription, policy, policy.min_days, starts_on=today, today=today, available=available, used=used
        )
    except ValidationError as exc:
        return FreezeTerms(policy, terms.days_left, " ".join(exc.messages))
    return terms


# --- promised payments ------------------------------------------------------------------------------------


def check_promised_amount(policy: PromisedPaymentPolicy, amount: Decimal) -> None:
    if amount > policy.max_amount:
        raise ValidationError(
            {
                "amount": ValidationError(
                    _("A promised payment is at most %(max)s.") % {"max": format_money(policy.max_amount)},
                    code="promised_amount_too_large",
                )
            }
        )


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def check_promised(
    subscriber, policy: PromisedPaymentPolicy, *, balance: Decimal, today: dt.date, opened: bool | None = None
) -> None:
    """Raise ``do_take_promised_payment``'s refusal of a promised payment now, whatever its amount (its words, its
    codes, its order): one already open, one taken this month when the policy allows one a month, a debt past the
    policy's limit. ``balance``: the account's (the action passes the locked row's); ``opened``: whether one is
    open, when the caller has read it (the action reads it here, under the account's lock)."""
    if opened is None:
        opened = PromisedPayment.objects.filter(subscriber_id=subscriber.pk, status=PromisedPaymentStatus.OPEN).exists()
    if opened:
        raise ValidationError(_("A promised payment is already open."), code="promised_already_open")
    if (
        policy.once_per_month
        and PromisedPayment.objects.filter(
            subscriber_id=subscriber.pk, taken_at__gte=_local_midnight(today.replace(day=1))
        ).exists()
    ):
        raise ValidationError(_("A promised payment can be taken once a month."), code="promised_once_per_month")
    if balance < -policy.max_debt:
        raise ValidationError(
            _("The debt of %(debt)s is too large for a promised payment (at most %(max)s).")
            % {"debt": format_money(-balance), "max": format_money(policy.max_debt)},
            code="promised_debt_too_large",
        )


@dataclass
class PromisedOffer:
    """The promised payment block: the policy (None: the plan offers none), the open one, why not now."""

    policy: PromisedPaymentPolicy | None
    open: PromisedPayment | None = None
    refusal: str = ""
    refusal_code: str = ""
    due_on: dt.date | None = None  # the last day of one taken today

    @property
    def available(self) -> bool:
        return self.policy is not None and not self.refusal


_UNREAD = object()


def promised_offer(subscriber, *, policy=_UNREAD, opened=_UNREAD, balance: Decimal | None = None) -> PromisedOffer:
    """The policy and whether it allows a promised payment now, refused in billing's words, in billing's order
    (``check_promised``). ``policy`` (the subscriber's, or None), ``opened`` (the open one, or None) and
    ``balance``: what the caller has read already."""
    from .selectors import get_balance, promised_payment_policy

    if policy is _UNREAD:
        policy = promised_payment_policy(subscriber)
    if opened is _UNREAD:
        opened = PromisedPayment.objects.filter(subscriber_id=subscriber.pk, status=PromisedPaymentStatus.OPEN).first()
    if policy is None:
        return PromisedOffer(None, opened)
    today = clock.today()
    offer = PromisedOffer(policy, opened, due_on=today + dt.timedelta(days=policy.days))
    if subscriber.is_closed:
        offer.refusal, offer.refusal_code = closed_refusal().messages[0], "subscriber_closed"
        return offer
    balance = quantize(get_balance(subscriber).balance) if balance is None else balance
    try:
        check_promised(subscriber, policy, balance=balance, today=today, opened=opened is not None)
    except ValidationError as exc:
        offer.refusal, offer.refusal_code = exc.messages[0], exc.code
    return offer


@dataclass(frozen=True)
class PromisedPreview:
    """A promised payment of ``amount`` taken now: credited now, its fee taken now, withdrawn after ``due_on``
    unless a payment repays it first."""

    amount: Decimal
    fee: Decimal
    due_on: dt.date
    balance_before: Decimal

    @property
    def balance_after(self) -> Decimal:
        return self.balance_before + self.amount - self.fee


def promised_preview(subscriber, amount: Decimal | None) -> PromisedPreview:
    """A promised payment of ``amount`` (None: the most the policy allows) taken now, or billing's refusal."""
    from .selectors import get_balance, promised_payment_policy

    if subscriber.is_closed:
        raise closed_refusal()
    policy = promised_payment_policy(subscriber)
    if policy is None:
        raise ValidationError(_("The subscriber's plan offers no promised payment."), code="promised_not_offered")
    amount = policy.max_amount if amount is None else amount
    if amount <= 0:
        raise ValidationError(
            {"amount": ValidationError(_("The amount must be greater than zero."), code="amount_not_positive")}
        )
    check_promised_amount(policy, amount)
    today = clock.today()
    balance = get_balance(subscriber).balance
    check_promised(subscriber, policy, balance=balance, today=today)
    return PromisedPreview(amount, policy.fee, today + dt.timedelta(days=policy.days), balance)
