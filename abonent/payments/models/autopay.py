"""Autopay: a subscriber's standing order on a saved method, each debit tried, and the notices it queues.

The schema carries the exactly-once rules: one plan per subscriber, one attempt per ``(subscriber, due_on,
number)`` (a cycle is the subscriber and the day its debit is due; retries are the next numbers), one idempotence
key per attempt (the key the gateway sees, so a retry after a timeout is the same payment at the provider), and one
notice per dedup key (a rerun of the daily job never queues a notice twice).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.core.money import MoneyField
from abonent.subscribers.models import Subscriber

from .methods import SavedMethod
from .payment import Payment


class AutopayMode(models.TextChoices):
    DAY_OF_MONTH = "day", _("On a day of the month")
    LOW_BALANCE = "low_balance", _("When the balance will not cover the next charge")


class AutopayAmount(models.TextChoices):
    COVER = "cover", _("What covers the next month's fees")
    FIXED = "fixed", _("A fixed amount")


class AutopayPlan(models.Model):
    """A subscriber's autopay settings: which saved method, when (a day of the month or when the balance runs
    short) and how much (what covers the next month's fees, at least ``min_amount``; or ``fixed_amount``), never
    more than ``max_amount`` at once. The subscriber's consent is the saved method's."""

    subscriber = models.OneToOneField(Subscriber, on_delete=models.PROTECT, related_name="autopay")
    method = models.ForeignKey(
        SavedMethod, verbose_name=_("payment method"), on_delete=models.PROTECT, related_name="+"
    )
    enabled = models.BooleanField(_("autopay on"), default=True)
    mode = models.CharField(_("when"), max_length=20, choices=AutopayMode.choices, default=AutopayMode.DAY_OF_MONTH)
    # 1–31; a day past the month's end is its last day.
    debit_day = models.PositiveSmallIntegerField(_("day of the month"), default=1)
    amount_mode = models.CharField(
        _("amount"), max_length=10, choices=AutopayAmount.choices, default=AutopayAmount.COVER
    )
    fixed_amount = MoneyField(_("fixed amount"), null=True, blank=True)
    min_amount = MoneyField(_("at least"), default=0)
    max_amount = MoneyField(_("at most"), null=True, blank=True)
    enabled_at = models.DateTimeField(_("turned on"))
    disabled_at = models.DateTimeField(_("turned off"), null=True, blank=True)
    stop_reason = models.CharField(_("why turned off"), max_length=200, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("autopay")
        verbose_name_plural = _("autopay")
        constraints = [
            models.CheckConstraint(condition=Q(debit_day__gte=1, debit_day__lte=31), name="payments_autopay_day"),
            models.CheckConstraint(
                condition=~Q(amount_mode="fixed") | Q(fixed_amount__gt=0), name="payments_autopay_fixed_amount"
            ),
            models.CheckConstraint(
                condition=Q(min_amount__gte=0) & (Q(max_amount__isnull=True) | Q(max_amount__gt=0)),
                name="payments_autopay_bounds",
            ),
        ]
        indexes = [models.Index(fields=["enabled"], condition=Q(enabled=True), name="payments_autopay_on_idx")]

    def __str__(self) -> str:
        return f"{self.subscriber_id}: {self.get_mode_display()}"


class AttemptStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    # Sent to the gateway, outcome not known yet (a timeout, or the provider's ``pending``): re-checked with the
    # same key or the provider's payment id, never charged anew.
    PROCESSING = "processing", _("Processing")
    SUCCEEDED = "succeeded", _("Succeeded")
    DECLINED = "declined", _("Declined")
    FAILED = "failed", _("Failed")
    # Not charged: the balance already covered the month when it was due.
    SKIPPED = "skipped", _("Not needed")
    # Autopay was turned off or the method unlinked before it ran.
    CANCELLED = "cancelled", _("Cancelled")


ATTEMPT_OPEN = (AttemptStatus.SCHEDULED, AttemptStatus.PROCESSING)


class AutopayAttempt(models.Model):
    """One debit of a saved method: the ``number``-th try of the cycle due on ``due_on``. ``key`` is the
    idempotence key the gateway gets (``autopay:<id>``); ``provider_payment_id`` is the provider's payment once
    known, and ``payment`` the intake payment that credited it."""

    plan = models.ForeignKey(AutopayPlan, on_delete=models.PROTECT, related_name="attempts")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="+", db_index=False)
    method = models.ForeignKey(SavedMethod, on_delete=models.PROTECT, related_name="+")
    due_on = models.DateField(_("due"))
    number = models.PositiveSmallIntegerField(_("try"))
    scheduled_for = models.DateField(_("scheduled for"))
    # Set in the transaction that inserts the row (it needs the id); never changed.
    key = models.CharField(max_length=64, unique=True, null=True)
    amount = MoneyField(_("amount"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=AttemptStatus.choices, default=AttemptStatus.SCHEDULED
    )
    provider = models.CharField(_("gateway"), max_length=40)
    provider_payment_id = models.CharField(_("gateway payment"), max_length=100, blank=True)
    decline_code = models.CharField(_("decline reason"), max_length=60, blank=True)
    decline_soft = models.BooleanField(null=True, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    payment = models.OneToOneField(Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # False while every call of a processing try failed to connect (the gateway never saw it): such a try may be
    # cancelled without a charge when it is no longer wanted. True (the safe side) once a call may have got through.
    maybe_sent = models.BooleanField(default=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("autopay attempt")
        verbose_name_plural = _("autopay attempts")
        ordering = ["-due_on", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "due_on", "number"], name="payments_autopay_attempt_uniq"),
            models.CheckConstraint(condition=Q(number__gte=1), name="payments_autopay_attempt_number"),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | Q(payment__isnull=False), name="payments_autopay_succeeded_paid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["scheduled_for"],
                condition=Q(status__in=["scheduled", "processing"]),
                name="payments_autopay_open_idx",
            )
        ]

    def __str__(self) -> str:
        return self.key or f"autopay {self.subscriber_id} {self.due_on} #{self.number}"


class NoticeKind(models.TextChoices):
    AUTOPAY_REMINDER = "autopay_reminder", _("Autopay reminder")
    AUTOPAY_SUCCEEDED = "autopay_succeeded", _("Autopay succeeded")
    AUTOPAY_DECLINED = "autopay_declined", _("Autopay declined")
    AUTOPAY_RETRY_SCHEDULED = "autopay_retry_scheduled", _("Autopay declined, will retry")
    AUTOPAY_STOPPED = "autopay_stopped", _("Autopay stopped")
    METHOD_UNLINKED = "method_unlinked", _("Payment method unlinked")
    # A payment credited to the subscriber (payload: payment_id); written by the intake, by an assignment from
    # suspense, and by the terminal fast path's SQL function (migration 0010).
    PAYMENT_RECEIVED = "payment_received", _("Payment received")


class PaymentNotice(models.Model):
    """A message for a subscriber, queued in the transaction of what it tells (the outbox). The notifications
    app delivers it and sets ``delivered_at``; ``dedup_key`` makes queueing the same notice again a no-op."""

    kind = models.CharField(_("kind"), max_length=30, choices=NoticeKind.choices)
    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="payment_notices")
    # Plain values for the template: amount (a decimal string), due_on / next_try_on (ISO dates), method, reason.
    payload = models.JSONField(default=dict)
    dedup_key = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("payment notice")
        verbose_name_plural = _("payment notices")
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["created_at"], condition=Q(delivered_at__isnull=True), name="payments_notice_undelivered"
            )
        ]

    def __str__(self) -> str:
        return self.dedup_key
