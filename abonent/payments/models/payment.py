"""A payment from any channel, the conflicts a repeated notice can raise, and refunds."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from abonent.billing.models import LedgerTransaction
from abonent.core.money import MoneyField
from abonent.subscribers.models import Subscriber


class PaymentMethod(models.TextChoices):
    """How the money reached us; the channel (below) says through whom."""

    CASH = "cash", _("Cash at the office")
    BANK = "bank", _("Bank transfer")
    TERMINAL = "terminal", _("Payment terminal or bank app")
    ONLINE = "online", _("Online payment")
    AUTOPAY = "autopay", _("Autopay")
    MANUAL = "manual", _("Entered by staff")


class PaymentStatus(models.TextChoices):
    CREDITED = "credited", _("Credited")
    # Arrived for an unknown or closed account (or one it could not be credited to): the money sits in the
    # suspense account until staff assign it to a subscriber or return it.
    SUSPENSE = "suspense", _("In suspense")
    RETURNED = "returned", _("Returned to the payer")
    CANCELLED = "cancelled", _("Cancelled")


class SuspenseReason(models.TextChoices):
    UNKNOWN_ACCOUNT = "unknown_account", _("No subscriber has this account")
    CLOSED_ACCOUNT = "closed_account", _("The subscriber's account is closed")
    AMBIGUOUS = "ambiguous", _("More than one subscriber matches")
    # A bank transfer naming an old account number without a marker, from a payer of another name.
    UNCONFIRMED = "unconfirmed", _("An old account number alone, from a payer of another name")
    BALANCE_LIMIT = "balance_limit", _("The balance would go past what an account holds")


class Payment(models.Model):
    """Money received through a channel, once per ``(channel, external_id)``.

    ``channel`` names who passed the money on: ``cash`` (the office), ``bank`` (statements), ``agent:<code>`` (a
    terminal network), ``yookassa`` (a gateway), ``manual`` (the API). ``external_id`` is that channel's id of the
    payment (the terminal's ``txn_id``, the gateway's payment id, the statement line's document key); the unique
    constraint, not a lookup, is what makes a repeated notice harmless. ``transaction`` is the ledger entry the
    intake posted: channel → subscriber, or channel → suspense; ``assign_transaction`` moves a suspense payment on
    to its subscriber, ``cancel_transaction`` reverses a mistaken entry.
    """

    channel = models.CharField(_("channel"), max_length=40)
    external_id = models.CharField(_("external id"), max_length=100)
    method = models.CharField(_("method"), max_length=20, choices=PaymentMethod.choices)
    amount = MoneyField(_("amount"))
    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("subscriber"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
    )
    # What the payer gave to say whose account it is: the account number typed at a terminal, a statement's
    # purpose text. Kept as received, for the suspense queue and for disputes.
    account_ref = models.CharField(_("account as given"), max_length=255, blank=True)
    payer = models.CharField(_("payer"), max_length=255, blank=True)
    payer_inn = models.CharField(_("payer's INN"), max_length=12, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=PaymentStatus.choices, db_index=True)
    suspense_reason = models.CharField(_("why in suspense"), max_length=20, choices=SuspenseReason.choices, blank=True)
    # When the channel took the money (a terminal's txn_date, the statement's date) and when it reached the
    # subscriber's account (later for a payment assigned from suspense).
    received_at = models.DateTimeField(_("received"))
    credited_at = models.DateTimeField(_("credited"), null=True, blank=True)
    created_at = models.DateTimeField(_("recorded"), db_index=True)
    transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, related_name="payment", verbose_name=_("ledger transaction")
    )
    assign_transaction = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cancel_transaction = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    refunded_amount = MoneyField(_("refunded"), default=0)
    # The person who took it (a cashier) or entered it; null for a channel's own notice.
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("taken by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    memo = models.CharField(_("memo"), max_length=500, blank=True)
    status_reason = models.CharField(_("reason"), max_length=500, blank=True)
    # What the channel sent besides (a terminal's prv_id, a gateway's payment method), for disputes.
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["subscriber", "-received_at"], name="payments_subscriber_idx"),
            models.Index(fields=["channel", "-received_at"], name="payments_channel_idx"),
            models.Index(
                fields=["taken_by", "-received_at"], condition=Q(taken_by__isnull=False), name="payments_taken_by_idx"
            ),
            models.Index(fields=["-received_at"], condition=Q(status="suspense"), name="payments_suspense_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="payments_channel_external_id_uniq"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="payments_refunded_within_amount",
            ),
            models.CheckConstraint(
                condition=~Q(status="credited") | Q(subscriber__isnull=False, credited_at__isnull=False),
                name="payments_credited_has_subscriber",
            ),
            models.CheckConstraint(
                condition=~Q(status="suspense") | ~Q(suspense_reason=""), name="payments_suspense_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.external_id}"

    @property
    def refundable(self):
        return self.amount - self.refunded_amount if self.status == PaymentStatus.CREDITED else 0


class PaymentConflict(models.Model):
    """The same ``(channel, external_id)`` came again with another amount (or another account): not credited,
    kept for staff to settle with the channel. One row per distinct amount, counting how often it came."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="conflicts")
    amount = MoneyField(_("amount"))
    account_ref = models.CharField(_("account as given"), max_length=255, blank=True)
    times = models.PositiveIntegerField(_("times received"), default=1)
    first_at = models.DateTimeField(_("first received"))
    last_at = models.DateTimeField(_("last received"))
    resolved_at = models.DateTimeField(_("settled"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.CharField(_("how it was settled"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("payment conflict")
        verbose_name_plural = _("payment conflicts")
        indexes = [
            models.Index(fields=["-last_at"], condition=Q(resolved_at__isnull=True), name="payments_open_conflict_idx")
        ]
        constraints = [
            models.UniqueConstraint(fields=["payment", "amount", "account_ref"], name="payments_conflict_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.payment} ≠ {self.amount}"


class RefundStatus(models.TextChoices):
    # Asked of the channel (a gateway) and not yet confirmed: the money is already off the subscriber's balance,
    # so it cannot be spent twice; a refund the channel refuses is reversed back onto it.
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Done")
    FAILED = "failed", _("Failed")


class Refund(models.Model):
    """Money given back to the payer from a credited payment (full or partial), or a suspense payment returned.

    ``key`` is what makes a retried request harmless (the API's Idempotency-Key, a form's token); the payment's
    ``refunded_amount`` and its check constraint keep the sum of refunds within what was paid.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    key = models.CharField(max_length=200)
    amount = MoneyField(_("amount"))
    reason = models.CharField(_("reason"), max_length=500)
    status = models.CharField(_("status"), max_length=20, choices=RefundStatus.choices)
    # The channel's id of the refund (a gateway's refund id), once it has one.
    external_id = models.CharField(_("external id"), max_length=100, blank=True)
    transaction = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="refund"
    )
    reversal_transaction = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    failure = models.CharField(_("why it failed"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("requested"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["key"], name="payments_refund_key_uniq"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_refund_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.payment}: −{self.amount}"
