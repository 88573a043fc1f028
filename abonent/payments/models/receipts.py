"""Fiscal receipts (54-FZ): one income receipt per payment that needs one, one return receipt per refund."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.core.money import MoneyField

from .payment import Payment, Refund


class ReceiptOperation(models.TextChoices):
    SELL = "sell", _("Income")
    SELL_REFUND = "sell_refund", _("Return of income")


class ReceiptStatus(models.TextChoices):
    # Waiting to be sent (again: ``attempts`` > 0 means an earlier send may have reached the provider).
    QUEUED = "queued", _("Queued")
    # Accepted by the provider (it has our ``external_id`` and gave a ``uuid``); waiting for its report.
    SENT = "sent", _("Sent")
    DONE = "done", _("Done")
    # Refused for good (a validation error, the kassa's failure): staff fix the settings and retry.
    FAILED = "failed", _("Failed")
    # No receipt is due (the channel's agent fiscalizes, an organisation's bank transfer, no cash register).
    NOT_REQUIRED = "not_required", _("Not required")


class FiscalReceipt(models.Model):
    """A fiscal receipt for one payment (``sell``) or for money going back (``sell_refund``: a refund, or the
    cancellation of a payment whose receipt had already gone out, ``refund`` empty then).

    ``external_id`` is our id of the document at the provider: the same on every retry, so a retry after a
    timeout is deduplicated there instead of fiscalizing the money twice. A staff retry after a document the
    provider accepted and then failed needs a fresh id, so ``generation`` counts those. The fiscal attributes
    are copied from the provider's report once it is done.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="receipts")
    refund = models.OneToOneField(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="receipt", verbose_name=_("refund")
    )
    operation = models.CharField(_("operation"), max_length=20, choices=ReceiptOperation.choices)
    provider = models.CharField(_("provider"), max_length=20)
    external_id = models.CharField(_("our id at the provider"), max_length=128, unique=True)
    generation = models.PositiveIntegerField(default=1)
    status = models.CharField(_("status"), max_length=20, choices=ReceiptStatus.choices, db_index=True)
    status_reason = models.CharField(_("why"), max_length=500, blank=True)
    amount = MoneyField(_("amount"))
    # The receipt's VAT code as sent (vat122, vat120, none, ...): a return receipt repeats its income receipt's.
    vat = models.CharField(_("VAT"), max_length=10, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # Whether a document under one of our ids may be at the provider (a send was made whose answer did not prove
    # a refusal: a timeout, a crash mid-call, "exists already" without a uuid). Sticky across staff retries: a
    # cancelled payment's receipt is dropped as never fiscalized only while this is False.
    # db_default too: the terminal fast path (payments_terminal_pay, migration 0008) inserts receipts in SQL.
    maybe_sent = models.BooleanField(default=False, db_default=False)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=1000, blank=True)
    uuid = models.CharField(_("provider's id"), max_length=64, blank=True, db_index=True)
    request = models.JSONField(_("request sent"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)
    # Fiscal attributes from the provider's report (FFD tags in the comments).
    fn_number = models.CharField(_("FN number"), max_length=32, blank=True)  # 1041
    fiscal_receipt_number = models.PositiveBigIntegerField(_("receipt number in shift"), null=True, blank=True)  # 1042
    fiscal_document_number = models.PositiveBigIntegerField(_("FD number"), null=True, blank=True)  # 1040
    fiscal_document_attribute = models.PositiveBigIntegerField(_("FPD"), null=True, blank=True)  # 1077
    ecr_registration_number = models.CharField(_("KKT registration number"), max_length=32, blank=True)  # 1037
    shift_number = models.PositiveIntegerField(_("shift"), null=True, blank=True)  # 1038
    receipt_datetime = models.DateTimeField(_("receipt time"), null=True, blank=True)  # 1012
    fiscal_total = MoneyField(_("receipt total"), null=True, blank=True)  # 1020
    ofd_url = models.CharField(_("FNS check site"), max_length=255, blank=True)  # 1060, fns_site
    report = models.JSONField(_("provider's report"), default=dict, blank=True)

    class Meta:
        verbose_name = _("fiscal receipt")
        verbose_name_plural = _("fiscal receipts")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status__in=["queued", "sent"]), name="payments_receipt_due_idx"
            ),
        ]
        constraints = [
            # One income receipt per payment; one return receipt per refund; one for a cancelled payment.
            models.UniqueConstraint(
                fields=["payment"], condition=Q(operation="sell"), name="payments_receipt_sell_uniq"
            ),
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(operation="sell_refund", refund__isnull=True),
                name="payments_receipt_cancel_uniq",
            ),
            models.CheckConstraint(
                condition=Q(operation="sell_refund") | Q(refund__isnull=True), name="payments_receipt_sell_no_refund"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payments_receipt_amount_gt_0"),
            models.CheckConstraint(
                condition=~Q(status__in=["sent", "done"]) | ~Q(uuid=""), name="payments_receipt_sent_has_uuid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.external_id}"

    @property
    def qr_text(self) -> str:
        """The text of the receipt's QR code (the FNS check format): what a buyer's "Проверка чеков" app reads."""
        if self.status != ReceiptStatus.DONE or not self.fn_number or self.receipt_datetime is None:
            return ""
        from ..fiscal.content import qr_text

        return qr_text(self)

    @property
    def check_url(self) -> str:
        """The receipt at the OFD's public check page (``ABONENT_FISCAL_CHECK_URL``), once it is done."""
        if not self.qr_text:
            return ""
        from ..fiscal.content import check_url

        return check_url(self)
