"""Law-enforcement requests and the export each one produced (docs/lawful-export.md)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class BasisKind(models.TextChoices):
    """The document that makes the request lawful (Постановление Правительства № 538, Федеральный закон «Об ОРД»)."""

    COURT_ORDER = "court_order", _("Court order")
    AGENCY_REQUEST = "agency_request", _("Request of an authorised agency")
    INVESTIGATOR_REQUEST = "investigator_request", _("Investigator's request in a criminal case")
    OTHER = "other", _("Other document")


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Being prepared")
    DONE = "done", _("Ready")
    FAILED = "failed", _("Failed")
    # The file was deleted at the end of its time (ABONENT_LAWFUL_FILE_HOURS); the row and its audit stay.
    EXPIRED = "expired", _("Expired")


class ExportRequest(models.Model):
    """One law-enforcement request as an officer entered it, and the ZIP the worker made for it.

    ``criteria`` is the request's normalised criteria (``selection.Criteria.as_json``), kept as asked: the audit
    log and the manifest repeat it. The file lives under ``ABONENT_LAWFUL_DIR`` as ``file_name`` until
    ``expires_at``; only ``requested_by`` may download it. Rows are never deleted: the register of requests
    answered is itself evidence.
    """

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("requested by"), on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("requested"))
    format = models.CharField(_("format"), max_length=40)
    basis_kind = models.CharField(_("legal basis"), max_length=30, choices=BasisKind.choices)
    basis_number = models.CharField(_("document number"), max_length=100)
    basis_date = models.DateField(_("document date"))
    criteria = models.JSONField(_("criteria"), default=dict)
    period_start = models.DateTimeField(_("period from"))
    period_end = models.DateTimeField(_("period to"))
    status = models.CharField(
        _("status"), max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED, db_index=True
    )
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    expires_at = models.DateTimeField(_("available until"), null=True, blank=True)
    # Relative to ABONENT_LAWFUL_DIR; "" before the file exists and after it is deleted.
    file_name = models.CharField(max_length=200, blank=True)
    file_sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    file_size = models.BigIntegerField(_("size, bytes"), default=0)
    row_counts = models.JSONField(_("rows"), default=dict)
    error = models.CharField(_("error"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("lawful request")
        verbose_name_plural = _("lawful requests")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["requested_by", "-created_at"], name="lawful_request_by_idx"),
            # The purge's scan: files still on disk, by when they go.
            models.Index(fields=["expires_at"], condition=Q(status="done"), name="lawful_request_expiry_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(period_start__lt=models.F("period_end")), name="lawful_period_order"),
            models.CheckConstraint(
                condition=~Q(status="done") | (~Q(file_name="") & Q(expires_at__isnull=False)),
                name="lawful_done_has_file",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_basis_kind_display()} № {self.basis_number} ({self.basis_date:%d.%m.%Y})"

    @property
    def row_summary(self) -> list[tuple[str, int]]:
        """Rows per file, by the file's kind (``ISP/aaa/aaa_v1_<stamp>.txt`` → ``aaa``)."""
        summary = []
        for path, rows in self.row_counts.items():
            kind = path.rsplit("/", 1)[-1].split("_v", 1)[0]
            summary.append((kind, rows))
        return summary

    @property
    def criteria_lines(self) -> list[tuple[str, str]]:
        """The criteria for people: (label, values)."""
        lines = []
        for key, label in CRITERIA_LABELS.items():
            value = self.criteria.get(key)
            if value:
                lines.append((str(label), ", ".join(value) if isinstance(value, list) else str(value)))
        return lines


CRITERIA_LABELS = {
    "everyone": _("all subscribers"),
    "accounts": _("accounts"),
    "logins": _("logins"),
    "phones": _("phones"),
    "ips": _("IP addresses"),
    "ip_at": _("at (UTC)"),
    "macs": _("MAC addresses"),
}
