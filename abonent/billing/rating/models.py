"""What rating has rated: a subscription's traffic per billing period, the parts of sessions on time plans, and the
time packages bought (docs/billing-usage-rating.md, docs/billing-time-rating.md). Registered with the billing app
from billing/models.py."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import PlanPrice, TimePackage
from abonent.core.money import MoneyField

from ..models import Charge, Subscription, SubscriptionEvent


class TimePackagePurchase(models.Model):
    """A time package bought for a subscription: ``seconds`` online from ``starts_at`` until ``expires_at``.

    Paid by the charge of its event (``billing_charge_event_once``: one charge however often the purchase is
    retried). Rating takes time from the packages in effect, the soonest to expire first, before money; what is
    left at ``expires_at`` is lost. ``used_seconds`` only grows, under the rating's row lock.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="time_packages")
    package = models.ForeignKey(TimePackage, verbose_name=_("time package"), on_delete=models.PROTECT, related_name="+")
    event = models.OneToOneField(SubscriptionEvent, on_delete=models.PROTECT, related_name="+")
    seconds = models.PositiveIntegerField(_("time, s"))
    used_seconds = models.PositiveIntegerField(_("used, s"), default=0)
    price = MoneyField(_("price"))
    starts_at = models.DateTimeField(_("from"))
    expires_at = models.DateTimeField(_("until"))
    created_at = models.DateTimeField()
    # The portal form's one-time key (its SHA-256): the same form sent twice buys once. "" when bought otherwise.
    form_key = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("time package bought")
        verbose_name_plural = _("time packages bought")
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["subscription", "expires_at"], name="billing_timepkg_sub_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(seconds__gt=0), name="billing_timepkg_seconds_positive"),
            models.CheckConstraint(
                condition=Q(used_seconds__gte=0, used_seconds__lte=models.F("seconds")), name="billing_timepkg_used"
            ),
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("starts_at")), name="billing_timepkg_order"),
            models.CheckConstraint(condition=Q(price__gte=0), name="billing_timepkg_price_not_negative"),
            models.UniqueConstraint(
                fields=["subscription", "form_key"], condition=~Q(form_key=""), name="billing_timepkg_form_key_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.package_id} until {self.expires_at}"

    @property
    def left_seconds(self) -> int:
        return self.seconds - self.used_seconds


class TimeRating(models.Model):
    """One rated part of a session of a subscription on a time plan: the session cut at local midnight (which is
    where every billing period starts, too), and what that part cost.

    Unique by ``(session_id, day, revision)``: however often rating runs, and two at once, a day of a session is
    rated once (the loser of a race hits the constraint and writes nothing), whatever its start moves to (a NAS's
    counter a second ahead moves ``started_at`` back). Time online past what was rated of a day (a Stop arriving
    after the sweeper closed the session) is a further row of the day, ``revision`` one higher. ``final`` marks
    the last part of a closed session: it is not looked at again unless a later Stop moves its end past that
    part's end. A session that cannot be rated (negative or absurd duration, stopped before it started) gets one
    final row with ``skipped`` saying why, and no charge. ``session_id`` is the
    network session's id without a foreign key: billing does not know the network app (it knows billing).
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="time_ratings")
    session_id = models.BigIntegerField()
    part_start = models.DateTimeField(_("from"))
    part_end = models.DateTimeField(_("until"))
    day = models.DateField(_("day"))
    # 0 for a day's first rating; 1, 2… for time the session went on past it (a later Stop, the rest of a day rated
    # up to a plan change).
    revision = models.PositiveSmallIntegerField(default=0)
    seconds = models.BigIntegerField(_("online, s"), default=0)
    package_seconds = models.BigIntegerField(_("from packages, s"), default=0)
    money_seconds = models.BigIntegerField(_("paid, s"), default=0)
    units = models.BigIntegerField(_("units charged"), default=0)
    amount = MoneyField(_("amount"), default=0)
    price = models.ForeignKey(
        PlanPrice, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    charge = models.OneToOneField(Charge, null=True, blank=True, on_delete=models.PROTECT, related_name="time_rating")
    final = models.BooleanField(default=False)
    skipped = models.CharField(_("not rated because"), max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("rated time")
        verbose_name_plural = _("rated time")
        ordering = ["-part_start"]
        indexes = [
            models.Index(fields=["subscription", "day"], name="billing_timerating_sub_idx"),
            models.Index(fields=["session_id"], condition=Q(final=True), name="billing_timerating_final_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["session_id", "day", "revision"], name="billing_timerating_day_once"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="billing_timerating_amount_not_negative"),
            models.CheckConstraint(
                condition=Q(seconds__gte=0, package_seconds__gte=0, money_seconds__gte=0, units__gte=0),
                name="billing_timerating_counts_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} {self.part_start}: {self.amount}"


class UsageRating(models.Model):
    """The traffic of one subscription's billing period as last rated (billing/rating/traffic.py).

    One row per ``(subscription, period_start)``, written when the period is first rated, zero usage included,
    so usage arriving later (a spool replayed) is told apart from the first rating and charged as an
    adjustment. The money itself is in the charges (append-only): ``amount`` is what they add up to for the
    period, ``revision`` the ``cycle`` of the last one. The row is updated when late usage raises the amount.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="usage_ratings")
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("until"))
    # Bytes counted in the plan's direction, the included volume (prorated over plan changes and partial
    # periods) and the bytes charged for after the plan's rounding (whole GB or MB, or exact bytes).
    used_bytes = models.BigIntegerField(_("traffic used, bytes"))
    included_bytes = models.BigIntegerField(_("included traffic, bytes"))
    charged_bytes = models.BigIntegerField(_("traffic charged, bytes"))
    amount = MoneyField(_("amount"))
    revision = models.PositiveIntegerField(default=0)
    rated_at = models.DateTimeField(_("rated"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("traffic rating")
        verbose_name_plural = _("traffic ratings")
        constraints = [
            models.UniqueConstraint(fields=["subscription", "period_start"], name="billing_usagerating_once"),
            models.CheckConstraint(
                condition=Q(period_end__gt=models.F("period_start")), name="billing_usagerating_order"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="billing_usagerating_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.period_start}: {self.amount}"
