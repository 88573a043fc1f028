"""The portal's plan page: what each subscription is on, what it may switch to, and a change confirmed only as
the subscriber saw it.

The offer is billing's ``plans_offered(channel="portal")`` (the current plan's ``switchable_to``, same service,
not archived) narrowed to public plans (issue 15: "``switchable_to``, public"): a plan kept for a few
corporate contracts is never offered in the cabinet, even if someone ticked it in ``switchable_to``.

"What was shown is what is charged": the preview page carries the amounts it showed, and the confirmation
runs billing's action and then compares what the action actually wrote with them, in one transaction
(``as_seen``). If they differ (a day passed, a payment arrived, the price changed, a missed billing run was
caught up first) the transaction is rolled back and ``PreviewChanged`` carries what the change would do now, to
be shown again. Measuring what was written, rather than trusting a second preview, keeps the rule true whatever
the action does before the change itself. The preview itself runs the action's catch-up (``billing.actions.
preview_change_plan``): on the 1st before the billing run it shows the month charged at the current plan first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing import actions as billing
from abonent.billing import selectors as billing_data
from abonent.billing.models import Charge, ChargeKind, Subscription, SubscriptionStatus
from abonent.billing.offers import closed_refusal  # noqa: F401 - read through this module by the services page
from abonent.billing.pricing.rules import RunPricing
from abonent.billing.pricing.selectors import effective_for
from abonent.billing.selectors import PlanChangePreview
from abonent.catalog.forms import kbps_to_mbps
from abonent.catalog.models import Plan, PlanPrice
from abonent.core import clock
from abonent.core.money import quantize

from . import as_seen
from .busy import money_write

ZERO = Decimal("0.00")
# The charges of a plan change itself; any other charge its action writes is the catch-up of unbilled periods.
CHANGE_KINDS = (ChargeKind.PRORATION_CREDIT, ChargeKind.PRORATION_CHARGE)


class PreviewChanged(Exception):
    """The amounts are not those the subscriber was shown: nothing was done. ``fresh`` is the preview now."""

    def __init__(self, fresh):
        super().__init__("preview changed")
        self.fresh = fresh


class AlreadyOnPlan(ValidationError):
    """The subscription is on the plan already: a second click of a change that went through (it waited for the
    first one's lock). Nothing is done; the page says "You are on … now", the API answers 422 ``same_plan``."""

    def __init__(self, plan):
        message = _("The subscription is already on this plan.")
        super().__init__({"plan": ValidationError(message, code="same_plan")})
        self.plan = plan


# --- reads ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speed:
    """A speed as plans are sold: Mbit/s (the models keep kbit/s, as NAS attributes take it)."""

    download_kbps: int
    upload_kbps: int

    @property
    def download_mbps(self) -> Decimal:
        return kbps_to_mbps(self.download_kbps)

    @property
    def upload_mbps(self) -> Decimal:
        return kbps_to_mbps(self.upload_kbps)

    @property
    def symmetric(self) -> bool:
        """One number says it: upload equals download, or is not set."""
        return self.upload_kbps in (0, self.download_kbps)


@dataclass(frozen=True)
class PlanCard:
    """A plan as the portal shows it: name, speed and today's monthly price (None: no price today)."""

    plan: Plan
    monthly_fee: Decimal | None

    @property
    def speed(self) -> Speed:
        return Speed(self.plan.download_kbps, self.plan.upload_kbps)


@dataclass
class SubscriptionPlans:
    """One current subscription on the plan page."""

    subscription: Subscription
    current: PlanCard
    pending: PlanCard | None
    offered: list[PlanCard]

    @property
    def changeable(self) -> bool:
        """Only an active subscription of an open account changes plan (billing refuses a frozen one, and any of a
        closed account)."""
        return self.subscription.status == SubscriptionStatus.ACTIVE and not self.subscription.subscriber.is_closed


def subscriptions(request_or_subscriber) -> QuerySet[Subscription]:
    """The signed-in subscriber's subscriptions that are not terminated (for ``access.own``)."""
    subscriber = getattr(request_or_subscriber, "subscriber", request_or_subscriber)
    return billing_data.current_subscriptions(subscriber).select_related(
        "plan__freeze_policy", "plan__promised_payment_policy", "subscriber"
    )


def offered_plans(subscription: Subscription) -> QuerySet[Plan]:
    return billing_data.plans_offered(subscription, channel="portal")


def offered_plan(subscription: Subscription, plan_id: int) -> Plan | None:
    """The plan ``plan_id`` if it is offered to ``subscription`` in the portal, else None (the caller's 404)."""
    try:
        return offered_plans(subscription).select_related("service").filter(pk=int(plan_id)).first()
    except (TypeError, ValueError, OverflowError):
        return None


def prices_today(plan_ids: Iterable[int], day: dt.date) -> dict[int, Decimal]:
    """Each plan's monthly fee on ``day`` (the newest price version from then), in one query."""
    fees: dict[int, Decimal] = {}
    rows = PlanPrice.objects.filter(plan_id__in=list(plan_ids), valid_from__lte=day).order_by("plan_id", "-valid_from")
    for plan_id, fee in rows.values_list("plan_id", "monthly_fee"):
        fees.setdefault(plan_id, fee)
    return fees


def plans_of(subscriber) -> list[SubscriptionPlans]:
    """Every current subscription with its plan, a scheduled downgrade and the public plans it may switch to."""
    today = clock.today()
    rows = list(subscriptions(subscriber).order_by("started_on", "pk"))
    offers = {s.pk: list(offered_plans(s)) for s in rows}
    plan_ids = {s.plan_id for s in rows} | {s.pending_plan_id for s in rows if s.pending_plan_id}
    plan_ids |= {p.pk for plans in offers.values() for p in plans}
    list_fees = prices_today(plan_ids, today)
    pricing = RunPricing()
    page = []
    for s in rows:
        fees = list_fees
        if not pricing.empty:
            # The prices this subscriber pays (its own, its group's, a bundle's): what a change would charge.
            fees = dict(list_fees)
            for plan in [s.plan, s.pending_plan, *offers[s.pk]]:
                if plan is not None and plan.pk in list_fees:
                    fees[plan.pk] = effective_for(s, plan, today, pricing=pricing)[1].monthly_fee
        page.append(
            SubscriptionPlans(
                subscription=s,
                current=PlanCard(s.plan, fees.get(s.plan_id)),
                pending=PlanCard(s.pending_plan, fees.get(s.pending_plan_id)) if s.pending_plan_id else None,
                # A plan without a price today cannot be previewed: not offered until it has one.
                offered=[PlanCard(p, fees[p.pk]) for p in offers[s.pk] if p.pk in fees],
            )
        )
    return page


def preview(subscription: Subscription, plan: Plan) -> PlanChangePreview:
    """What changing to ``plan`` would do now, the catch-up of an unbilled period included; billing's refusals
    (``plan_not_offered``, ``subscription_not_active``, ``subscriber_closed``, ``plan_without_price``) as its
    ValidationError."""
    return billing.preview_change_plan(subscription, plan, channel="portal")


def new_plan_until(subscription: Subscription, plan: Plan) -> dt.date:
    """The last day the charge of an immediate change pays for (the new plan's period end, inclusive)."""
    return billing_data.new_span_end(subscription, plan, clock.today()) - dt.timedelta(days=1)


# --- confirmed as seen ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeenPlanChange:
    """The terms the subscriber saw (``as_seen``); one left None is not compared. ``net`` is what confirming takes
    off the balance in all (``PlanChangePreview.total``: the catch-up and the change), as the API shows it."""

    net: Decimal | None = None
    immediate: bool | None = None
    effective_on: dt.date | None = None
    credit: Decimal | None = None
    charge: Decimal | None = None
    catch_up: Decimal | None = None
    balance_after: Decimal | None = None


def matches(seen: SeenPlanChange, done: PlanChangePreview) -> bool:
    return as_seen.matches(seen, done, net=done.total)


def lock(subscription: Subscription) -> Subscription:
    """The subscription locked for the rest of the transaction, as billing's actions lock it (they lock it again,
    which is free): a double submit waits here and then sees the first one's result. Its own row only, by key,
    then read with its plan and subscriber (billing's ``_lock_subscription`` says why: a ``FOR UPDATE`` joined to
    the plan locked the plan for every subscriber on it, and lost the row when a concurrent change moved it)."""
    Subscription.objects.select_for_update().filter(pk=subscription.pk).values_list("pk", flat=True).get()
    return Subscription.objects.select_related("plan", "subscriber").get(pk=subscription.pk)


def last_charge_id(subscription: Subscription) -> int:
    """The newest charge of the subscription: what an action writes after it (under the lock) is its own."""
    return (
        Charge.objects.filter(subscription_id=subscription.pk).order_by("-pk").values_list("pk", flat=True).first() or 0
    )


def charged_since(subscription: Subscription, after_id: int, *kinds: str) -> Decimal:
    """The sum of the subscription's charges of ``kinds`` written after charge ``after_id`` (credits negative)."""
    rows = Charge.objects.filter(subscription_id=subscription.pk, pk__gt=after_id, kind__in=kinds)
    # SQLite sums decimals as floats: back to kopecks, as the amounts were written.
    return quantize(rows.aggregate(total=Sum("amount"))["total"] or ZERO)


def discount_taken_back_since(subscription: Subscription, after_id: int) -> Decimal:
    """The discount lines an event wrote after charge ``after_id``: a credit's discount of the days it gives back
    (billing/pricing), part of the credit, not of a catch-up."""
    rows = Charge.objects.filter(
        subscription_id=subscription.pk, pk__gt=after_id, kind=ChargeKind.DISCOUNT, event__isnull=False
    )
    return quantize(rows.aggregate(total=Sum("amount"))["total"] or ZERO)


def balance_now(subscriber) -> Decimal:
    return quantize(billing_data.get_balance(subscriber).balance)


def change_plan_as_seen(subscription: Subscription, plan: Plan, seen: SeenPlanChange) -> PlanChangePreview:
    """Change ``subscription`` to ``plan`` as the portal's subscriber confirmed it, if it does what ``seen``
    says; else nothing is written and ``PreviewChanged`` carries what it would do now.

    A downgrade already scheduled to ``plan`` is not scheduled again (a double submit): its preview is returned
    with nothing written. A subscription already on ``plan`` (a double submit of an upgrade) is ``AlreadyOnPlan``.
    """
    with money_write():
        subscription = lock(subscription)
        if subscription.plan_id == plan.pk:
            raise AlreadyOnPlan(plan)
        if subscription.pending_plan_id == plan.pk:
            return PlanChangePreview(
                subscription.pk, subscription.plan_id, plan.pk, False, subscription.pending_plan_from, ZERO, ZERO,
                balance_now(subscription.subscriber),
            )  # fmt: skip
        marker = last_charge_id(subscription)
        changed = billing.do_change_plan(subscription, plan=plan, acting_user=None, channel="portal")
        balance_after = balance_now(subscription.subscriber)
        # The discount of the days given back is the change's own (a line keyed by its event, billing/pricing).
        taken_back = discount_taken_back_since(subscription, marker)
        catch_up = charged_since(subscription, marker, *(k for k in ChargeKind.values if k not in CHANGE_KINDS))
        catch_up -= taken_back
        if changed.plan_id == plan.pk:
            credit = -charged_since(subscription, marker, ChargeKind.PRORATION_CREDIT) - taken_back
            charge = charged_since(subscription, marker, ChargeKind.PRORATION_CHARGE)
            effective_on, immediate = timezone.localdate(clock.now()), True
        else:
            credit = charge = ZERO
            effective_on, immediate = changed.pending_plan_from, False
        done = PlanChangePreview(
            subscription.pk, subscription.plan_id, plan.pk, immediate, effective_on, credit, charge,
            balance_after + catch_up + charge - credit, catch_up,
        )  # fmt: skip
        if not matches(seen, done):
            raise PreviewChanged(done)  # rolls the change back with this transaction
        return done
