"""Bonus points: the rules (one row), each subscriber's sub-ledger of points, referrals and referral codes.

A subscriber's bonus balance is the sum of their ``BonusEntry.points``. Their share of the bonus liability is always
the balance's money value rounded to the kopeck: each entry posts the change in it (bonus expense ↔ bonus liability,
liability → the subscriber's account when spent), so no rounding piles up; an entry that leaves the rounded value
as it was moves no money and has no ledger transaction. Entries are append-only; a correction is a new entry.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.billing.models import LedgerTransaction
from abonent.core.money import MoneyField
from abonent.subscribers.models import Subscriber


class TenureUnit(models.TextChoices):
    YEAR = "year", _("Full year")
    MONTH = "month", _("Full month")


class BonusRules(models.Model):
    """The operator's bonus rules: one row (pk 1), edited in the console. Points are Decimal with 2 places."""

    on_time_enabled = models.BooleanField(_("points for paying on time"), default=False)
    on_time_points = MoneyField(_("points per payment"), default=0)
    on_time_percent = models.DecimalField(_("Percent of the payment"), max_digits=5, decimal_places=2, default=0)
    tenure_enabled = models.BooleanField(_("points for tenure"), default=False)
    tenure_unit = models.CharField(_("every"), max_length=10, choices=TenureUnit.choices, default=TenureUnit.YEAR)
    tenure_points = MoneyField(_("points per anniversary"), default=0)
    referral_enabled = models.BooleanField(_("points for referrals"), default=False)
    referral_percent = models.DecimalField(
        _("Percent of the referred subscriber's payments"), max_digits=5, decimal_places=2, default=0
    )
    referral_months = models.PositiveSmallIntegerField(_("for months"), default=3)
    # 0: points never expire.
    expiry_months = models.PositiveSmallIntegerField(_("points expire after months"), default=12)
    # The newest ledger transaction when the rules for payments (on time, referral) last changed: the catch-up sweep
    # accrues only payments credited after it, so rules switched on or changed never pay for payments made before.
    payments_after_tx = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("bonus rules")
        verbose_name_plural = _("bonus rules")
        constraints = [
            models.CheckConstraint(
                condition=Q(on_time_points__gte=0)
                & Q(tenure_points__gte=0)
                & Q(on_time_percent__gte=0)
                & Q(on_time_percent__lte=100)
                & Q(referral_percent__gte=0)
                & Q(referral_percent__lte=100),
                name="bonuses_rules_ranges",
            )
        ]

    def __str__(self) -> str:
        return "bonus rules"


class EntryKind(models.TextChoices):
    ON_TIME = "on_time", _("Paid on time")
    TENURE = "tenure", _("Anniversary with us")
    REFERRAL = "referral", _("Referred subscriber's payment")
    SPEND = "spend", _("Spent on services")
    EXPIRY = "expiry", _("Expired")
    CLAWBACK = "clawback", _("Taken back: payment cancelled")


ACCRUALS = (EntryKind.ON_TIME, EntryKind.TENURE, EntryKind.REFERRAL)


class BonusEntry(models.Model):
    """One movement of a subscriber's points: + earned (with the day they expire), − spent, expired, taken back.

    ``source_key`` says what caused it (``on_time:<payment's ledger transaction>``, ``tenure:<subscriber>:year:3``,
    ``expiry:<subscriber>:<day>``, ``spend:…``, ``clawback:<accrual>:<points taken back in all>``): unique, so each
    cause counts once. Each accrual is a lot; spends and expiries use up lots first in first out
    (``selectors.lots_of``), a take-back uses up its own lot (``lot``)."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="bonus_entries")
    kind = models.CharField(_("kind"), max_length=10, choices=EntryKind.choices)
    points = MoneyField(_("points"))
    expires_on = models.DateField(_("expires"), null=True, blank=True)
    source_key = models.CharField(max_length=200)
    # The payment an accrual came from (on-time, referral): its cancellation or refund takes the points back.
    payment_id = models.BigIntegerField(null=True, blank=True)
    # An accrual's: what of the payment it was counted on (the amount less refunds then); a refund takes back the
    # same share of the points.
    payment_base = MoneyField(null=True, blank=True)
    # A take-back's: the accrual whose points it takes back.
    lot = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="take_backs", db_index=False
    )
    # A take-back's: points of its lot already spent on services, taken back as their money off the account.
    charged_points = MoneyField(_("charged to the account"), default=0)
    # None when the entry leaves the subscriber's rounded liability as it was (a fraction of a kopeck).
    transaction = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    memo = models.CharField(_("memo"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("recorded"))

    class Meta:
        verbose_name = _("bonus entry")
        verbose_name_plural = _("bonus entries")
        indexes = [
            models.Index(fields=["subscriber", "created_at"], name="bonuses_entry_subscriber_idx"),
            models.Index(
                fields=["payment_id"], condition=Q(payment_id__isnull=False), name="bonuses_entry_payment_idx"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source_key"], name="bonuses_entry_source_uniq"),
            models.CheckConstraint(
                condition=~Q(points=0) | (Q(kind=EntryKind.CLAWBACK) & Q(charged_points__gt=0)),
                name="bonuses_entry_points_not_zero",
            ),
            models.CheckConstraint(
                condition=(Q(kind__in=ACCRUALS) & Q(points__gt=0))
                | (~Q(kind__in=ACCRUALS) & Q(points__lt=0))
                | (Q(kind=EntryKind.CLAWBACK) & Q(points=0)),
                name="bonuses_entry_sign_by_kind",
            ),
            models.CheckConstraint(condition=Q(charged_points__gte=0), name="bonuses_entry_charged_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id}: {self.kind} {self.points}"


class Referral(models.Model):
    """``referred`` came on ``referrer``'s recommendation: for ``referral_months`` from ``since`` the referrer earns
    a share of the referred subscriber's payments."""

    referred = models.OneToOneField(Subscriber, on_delete=models.PROTECT, related_name="referral")
    referrer = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="referrals")
    since = models.DateField(_("since"))
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        constraints = [
            models.CheckConstraint(condition=~Q(referred=models.F("referrer")), name="bonuses_referral_not_self")
        ]

    def __str__(self) -> str:
        return f"{self.referrer_id} → {self.referred_id}"


class ReferralCode(models.Model):
    """A subscriber's code to pass on (``/my/bonuses/`` shows it with a link); staff type it as "referred by"."""

    subscriber = models.OneToOneField(Subscriber, on_delete=models.PROTECT, related_name="referral_code")
    code = models.CharField(max_length=12)

    class Meta:
        verbose_name = _("referral code")
        verbose_name_plural = _("referral codes")
        constraints = [models.UniqueConstraint(fields=["code"], name="bonuses_referral_code_uniq")]

    def __str__(self) -> str:
        return self.code
