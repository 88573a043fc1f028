"""The portal's services page: freeze, promised payment and turbo, each with its terms and its amounts shown
before the subscriber confirms, and confirmed only as shown (the rule of ``plans_data``).

The previews say what billing's actions will do; where one says "no" the reason is billing's own words (the
same messages, tests hold them equal), so the page never offers what the action would refuse. The actions stay
the authority: a confirmation runs the action, measures what it wrote, and rolls back when any term shown is not
what it did (``as_seen``; ``PreviewChanged``): a freeze's fee, the credit given back and its dates; a turbo's
price, hours and speeds; a promised payment's fee and days. A closed account is offered none of them (billing
refuses them with ``subscriber_closed``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing import actions as billing
from abonent.billing import selectors as billing_data
from abonent.billing.models import (
    Charge,
    ChargeKind,
    Freeze,
    FreezeStatus,
    PromisedPayment,
    Subscription,
    SubscriptionStatus,
)
from abonent.billing.offers import (  # noqa: F401 - read through this module by the services views and API
    FreezePreview,
    PromisedOffer,
    freeze_preview,
    promised_offer,
)
from abonent.billing.pricing.selectors import next_fee
from abonent.catalog.models import FreezePolicy
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core import clock
from abonent.core.money import quantize

from . import as_seen
from .busy import money_write
from .plans_data import (
    ZERO,
    PreviewChanged,
    balance_now,
    charged_since,
    closed_refusal,
    discount_taken_back_since,
    last_charge_id,
    lock,
    subscriptions,
)
from .turbo_data import (  # noqa: F401 - the services page's turbo, read through this module by its views and API
    SeenTurbo,
    TurboCard,
    TurboOffer,
    TurboPreview,
    buy_turbo_as_seen,
    offered_turbo,
    turbo_offers,
    turbo_preview,
)

# The terms of a freeze's preview remembered for the app's token (``as_seen``; the balance is not).
FREEZE_TERMS = ("fee", "credit", "starts_on", "ends_on")


# --- freeze -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnfreezePreview:
    """Ending a freeze now: the fee of the freeze days not used given back, the plan's fee resumed."""

    subscription_id: int
    resumes_on: dt.date
    refund: Decimal
    charge: Decimal
    balance_before: Decimal

    @property
    def net(self) -> Decimal:
        return self.charge - self.refund

    @property
    def balance_after(self) -> Decimal:
        return self.balance_before - self.net


@dataclass
class FreezeOffer:
    subscription: Subscription
    policy: FreezePolicy | None
    days_left: int  # of the policy's yearly quota, this calendar year
    active: Freeze | None = None
    unfreeze: UnfreezePreview | None = None
    refusal: str = ""  # why a freeze cannot be taken now

    @property
    def last_day(self) -> dt.date | None:
        """The active freeze's last frozen day (``ends_on`` is the day service resumes)."""
        return self.active.ends_on - dt.timedelta(days=1) if self.active else None


def freeze_offer(subscription: Subscription) -> FreezeOffer | None:
    """The freeze block of one subscription; None when its plan cannot be frozen and it is not frozen."""
    policy = subscription.plan.freeze_policy
    active = Freeze.objects.filter(subscription=subscription, status=FreezeStatus.ACTIVE).select_related("policy")
    active = active.first()
    if policy is None and active is None:
        return None
    today = clock.today()
    days_left = max(policy.yearly_quota_days - billing.freeze_days_used(subscription, today.year), 0) if policy else 0
    offer = FreezeOffer(subscription, policy, days_left, active)
    if active is not None:
        offer.unfreeze = unfreeze_preview(subscription, active)
    elif subscription.subscriber.is_closed:
        offer.refusal = closed_refusal().messages[0]
    elif subscription.status != SubscriptionStatus.ACTIVE:
        offer.refusal = _("Only an active subscription can be frozen.")
    elif days_left == 0:
        offer.refusal = _("Only %(left)d freeze days are left this year.") % {"left": 0}
    return offer


@dataclass(frozen=True)
class SeenFreeze:
    """The freeze terms the subscriber saw (``as_seen``); one left None is not compared."""

    fee: Decimal | None = None
    credit: Decimal | None = None
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None
    balance_after: Decimal | None = None


def freeze_as_seen(subscription: Subscription, days: int, seen: SeenFreeze) -> FreezePreview:
    """Freeze for ``days`` from today if it does what ``seen`` says; else nothing is written (``PreviewChanged``)."""
    with money_write():
        subscription = lock(subscription)
        marker = last_charge_id(subscription)
        before = balance_now(subscription.subscriber)
        freeze = billing.do_freeze_subscription(subscription, days=days, acting_user=None)
        fee = charged_since(subscription, marker, ChargeKind.FREEZE_FEE)
        credit = -charged_since(subscription, marker, ChargeKind.PRORATION_CREDIT)
        credit -= discount_taken_back_since(subscription, marker)
        after = balance_now(subscription.subscriber)
        # The rest of what the balance lost is the catch-up of a missed run's periods (offers.freeze_preview).
        catch_up = before - after + credit - fee
        done = FreezePreview(subscription.pk, days, freeze.starts_on, freeze.ends_on, fee, credit, before, catch_up)
        if not as_seen.matches(seen, done):
            raise PreviewChanged(done)
        return done


