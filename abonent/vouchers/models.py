"""Prepaid cards: dealers who sell them, series printed together, the cards, their sales and activation attempts.

A card's life: ``new`` (printed, in the office's safe) → ``sold`` (a dealer paid for it: the money is a liability,
service still owed) → ``activated`` (credited to a subscriber) | ``void`` (withdrawn) | ``expired`` (past the
series' last day; a sold card's liability goes to breakage revenue). Only sold cards can be activated.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.billing.models import LedgerTransaction
from abonent.catalog.models import Plan
from abonent.core.models import Branch
from abonent.core.money import MoneyField
from abonent.subscribers.models import Subscriber

# A series is printed in one go: the sheet, the codes and the sale of a range stay manageable.
MAX_SERIES_COUNT = 10_000


class Dealer(models.Model):
    """A shop or agent that buys cards from the ISP and sells them on; ``commission_percent`` is its margin."""

    name = models.CharField(_("name"), max_length=200)
    contacts = models.CharField(_("contacts"), max_length=500, blank=True)
    commission_percent = models.DecimalField(_("commission, %"), max_digits=5, decimal_places=2, null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("dealer")
        verbose_name_plural = _("dealers")
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_percent__isnull=True)
                | (Q(commission_percent__gte=0) & Q(commission_percent__lt=100)),
                name="vouchers_dealer_commission_range",
            )
        ]

    def __str__(self) -> str:
        return self.name


class SeriesKind(models.TextChoices):
    TOPUP = "topup", _("Top-up card")
    WIFI = "wifi", _("Wi-Fi card")


class VoucherSeries(models.Model):
    """Cards of one face value printed together. A Wi-Fi series names the pay-as-you-go plan (charged by time
    online) its cards' anonymous accounts go on."""

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=SeriesKind.choices)
    amount = MoneyField(_("face value"))
    plan = models.ForeignKey(
        Plan, verbose_name=_("Wi-Fi plan"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    branch = models.ForeignKey(
        Branch, verbose_name=_("branch"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    count = models.PositiveIntegerField(_("number of cards"))
    expires_on = models.DateField(_("valid until"))
    dealer = models.ForeignKey(
        Dealer, verbose_name=_("dealer"), null=True, blank=True, on_delete=models.PROTECT, related_name="series"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("card series")
        verbose_name_plural = _("card series")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="vouchers_series_amount_positive"),
            models.CheckConstraint(
                condition=Q(count__gte=1) & Q(count__lte=MAX_SERIES_COUNT), name="vouchers_series_count_range"
            ),
            models.CheckConstraint(
                condition=Q(kind="topup") | Q(plan__isnull=False), name="vouchers_series_wifi_has_plan"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class VoucherStatus(models.TextChoices):
    NEW = "new", _("Not sold")
    SOLD = "sold", _("Sold")
    ACTIVATED = "activated", _("Activated")
    VOID = "void", _("Void")
    EXPIRED = "expired", _("Expired")


class VoucherSale(models.Model):
    """A dealer's purchase of a range of one series' cards, with its ledger entry (dealer's cash → liability)."""

    key = models.CharField(max_length=100)
    series = models.ForeignKey(VoucherSeries, on_delete=models.PROTECT, related_name="sales")
    dealer = models.ForeignKey(Dealer, on_delete=models.PROTECT, related_name="sales")
    first_serial = models.CharField(max_length=20)
    last_serial = models.CharField(max_length=20)
    count = models.PositiveIntegerField()
    amount = MoneyField(_("face value"))
    commission = MoneyField(_("commission"), default=0)
    transaction = models.OneToOneField(LedgerTransaction, on_delete=models.PROTECT, related_name="+")
    acting_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("card sale")
        verbose_name_plural = _("card sales")
        constraints = [models.UniqueConstraint(fields=["key"], name="vouchers_sale_key_uniq")]

    def __str__(self) -> str:
        return f"{self.first_serial}–{self.last_serial}"


class Voucher(models.Model):
    """One card. The code is kept twice: ``code_digest`` (HMAC-SHA256 under the field key) to find the card by
    what is typed, ``code_encrypted`` (core.secrets) to print it. ``serial`` is printed openly."""

    series = models.ForeignKey(VoucherSeries, on_delete=models.PROTECT, related_name="vouchers")
    serial = models.CharField(_("serial number"), max_length=20)
    code_digest = models.CharField(max_length=64)
    code_encrypted = models.TextField()
    status = models.CharField(_("status"), max_length=10, choices=VoucherStatus.choices, default=VoucherStatus.NEW)
    sale = models.ForeignKey(VoucherSale, null=True, blank=True, on_delete=models.PROTECT, related_name="vouchers")
    activated_by = models.ForeignKey(
        Subscriber, null=True, blank=True, on_delete=models.PROTECT, related_name="vouchers"
    )
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    # The activation's (or, for a sold card, the void's or expiry's) ledger entry.
    transaction = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)  # voided or expired
    reason = models.CharField(_("reason"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("prepaid card")
        verbose_name_plural = _("prepaid cards")
        indexes = [models.Index(fields=["series", "status"], name="vouchers_series_status_idx")]
        constraints = [
            models.UniqueConstraint(fields=["serial"], name="vouchers_serial_uniq"),
            models.UniqueConstraint(fields=["code_digest"], name="vouchers_code_digest_uniq"),
            models.CheckConstraint(
                condition=~Q(status="activated") | (Q(activated_by__isnull=False) & Q(transaction__isnull=False)),
                name="vouchers_activated_has_subscriber",
            ),
        ]

    def __str__(self) -> str:
        return self.serial


class ActivationAttempt(models.Model):
    """One try of a code (portal, API, Wi-Fi page), written as a failure *before* it is checked (see
    ``throttle``). ``key`` is ``sub:<id>`` for a signed-in subscriber, "" for the anonymous Wi-Fi page."""

    key = models.CharField(max_length=40, blank=True)
    network = models.CharField(max_length=64, blank=True)
    attempted_at = models.DateTimeField()
    succeeded = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("card activation attempt")
        verbose_name_plural = _("card activation attempts")
        indexes = [
            models.Index(fields=["key", "attempted_at"], name="vouchers_attempt_key_idx"),
            models.Index(fields=["network", "attempted_at"], name="vouchers_attempt_net_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.key or self.network} {self.attempted_at:%Y-%m-%d %H:%M}"
