"""Accounting documents: what was issued to whom, numbered, and the PDF it was issued as.

A final document is a record of what the ISP told its customer and the tax office; it is never changed
(database triggers, migration 0002): a mistake is put right by a correcting document (``corrects``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.core.money import MoneyField
from abonent.subscribers.models import Subscriber


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    ACT = "act", _("Act of services rendered")
    VAT_INVOICE = "vat_invoice", _("VAT invoice")
    UPD = "upd", _("Universal transfer document")
    STATEMENT = "statement", _("Statement of account")


# The number series of each kind. A УПД with status 1 is a счёт-фактура as well, and счета-фактуры must be
# numbered in one chronological sequence (Постановление 1137), so both share the "sf" series.
SERIES = {
    DocumentKind.INVOICE: "invoice",
    DocumentKind.ACT: "act",
    DocumentKind.VAT_INVOICE: "sf",
    DocumentKind.UPD: "sf",
    DocumentKind.STATEMENT: "statement",
}


class DocumentStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    FINAL = "final", _("Final")


class Document(models.Model):
    """One issued document: its number in its series and year, the buyer and seller as they were, and the lines.

    ``lines`` is a snapshot (service, quantity, unit, price, amount, VAT rate, VAT amount; money as strings with
    two places), so a later price, name or settings change never alters what was issued. ``period_end`` is
    exclusive, like billing's periods. Final documents of a month are unique per (subscriber, kind, month):
    generating a month twice issues nothing new.
    """

    kind = models.CharField(_("kind"), max_length=20, choices=DocumentKind.choices)
    series = models.CharField(max_length=20)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    number = models.PositiveIntegerField(_("number"), null=True, blank=True)
    date = models.DateField(_("date"))
    subscriber = models.ForeignKey(Subscriber, on_delete=models.PROTECT, related_name="documents")
    period_start = models.DateField(_("from"))
    period_end = models.DateField(_("until"))
    status = models.CharField(_("status"), max_length=10, choices=DocumentStatus.choices, default=DocumentStatus.DRAFT)
    corrects = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="corrections", verbose_name=_("corrects")
    )
    seller = models.JSONField(default=dict)
    buyer = models.JSONField(default=dict)
    lines = models.JSONField(default=list)
    # Statement figures, a УПД's status, the contract: what one kind prints beyond lines and totals.
    extra = models.JSONField(default=dict)
    total = MoneyField(_("total"))
    vat_total = MoneyField(_("VAT"), null=True, blank=True)  # None: the seller pays no VAT («Без НДС»)
    created_at = models.DateTimeField(_("created"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        indexes = [
            models.Index(fields=["subscriber", "-id"], name="documents_subscriber_idx"),
            models.Index(fields=["period_start", "kind"], name="documents_period_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "year", "number"], condition=Q(number__isnull=False), name="documents_number_uniq"
            ),
            models.UniqueConstraint(
                fields=["subscriber", "kind", "period_start"],
                condition=Q(status="final", corrects__isnull=True) & ~Q(kind="statement"),
                name="documents_month_once",
            ),
            # A document is corrected at most once; the correction itself may be corrected (a chain).
            models.UniqueConstraint(
                fields=["corrects"], condition=Q(corrects__isnull=False), name="documents_corrected_once"
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(number__isnull=False, year__isnull=False),
                name="documents_final_numbered",
            ),
            models.CheckConstraint(condition=Q(period_end__gt=models.F("period_start")), name="documents_period_order"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.label_number}"

    @property
    def label_number(self) -> str:
        return str(self.number) if self.number is not None else "—"

    @property
    def is_final(self) -> bool:
        return self.status == DocumentStatus.FINAL


class DocumentFile(models.Model):
    """The PDF a document was issued as, written once under the private documents directory.

    Rendered from the document's snapshot after the document commits (or on its first download), so the
    numbering transaction never waits for a renderer. ``sha256`` is of the file's bytes: a file changed on disk
    is refused when served.
    """

    document = models.OneToOneField(Document, on_delete=models.PROTECT, primary_key=True, related_name="file")
    path = models.CharField(max_length=255)  # relative to ABONENT_DOCUMENTS_DIR
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("document file")
        verbose_name_plural = _("document files")

    def __str__(self) -> str:
        return self.path


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class DocumentRun(models.Model):
    """One month-end generation over every organisation: how far it got, for the console's progress bar."""

    month = models.DateField(_("month"))  # the first day of the month closed
    status = models.CharField(_("status"), max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    total = models.PositiveIntegerField(_("subscribers"), default=0)
    done = models.PositiveIntegerField(_("done"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    issued = models.PositiveIntegerField(_("documents issued"), default=0)
    errors = models.JSONField(default=list)  # [{"subscriber": id, "error": text}], the first 100
    created_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        verbose_name = _("document run")
        verbose_name_plural = _("document runs")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.status}"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, (self.done + self.failed) * 100 // self.total)
