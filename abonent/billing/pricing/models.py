"""Individual and group prices, promotions and bundles (docs/billing-pricing.md).

A price override is dated and never edited once it may have priced a charge: it is ended (``valid_until`` set)
and a new one added. Charges do not point at overrides: a charge priced by one records the monthly fee it was
measured against (``Charge.base_fee``), so a later credit gives back exactly what was charged whatever happens to
the override afterwards.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import Plan
from abonent.core.money import MoneyField
from abonent.subscribers.models import SubscriberGroup


class PriceOverride(models.Model):
    """A plan's price for one subscription or for the members of a subscriber group, from ``valid_from`` to
    ``valid_until`` (the last day, inclusive; open-ended when empty)."""

    subscription = models.ForeignKey(
        "billing.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="price_overrides"
    )
    group = models.ForeignKey(
        SubscriberGroup, verbose_name=_("group"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    plan = models.ForeignKey(Plan, verbose_name=_("plan"), on_delete=models.PROTECT, related_name="+")
    monthly_fee = MoneyField(_("monthly fee"))
    # Fixed-daily plans are charged this a day instead of the plan's daily fee.
    daily_fee = MoneyField(_("daily fee"), null=True, blank=True)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=500)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("price override")
        verbose_name_plural = _("price overrides")
        ordering = ["-valid_from", "-id"]
        indexes = [
            # The billing run reads a chunk's few overrides by subscription id range: only rows that have one.
            models.Index(
                fields=["subscription", "valid_from"],
                condition=Q(subscription__isnull=False),
                name="billing_override_sub_idx",
            ),
            models.Index(fields=["group", "plan"], condition=Q(group__isnull=False), name="billing_override_group_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(subscription__isnull=False, group__isnull=True)
                | Q(subscription__isnull=True, group__isnull=False),
                name="billing_override_one_owner",
            ),
            models.CheckConstraint(
                condition=Q(monthly_fee__gte=0) & (Q(daily_fee__isnull=True) | Q(daily_fee__gte=0)),
                name="billing_override_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=models.F("valid_from")),
                name="billing_override_dates",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} {self.monthly_fee} @ {self.valid_from}"

    @property
    def source(self) -> str:
        return "subscription" if self.subscription_id else "group"


class PromotionKind(models.TextChoices):
    PERCENT = "percent", _("Percentage")
    AMOUNT = "amount", _("Fixed amount")


class Stacking(models.TextChoices):
    # Never combined: the subscriber gets the largest single discount (or the cumulative sum, if larger).
    BEST = "best", _("Best of")
    # Added to the other cumulative promotions that apply.
    CUMULATIVE = "cumulative", _("Cumulative")


class Bundle(models.Model):
    """Plans of different services priced as one: while a subscriber holds a subscription on every member plan,
    each of them is charged its share (``BundleItem.share``) instead of its list price."""

    name = models.CharField(_("name"), max_length=200)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("bundle")
        verbose_name_plural = _("bundles")
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=models.F("valid_from")),
                name="billing_bundle_dates",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BundleItem(models.Model):
    """A member plan of a bundle and its monthly share of the bundle's price."""

    bundle = models.ForeignKey(Bundle, on_delete=models.PROTECT, related_name="items")
    plan = models.ForeignKey(Plan, verbose_name=_("plan"), on_delete=models.PROTECT, related_name="+")
    share = MoneyField(_("share"))

    class Meta:
        verbose_name = _("bundle plan")
        verbose_name_plural = _("bundle plans")
        ordering = ["bundle", "id"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "plan"], name="billing_bundleitem_once"),
            models.CheckConstraint(condition=Q(share__gte=0), name="billing_bundleitem_share_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.bundle_id}: {self.plan_id} {self.share}"


class Promotion(models.Model):
    """A discount on recurring fees: a percentage or a fixed amount a period, for the fees it targets.

    Targets (all that are set must hold): the plans, the subscriber groups, a bundle (its members while priced as
    the bundle), the first ``first_months`` months of a subscription, periods starting within
    ``[starts_on, ends_on]``. Charged as a line of its own (``ChargeKind.DISCOUNT``) beside the fee.
    """

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=PromotionKind.choices)
    # A percentage (0 < p ≤ 100) or an amount of money a period, by ``kind``.
    value = models.DecimalField(_("value"), max_digits=14, decimal_places=2)
    stacking = models.CharField(_("stacking"), max_length=12, choices=Stacking.choices, default=Stacking.BEST)
    plans = models.ManyToManyField(Plan, verbose_name=_("plans"), blank=True, related_name="+")
    groups = models.ManyToManyField(SubscriberGroup, verbose_name=_("groups"), blank=True, related_name="+")
    bundle = models.ForeignKey(
        Bundle, verbose_name=_("bundle"), null=True, blank=True, on_delete=models.PROTECT, related_name="promotions"
    )
    first_months = models.PositiveSmallIntegerField(_("first months of a subscription"), null=True, blank=True)
    starts_on = models.DateField(_("from"), null=True, blank=True)
    ends_on = models.DateField(_("until"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("promotion")
        verbose_name_plural = _("promotions")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="percent", value__gt=0, value__lte=100) | Q(kind="amount", value__gt=0),
                name="billing_promotion_value",
            ),
            models.CheckConstraint(
                condition=Q(starts_on__isnull=True) | Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="billing_promotion_dates",
            ),
            models.CheckConstraint(
                condition=Q(first_months__isnull=True) | Q(first_months__gt=0), name="billing_promotion_months"
            ),
        ]

    def __str__(self) -> str:
        return self.name
