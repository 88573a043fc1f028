"""What the ISP sells: services, plans (tariffs) with dated price versions, freeze and promised-payment policies,
and turbo options (a paid temporary speed boost)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.core.money import MoneyField

# A week: longer than that is a plan change, not a boost.
MAX_TURBO_HOURS = 168


class ServiceKind(models.TextChoices):
    INTERNET = "internet", _("Internet access")
    IPTV = "iptv", _("IPTV")
    VOIP = "voip", _("Telephony (VoIP)")
    STATIC_IP = "static_ip", _("Static IP address")
    EQUIPMENT_RENTAL = "equipment_rental", _("Equipment rental")
    ONE_OFF = "one_off", _("One-off service")


class Service(models.Model):
    """A kind of thing sold (internet, IPTV, installation…); revenue is booked per service."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=150)
    kind = models.CharField(_("kind"), max_length=20, choices=ServiceKind.choices)
    # One-off services (installation, cable per metre) have a list price; recurring ones are priced by plans.
    one_off_price = MoneyField(_("price"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return self.name


class FreezePolicy(models.Model):
    """How a subscriber may pause a plan: duration limits, a yearly quota and what a pause costs."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    min_days = models.PositiveSmallIntegerField(_("minimum days"), default=1)
    max_days = models.PositiveSmallIntegerField(_("maximum days"), default=90)
    yearly_quota_days = models.PositiveSmallIntegerField(_("days per calendar year"), default=90)
    fee_per_day = MoneyField(_("fee per frozen day"), default=0)
    fee_per_month = MoneyField(_("fee per frozen month"), default=0)
    activation_fee = MoneyField(_("activation fee"), default=0)

    class Meta:
        verbose_name = _("freeze policy")
        verbose_name_plural = _("freeze policies")
        constraints = [
            models.CheckConstraint(
                condition=Q(min_days__gte=1) & Q(max_days__gte=models.F("min_days")), name="catalog_freeze_days_range"
            ),
            models.CheckConstraint(
                condition=Q(fee_per_day__gte=0, fee_per_month__gte=0, activation_fee__gte=0),
                name="catalog_freeze_fees_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PromisedPaymentPolicy(models.Model):
    """Temporary credit a subscriber may take: up to ``max_amount`` for ``days``, at most once a month."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    max_amount = MoneyField(_("maximum amount"))
    days = models.PositiveSmallIntegerField(
        _("days"), default=3, validators=[MinValueValidator(1), MaxValueValidator(31)]
    )
    once_per_month = models.BooleanField(_("once per calendar month"), default=True)
    fee = MoneyField(_("fee"), default=0)
    # Refused when the subscriber already owes more than this (balance below −max_debt).
    max_debt = MoneyField(_("allowed only while the debt is below"), default=0)

    class Meta:
        verbose_name = _("promised payment policy")
        verbose_name_plural = _("promised payment policies")
        constraints = [
            models.CheckConstraint(
                condition=Q(max_amount__gt=0, fee__gte=0, max_debt__gte=0), name="catalog_promised_amounts_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Turbo(models.Model):
    """A turbo option (турбо-кнопка): the speed a subscriber buys for a few hours, paid from the balance.

    The speeds replace the plan's (day, night and after-quota alike) while the turbo lasts; a plan lists the
    options its subscribers may buy. A bought turbo keeps the speed, hours and price it was bought with, so
    editing an option changes only later purchases.
    """

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    download_kbps = models.PositiveIntegerField(_("download, kbit/s"), validators=[MinValueValidator(1)])
    upload_kbps = models.PositiveIntegerField(_("upload, kbit/s"), validators=[MinValueValidator(1)])
    hours = models.PositiveSmallIntegerField(
        _("hours"), validators=[MinValueValidator(1), MaxValueValidator(MAX_TURBO_HOURS)]
    )
    price = MoneyField(_("price"))
    is_active = models.BooleanField(_("offered"), default=True)

    class Meta:
        verbose_name = _("turbo option")
        verbose_name_plural = _("turbo options")
        ordering = ["price", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(download_kbps__gt=0, upload_kbps__gt=0), name="catalog_turbo_speed_positive"
            ),
            models.CheckConstraint(
                condition=Q(hours__gte=1, hours__lte=MAX_TURBO_HOURS), name="catalog_turbo_hours_range"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="catalog_turbo_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class ChargeMode(models.TextChoices):
    MONTHLY = "monthly", _("Monthly in advance")
    DAILY = "daily", _("Daily")
    # Pay as you go: no recurring fee, charged for time online (hotspot Wi-Fi, per minute or per hour).
    TIME = "time", _("By time online")


class TimeUnit(models.TextChoices):
    """What a time plan's price is per: every started unit is charged in full."""

    MINUTE = "minute", _("Per minute")
    HOUR = "hour", _("Per hour")


TIME_UNIT_SECONDS = {TimeUnit.MINUTE: 60, TimeUnit.HOUR: 3600}


class PeriodAnchor(models.TextChoices):
    CALENDAR = "calendar", _("Calendar month")
    ANNIVERSARY = "anniversary", _("From the activation day")


class DailyPricing(models.TextChoices):
    SPLIT = "split", _("Monthly fee divided by the days of the month")
    FIXED = "fixed", _("Fixed daily price")


class ProrationUnit(models.TextChoices):
    DAYS = "days", _("By days")
    SECONDS = "seconds", _("By seconds")


class OverageRounding(models.TextChoices):
    PER_GB = "per_gb", _("Per started GB")
    PER_MB = "per_mb", _("Per MB")
    PER_BYTE = "per_byte", _("Per byte")


class TrafficPolicy(models.TextChoices):
    """What happens past the included traffic: today's speed cut (FUP), a charge per GB, or both."""

    FUP = "fup", _("Speed cut (FUP)")
    OVERAGE = "overage", _("Charge per GB")
    BOTH = "both", _("Charge per GB and speed cut")


class TrafficDirection(models.TextChoices):
    """Which traffic counts against the included volume (download = sent to the subscriber)."""

    BOTH = "both", _("Download and upload")
    DOWNLOAD = "download", _("Download only")
    UPLOAD = "upload", _("Upload only")
    GREATER = "greater", _("The greater of download and upload")


class Plan(models.Model):
    """A plan (тариф): how a service is charged and what the subscriber gets (speed, traffic).

    Prices live in ``PlanPrice`` versions, never on the plan, so a price change is dated and charges keep
    pointing at the version they used.
    """

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=150)
    service = models.ForeignKey(Service, verbose_name=_("service"), on_delete=models.PROTECT, related_name="plans")
    description = models.TextField(_("description"), blank=True)

    charge_mode = models.CharField(
        _("charge mode"), max_length=10, choices=ChargeMode.choices, default=ChargeMode.MONTHLY
    )
    period_anchor = models.CharField(
        _("billing period"), max_length=12, choices=PeriodAnchor.choices, default=PeriodAnchor.CALENDAR
    )
    daily_pricing = models.CharField(
        _("daily price"), max_length=10, choices=DailyPricing.choices, default=DailyPricing.SPLIT
    )
    charge_only_if_online = models.BooleanField(
        _("charge a day only if online the day before"),
        default=False,
        help_text=_("Daily plans only: a day is free when the subscriber had no session the day before."),
    )
    proration_unit = models.CharField(
        _("proration"), max_length=10, choices=ProrationUnit.choices, default=ProrationUnit.DAYS
    )

    # Speed in kbit/s, as NAS attributes take it. Burst and night speed are optional.
    download_kbps = models.PositiveIntegerField(_("download, kbit/s"), default=0)
    upload_kbps = models.PositiveIntegerField(_("upload, kbit/s"), default=0)
    burst_download_kbps = models.PositiveIntegerField(_("short burst: download, kbit/s"), null=True, blank=True)
    burst_upload_kbps = models.PositiveIntegerField(_("short burst: upload, kbit/s"), null=True, blank=True)
    burst_seconds = models.PositiveSmallIntegerField(_("short burst: time, s"), null=True, blank=True)
    night_download_kbps = models.PositiveIntegerField(_("night download, kbit/s"), null=True, blank=True)
    night_upload_kbps = models.PositiveIntegerField(_("night upload, kbit/s"), null=True, blank=True)
    night_starts_at = models.TimeField(_("night from"), null=True, blank=True)
    night_ends_at = models.TimeField(_("night until"), null=True, blank=True)

    # Traffic: included volume per billing period, then overage (rated by the usage issue) or a FUP throttle.
    included_bytes = models.BigIntegerField(_("included traffic, bytes"), null=True, blank=True)
    overage_price_per_gb = models.DecimalField(
        _("price per GB over the included traffic"), max_digits=12, decimal_places=4, null=True, blank=True
    )
    overage_rounding = models.CharField(
        _("overage rounding"), max_length=10, choices=OverageRounding.choices, default=OverageRounding.PER_GB
    )
    traffic_policy = models.CharField(
        _("past the included traffic"), max_length=10, choices=TrafficPolicy.choices, default=TrafficPolicy.FUP
    )
    traffic_direction = models.CharField(
        _("traffic counted"), max_length=10, choices=TrafficDirection.choices, default=TrafficDirection.BOTH
    )
    fup_download_kbps = models.PositiveIntegerField(_("download after the quota, kbit/s"), null=True, blank=True)
    fup_upload_kbps = models.PositiveIntegerField(_("upload after the quota, kbit/s"), null=True, blank=True)

    # Time plans (charge mode TIME): the unit the price is per (``PlanPrice.unit_price``), the free start of
    # every session and the least a session costs once it costs anything (billing/rating/time.py).
    time_unit = models.CharField(_("time unit"), max_length=10, choices=TimeUnit.choices, default=TimeUnit.MINUTE)
    free_minutes = models.PositiveIntegerField(
        _("free minutes per session"), default=0, validators=[MaxValueValidator(24 * 60)]
    )
    minimum_session_charge = MoneyField(_("minimum charge per session"), default=0)

    freeze_policy = models.ForeignKey(
        FreezePolicy, verbose_name=_("freeze policy"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    promised_payment_policy = models.ForeignKey(
        PromisedPaymentPolicy,
        verbose_name=_("promised payment policy"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # Portal visibility: subscribers on this plan may switch themselves to these plans.
    switchable_to = models.ManyToManyField(
        "self",
        verbose_name=_("subscribers may switch to"),
        symmetrical=False,
        blank=True,
        related_name="switchable_from",
    )
    turbos = models.ManyToManyField(Turbo, verbose_name=_("turbo options"), blank=True, related_name="plans")
    is_public = models.BooleanField(_("offered to new subscribers"), default=True)
    is_archived = models.BooleanField(_("archived"), default=False)

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["service", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(overage_price_per_gb__isnull=True) | Q(overage_price_per_gb__gte=0),
                name="catalog_plan_overage_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(included_bytes__isnull=True) | Q(included_bytes__gte=0),
                name="catalog_plan_included_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(minimum_session_charge__gte=0, free_minutes__lte=24 * 60),
                name="catalog_plan_time_settings_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PlanPrice(models.Model):
    """A plan's price from ``valid_from`` until the next version. Rows are only ever added, never edited."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="prices")
    valid_from = models.DateField(_("valid from"))
    monthly_fee = MoneyField(_("monthly fee"))
    # For daily plans priced per day instead of by splitting the monthly fee.
    daily_fee = MoneyField(_("daily fee"), null=True, blank=True)
    activation_fee = MoneyField(_("activation fee"), default=0)
    # Time plans: the price of every started minute or hour (the plan's ``time_unit``), dated like the fees. Not
    # negative by the action, not by a constraint: adding one rebuilds this table on SQLite, which the ledger's
    # reference triggers on it refuse.
    unit_price = MoneyField(_("price per unit of time"), null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("plan price")
        verbose_name_plural = _("plan prices")
        ordering = ["plan", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "valid_from"], name="catalog_planprice_plan_from_uniq"),
            models.CheckConstraint(
                condition=Q(monthly_fee__gte=0)
                & Q(activation_fee__gte=0)
                & (Q(daily_fee__isnull=True) | Q(daily_fee__gte=0)),
                name="catalog_planprice_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} {self.monthly_fee} @ {self.valid_from}"


# "10 hours within 30 days": a year of validity and a thousand hours are past anything sold as a package.
MAX_PACKAGE_SECONDS = 1000 * 3600
MAX_PACKAGE_DAYS = 366


class TimePackage(models.Model):
    """Prepaid time for time plans: so many hours or minutes online, used within so many days of purchase.

    Rated time is taken from a subscriber's packages before money; time left when a package expires is lost.
    A bought package keeps the time, validity and price it was bought with (billing.TimePackagePurchase).
    """

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    seconds = models.PositiveIntegerField(
        _("time, s"), validators=[MinValueValidator(60), MaxValueValidator(MAX_PACKAGE_SECONDS)]
    )
    validity_days = models.PositiveSmallIntegerField(
        _("valid for, days"), validators=[MinValueValidator(1), MaxValueValidator(MAX_PACKAGE_DAYS)]
    )
    price = MoneyField(_("price"))
    plans = models.ManyToManyField(Plan, verbose_name=_("plans"), blank=True, related_name="time_packages")
    is_active = models.BooleanField(_("offered"), default=True)

    class Meta:
        verbose_name = _("time package")
        verbose_name_plural = _("time packages")
        ordering = ["price", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(seconds__gte=60, seconds__lte=MAX_PACKAGE_SECONDS), name="catalog_timepackage_seconds"
            ),
            models.CheckConstraint(
                condition=Q(validity_days__gte=1, validity_days__lte=MAX_PACKAGE_DAYS),
                name="catalog_timepackage_days",
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="catalog_timepackage_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name