def unfreeze_preview(subscription: Subscription, freeze: Freeze) -> UnfreezePreview:
    """What ending ``freeze`` today gives back and charges, as billing computes it: the freeze fee of the days
    booked and not used (the policy's minimum counts as used), and the plan's fee for the rest of the current
    period. The confirmation checks it against what the unfreeze actually wrote."""
    today = clock.today()
    resumes_on = min(today, freeze.ends_on)
    refund = ZERO
    paid = Charge.objects.filter(event_id=freeze.event_id, kind=ChargeKind.FREEZE_FEE, amount__gt=0).first()
    if paid is not None and freeze.event_id is not None and resumes_on < freeze.ends_on:
        used = max((resumes_on - freeze.starts_on).days, freeze.policy.min_days)
        left = paid.amount + sum(paid.reversals.values_list("amount", flat=True), ZERO)
        refund = max(min(paid.amount - min(billing.freeze_fee(freeze.policy, used), paid.amount), left), ZERO)
    plan = subscription.plan
    try:
        # At the subscription's price, net of its discount, as the run will charge it (billing/pricing).
        charge = quantize(
            next_fee(
                plan,
                price_on(plan, resumes_on),
                resumes_on,
                subscription.anchor_day,
                subscription_id=subscription.pk,
                subscriber_id=subscription.subscriber_id,
            )[0]
        )
    except NoPriceError:
        charge = ZERO
    return UnfreezePreview(subscription.pk, resumes_on, refund, charge, balance_now(subscription.subscriber))


@dataclass(frozen=True)
class SeenUnfreeze:
    """The unfreeze terms the subscriber saw (``as_seen``); one left None is not compared."""

    net: Decimal | None = None
    refund: Decimal | None = None
    charge: Decimal | None = None
    balance_after: Decimal | None = None


def unfreeze_as_seen(subscription: Subscription, seen: SeenUnfreeze | None) -> UnfreezePreview:
    """End the freeze now if it gives back and charges what ``seen`` says (``None``: not compared)."""
    with money_write():
        subscription = lock(subscription)
        if subscription.status != SubscriptionStatus.FROZEN:
            raise ValidationError(_("The subscription is not frozen."), code="not_frozen")
        marker = last_charge_id(subscription)
        billing.do_unfreeze_subscription(subscription, acting_user=None)
        refund = -charged_since(subscription, marker, ChargeKind.FREEZE_FEE)
        charge = charged_since(subscription, marker, *(k for k in ChargeKind.values if k != ChargeKind.FREEZE_FEE))
        after = balance_now(subscription.subscriber)
        done = UnfreezePreview(subscription.pk, clock.today(), refund, charge, after + charge - refund)
        if seen is not None and not as_seen.matches(seen, done):
            raise PreviewChanged(done)
        return done


# --- promised payment -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeenPromised:
    """The promised payment's terms the subscriber saw (``as_seen``): its fee and for how many days."""

    fee: Decimal | None = None
    days: int | None = None


def take_promised_as_seen(subscriber, amount: Decimal | None, seen: SeenPromised) -> PromisedPayment:
    """Take a promised payment of ``amount`` if its fee and days are the ones shown (None: not compared)."""
    with money_write():
        promised = billing.do_take_promised_payment(subscriber, acting_user=None, amount=amount)
        days = (promised.due_on - timezone.localdate(promised.taken_at)).days
        if not as_seen.matches(seen, promised, days=days):
            raise PreviewChanged(None)  # the caller reads the offer again once this is rolled back
        return promised


# --- the page ---------------------------------------------------------------------------------------------


@dataclass
class ServicesPage:
    balance: billing_data.Balance
    freezes: list[FreezeOffer]
    promised: PromisedOffer
    turbos: list[TurboOffer]
    # On a time plan: the page links to ``/my/time/`` (time left, packages).
    on_time_plan: bool = False


def services_of(subscriber) -> ServicesPage:
    rows = list(subscriptions(subscriber).order_by("started_on", "pk"))
    return ServicesPage(
        balance=billing_data.get_balance(subscriber),
        freezes=[offer for offer in map(freeze_offer, rows) if offer is not None],
        promised=promised_offer(subscriber),
        turbos=turbo_offers(rows),
        on_time_plan=any(row.plan.charge_mode == "time" for row in rows),
    )
