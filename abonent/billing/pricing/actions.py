"""Writes of pricing: individual and group prices, promotions, bundles. Each in one transaction, audited.

An override is never edited: it is ended (``valid_until``) and another one added, so whatever it priced stays
explained. Two overrides of one owner and plan never overlap: the owner's row (the subscription, the group) is
locked while the dates are checked, so two concurrent additions queue and the second sees the first.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from abonent.catalog.models import ChargeMode, DailyPricing, Plan
from abonent.core import audit, clock
from abonent.core.money import quantize, to_decimal
from abonent.staff.permissions import Perm
from abonent.subscribers.models import SubscriberGroup

from ..actions.common import _amount, _check
from ..models import Subscription, SubscriptionStatus
from .models import Bundle, BundleItem, PriceOverride, Promotion, PromotionKind, Stacking

HUNDRED = Decimal(100)


def _fee(value, field: str) -> Decimal:
    amount = _amount(value, field)
    if amount < 0:
        raise ValidationError({field: ValidationError(_("A price cannot be negative."), code="amount_negative")})
    return amount


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Give a reason for the price."), code="required")})
    return reason[:500]


def _dates(valid_from: dt.date, valid_until: dt.date | None, *, until_field: str = "valid_until") -> None:
    if valid_until is not None and valid_until < valid_from:
        raise ValidationError(
            {until_field: ValidationError(_("The end cannot be before the start."), code="dates_reversed")}
        )


def _overlapping(rows, valid_from: dt.date, valid_until: dt.date | None):
    rows = rows.filter(Q(valid_until__isnull=True) | Q(valid_until__gte=valid_from))
    if valid_until is not None:
        rows = rows.filter(valid_from__lte=valid_until)
    return rows


@transaction.atomic
def do_set_price_override(
    *,
    plan: Plan,
    monthly_fee,
    valid_from: dt.date,
    reason: str,
    acting_user,
    subscription: Subscription | None = None,
    group: SubscriberGroup | None = None,
    daily_fee=None,
    valid_until: dt.date | None = None,
) -> PriceOverride:
    """A price of ``plan`` for one subscription or for a group's members, from ``valid_from`` (inclusive) to
    ``valid_until`` (inclusive, open when ``None``)."""
    if (subscription is None) == (group is None):
        raise ValueError("a price override is for a subscription or for a group")
    if subscription is not None:
        Subscription.objects.select_for_update().filter(pk=subscription.pk).values_list("pk", flat=True).get()
        subscription = Subscription.objects.select_related("subscriber").get(pk=subscription.pk)
        _check(acting_user, Perm.PRICING_MANAGE, subscription.subscriber)
        if subscription.status == SubscriptionStatus.TERMINATED:
            raise ValidationError(_("The subscription has ended."), code="already_terminated")
        if plan.service_id != subscription.service_id:
            raise ValidationError(
                {"plan": ValidationError(_("The plan is of another service."), code="plan_other_service")}
            )
        owner = PriceOverride.objects.filter(subscription=subscription)
    else:
        _check(acting_user, Perm.PRICING_MANAGE)
        SubscriberGroup.objects.select_for_update().filter(pk=group.pk).values_list("pk", flat=True).get()
        owner = PriceOverride.objects.filter(group=group)
    if plan.charge_mode == ChargeMode.TIME:
        # Its time online is rated at the unit price; a "monthly fee" of it would be charged by nothing but a plan
        # change's rest-of-period charge (issue 16's attack review).
        raise ValidationError(
            {
                "plan": ValidationError(
                    _("A plan charged by time online has no fee to set a price of."), code="plan_time_rated"
                )
            }
        )
    reason = _reason(reason)
    monthly_fee = _fee(monthly_fee, "monthly_fee")
    daily_fee = None if daily_fee in (None, "") else _fee(daily_fee, "daily_fee")
    fixed_daily = plan.charge_mode == ChargeMode.DAILY and plan.daily_pricing == DailyPricing.FIXED
    if fixed_daily and daily_fee is None:
        raise ValidationError(
            {"daily_fee": ValidationError(_("A plan priced by the day needs a daily fee."), code="required")}
        )
    if not fixed_daily and daily_fee is not None:
        # A split-daily plan charges its monthly fee split by the month's days, a monthly plan its monthly fee: a
        # daily fee would be shown and charged by nothing.
        raise ValidationError(
            {
                "daily_fee": ValidationError(
                    _("Only a plan with a fixed daily fee takes a daily fee; set the monthly fee."),
                    code="daily_fee_not_used",
                )
            }
        )
    _dates(valid_from, valid_until)
    if _overlapping(owner.filter(plan=plan), valid_from, valid_until).exists():
        raise ValidationError(
            {
                "valid_from": ValidationError(
                    _("Another price of this plan is in force on some of these days: end it first."),
                    code="overlapping",
                )
            }
        )
    override = PriceOverride.objects.create(
        subscription=subscription,
        group=group,
        plan=plan,
        monthly_fee=monthly_fee,
        daily_fee=daily_fee,
        valid_from=valid_from,
        valid_until=valid_until,
        reason=reason,
        set_by=acting_user if getattr(acting_user, "pk", None) else None,
        created_at=clock.now(),
    )
    audit.record(
        actor=acting_user,
        action="billing.price_override_set",
        obj=override,
        subscriber_id=subscription.subscriber_id if subscription else None,
        after={
            "plan": plan.name,
            "group": group.name if group else None,
            "monthly_fee": monthly_fee,
            "daily_fee": daily_fee,
            "valid_from": valid_from,
            "valid_until": valid_until,
        },
        reason=reason,
    )
    return override


@transaction.atomic
def do_end_price_override(override: PriceOverride, *, valid_until: dt.date, acting_user, reason: str = ""):
    """End an override on ``valid_until`` (its last day). Days already charged keep the price they were charged
    at, so it cannot end before yesterday: that would not undo the charges, only misexplain them."""
    # Only the override's row is locked (its subscription is optional: no FOR UPDATE through an outer join).
    override = PriceOverride.objects.select_for_update(of=("self",)).get(pk=override.pk)
    subscriber = override.subscription.subscriber if override.subscription_id else None
    _check(acting_user, Perm.PRICING_MANAGE, subscriber)
    yesterday = clock.today() - dt.timedelta(days=1)
    if valid_until < override.valid_from and override.valid_from > clock.today():
        valid_until = None  # never in force: ended before it began
    elif valid_until < max(override.valid_from, yesterday):
        raise ValidationError(
            {
                "valid_until": ValidationError(
                    _("A price can be ended from yesterday on, not earlier."), code="end_in_the_past"
                )
            }
        )
    if override.valid_until is not None and valid_until is not None and valid_until > override.valid_until:
        raise ValidationError(
            {"valid_until": ValidationError(_("The price ends earlier already."), code="already_ended")}
        )
    before = override.valid_until
    if valid_until is None:
        # Never priced anything: the row goes, so it does not block a corrected one.
        override_id = override.pk
        audit.record(
            actor=acting_user,
            action="billing.price_override_withdrawn",
            obj=override,
            subscriber_id=subscriber.pk if subscriber else None,
            before={"valid_from": override.valid_from},
            reason=reason,
        )
        override.delete()
        override.pk = override_id
        return override
    override.valid_until = valid_until
    override.save(update_fields=["valid_until"])
    audit.record(
        actor=acting_user,
        action="billing.price_override_ended",
        obj=override,
        subscriber_id=subscriber.pk if subscriber else None,
        before={"valid_until": before},
        after={"valid_until": valid_until},
        reason=reason,
    )
    return override


def _promotion_value(kind: str, value) -> Decimal:
    if kind not in PromotionKind.values:
        raise ValidationError({"kind": ValidationError(_("Choose a percentage or an amount."), code="invalid_choice")})
    try:
        value = quantize(to_decimal(value))
    except (ValueError, ArithmeticError) as exc:
        raise ValidationError({"value": ValidationError(_("Enter a number."), code="invalid")}) from exc
    if value <= 0:
        raise ValidationError(
            {"value": ValidationError(_("The discount must be greater than zero."), code="value_not_positive")}
        )
    if kind == PromotionKind.PERCENT and value > HUNDRED:
        raise ValidationError(
            {"value": ValidationError(_("A percentage cannot exceed 100."), code="percent_too_large")}
        )
    return _amount(value, "value")


@transaction.atomic
def do_create_promotion(
    *,
    name: str,
    kind: str,
    value,
    acting_user,
    stacking: str = Stacking.BEST,
    plans=(),
    groups=(),
    bundle: Bundle | None = None,
    first_months: int | None = None,
    starts_on: dt.date | None = None,
    ends_on: dt.date | None = None,
) -> Promotion:
    _check(acting_user, Perm.PRICING_MANAGE)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ValidationError(_("Name the promotion."), code="required")})
    value = _promotion_value(kind, value)
    if stacking not in Stacking.values:
        raise ValidationError({"stacking": ValidationError(_("Choose how it stacks."), code="invalid_choice")})
    if first_months is not None and not 0 < first_months <= 120:
        raise ValidationError({"first_months": ValidationError(_("From 1 to 120 months."), code="months_out_of_range")})
    if starts_on and ends_on:
        _dates(starts_on, ends_on, until_field="ends_on")
    promotion = Promotion.objects.create(
        name=name[:200],
        kind=kind,
        value=value,
        stacking=stacking,
        bundle=bundle,
        first_months=first_months,
        starts_on=starts_on,
        ends_on=ends_on,
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
        created_at=clock.now(),
    )
    promotion.plans.set(plans)
    promotion.groups.set(groups)
    audit.record(
        actor=acting_user,
        action="billing.promotion_created",
        obj=promotion,
        after={"name": promotion.name, "kind": kind, "value": value, "stacking": stacking},
    )
    return promotion


@transaction.atomic
def do_end_promotion(promotion: Promotion, *, acting_user) -> Promotion:
    """Stop a promotion for the periods charged from now on (those charged keep their discount lines)."""
    _check(acting_user, Perm.PRICING_MANAGE)
    promotion = Promotion.objects.select_for_update().get(pk=promotion.pk)
    if promotion.is_active:
        promotion.is_active = False
        promotion.save(update_fields=["is_active"])
        audit.record(actor=acting_user, action="billing.promotion_ended", obj=promotion, before={"is_active": True})
    return promotion


def bundle_shares(total: Decimal, plans: list[Plan], day: dt.date) -> list[Decimal]:
    """The bundle's total split over its plans in proportion to their list prices on ``day``, rounded to the
    kopeck, the rounding remainder on the first plan (docs/billing-pricing.md)."""
    from abonent.catalog.selectors import price_on

    prices = [price_on(plan, day).monthly_fee for plan in plans]
    whole = sum(prices, Decimal("0.00"))
    # Nothing to be proportional to (all free): the whole total on the first plan.
    shares = [quantize(total * p / whole) if whole else Decimal("0.00") for p in prices]
    shares[0] += total - sum(shares, Decimal("0.00"))
    return shares


@transaction.atomic
def do_create_bundle(
    *,
    name: str,
    plans: list[Plan],
    total,
    valid_from: dt.date,
    acting_user,
    shares: list | None = None,
    valid_until: dt.date | None = None,
    reason: str = "",
) -> Bundle:
    """A bundle of plans of different services for ``total`` a month, split by ``shares`` (summing to the total)
    or, without them, in proportion to the plans' list prices."""
    from abonent.catalog.selectors import NoPriceError

    _check(acting_user, Perm.PRICING_MANAGE)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ValidationError(_("Name the bundle."), code="required")})
    total = _fee(total, "total")
    if len(plans) < 2 or len({p.service_id for p in plans}) != len(plans):
        raise ValidationError(
            {"plans": ValidationError(_("A bundle is two or more plans of different services."), code="bundle_plans")}
        )
    if any(p.charge_mode != ChargeMode.MONTHLY for p in plans):
        raise ValidationError(
            {"plans": ValidationError(_("Only monthly plans can be bundled."), code="bundle_plan_mode")}
        )
    _dates(valid_from, valid_until)
    if shares:
        if len(shares) != len(plans):
            raise ValidationError({"shares": ValidationError(_("One share per plan."), code="shares_count")})
        shares = [_fee(s, "shares") for s in shares]
        if sum(shares, Decimal("0.00")) != total:
            raise ValidationError(
                {"shares": ValidationError(_("The shares must add up to the total."), code="shares_sum")}
            )
    else:
        try:
            shares = bundle_shares(total, plans, valid_from)
        except NoPriceError as exc:
            raise ValidationError(
                {"plans": ValidationError(_("The plan has no price on this date."), code="plan_without_price")}
            ) from exc
    bundle = Bundle.objects.create(
        name=name[:200],
        valid_from=valid_from,
        valid_until=valid_until,
        reason=(reason or "")[:500],
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
        created_at=clock.now(),
    )
    BundleItem.objects.bulk_create(
        [BundleItem(bundle=bundle, plan=p, share=s) for p, s in zip(plans, shares, strict=True)]
    )
    audit.record(
        actor=acting_user,
        action="billing.bundle_created",
        obj=bundle,
        after={"name": bundle.name, "total": total, "shares": {p.name: s for p, s in zip(plans, shares, strict=True)}},
        reason=reason,
    )
    return bundle
