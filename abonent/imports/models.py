"""An import job (one uploaded file and what was done with it), its quarantined rows and duplicate groups, the
saved column mappings, and the link from each old system's record to the object it became."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from abonent.core.money import MoneyField
from abonent.subscribers.models import Subscriber


class Entity(models.TextChoices):
    """What a file holds: one row per subscriber (the wide export), per plan, or per past payment."""

    SUBSCRIBERS = "subscribers", _("Subscribers")
    PLANS = "plans", _("Plans")
    PAYMENTS = "payments", _("Payment history")


class FileFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX"


class JobStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    MAPPED = "mapped", _("Mapping checked")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DRY_RUN_DONE = "dry_run_done", _("Dry run finished")
    DONE = "done", _("Imported")
    FAILED = "failed", _("Failed")


class DuplicateDecision(models.TextChoices):
    """What to do with a group of rows (or a row and an existing subscriber) that look like one person."""

    MERGE = "merge", _("Merge into one subscriber")
    SKIP = "skip", _("Skip the duplicates")
    IMPORT = "import", _("Import each anyway")


class ImportProfile(models.Model):
    """A saved mapping: which column of the old system's export is which of our fields, and the value maps
    (statuses, channels) that go with it. Reused for every file of the same shape."""

    name = models.CharField(_("name"), max_length=100)
    entity = models.CharField(_("data"), max_length=20, choices=Entity.choices)
    # {our field: the column's header as in the file}
    mapping = models.JSONField(_("columns"), default=dict)
    # {"statuses": {"old value": "active|blocked|closed"}, "date_order": "dmy", ...}
    options = models.JSONField(_("options"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("import profile")
        verbose_name_plural = _("import profiles")
        ordering = ["entity", "name"]
        constraints = [models.UniqueConstraint(fields=["entity", "name"], name="imports_profile_name_uniq")]

    def __str__(self) -> str:
        return self.name


class ImportJob(models.Model):
    """One uploaded file and everything done with it: the mapping checked, dry runs, the real run.

    ``source`` names the old system (``mikbill``, ``abills-2019``): the old ids are unique within it, and a later
    file of the same source updates what an earlier one imported instead of duplicating it. The worker updates
    ``rows_done`` as it goes (the progress bar); ``dry_run_report`` and ``report`` are the reconciliation reports of
    the last dry run and of the real run (``reports.build_report``).
    """

    entity = models.CharField(_("data"), max_length=20, choices=Entity.choices)
    source = models.CharField(_("old system"), max_length=50)
    status = models.CharField(_("status"), max_length=20, choices=JobStatus.choices, default=JobStatus.UPLOADED)
    file_name = models.CharField(_("file"), max_length=255)
    file_format = models.CharField(_("format"), max_length=10, choices=FileFormat.choices)
    file_size = models.PositiveBigIntegerField(_("size, bytes"))
    file_sha256 = models.CharField(max_length=64)
    # How the file was read: the CSV's encoding and delimiter, the XLSX's sheet.
    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=1, blank=True)
    sheet = models.CharField(_("sheet"), max_length=100, blank=True)
    headers = models.JSONField(default=list)
    row_count = models.PositiveIntegerField(_("rows"), default=0)
    profile = models.ForeignKey(
        ImportProfile, verbose_name=_("profile"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mapping = models.JSONField(_("columns"), default=dict)
    options = models.JSONField(_("options"), default=dict, blank=True)
    # "The old system has charged through this day": imported subscriptions are billed from the day after.
    cutover_date = models.DateField(_("charged by the old system through"), null=True, blank=True)
    duplicate_default = models.CharField(
        _("duplicates by default"), max_length=10, choices=DuplicateDecision.choices, default=DuplicateDecision.SKIP
    )
    # A pilot: only these rows now, the rest by a later job of the same source. {"branches": [...], "old_ids":
    # [...], "accounts": [...], "nas": [...]}; empty: every row.
    pilot = models.JSONField(_("pilot subset"), default=dict, blank=True)
    default_branch = models.ForeignKey(
        "core.Branch", verbose_name=_("branch"), null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dry_run = models.BooleanField(_("dry run"), default=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    dry_run_report = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("uploaded"))
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    # The running run's lease: renewed as it goes (``engine.HEARTBEAT_EVERY``); a "running" job whose heartbeat is
    # older than ``selectors.HEARTBEAT_DEADLINE`` lost its worker (killed, the machine restarted) and may run again.
    heartbeat_at = models.DateTimeField(_("last sign of life"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_entity_display()}: {self.file_name}"

    @property
    def progress_percent(self) -> int:
        return 100 * self.rows_done // self.rows_total if self.rows_total else 0


class ImportFile(models.Model):
    """The uploaded file's bytes, kept apart from the job so lists of jobs never load them."""

    job = models.OneToOneField(ImportJob, on_delete=models.CASCADE, related_name="file")
    content = models.BinaryField()

    class Meta:
        verbose_name = _("import file")
        verbose_name_plural = _("import files")

    def __str__(self) -> str:
        return str(self.job)


class ImportIssue(models.Model):
    """A row problem: a row of the file (``row_number`` as the spreadsheet shows it, the header being row 1) that
    was not imported, or imported with a warning, and why. ``raw`` is the row as read, so the operator can fix the
    file. Each run (dry or real) writes its own set, replacing that kind's previous one."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="issues")
    dry_run = models.BooleanField()
    row_number = models.PositiveIntegerField(_("row"))
    old_id = models.CharField(_("old id"), max_length=100, blank=True)
    field = models.CharField(_("field"), max_length=50, blank=True)
    code = models.CharField(_("code"), max_length=50)
    message = models.CharField(_("problem"), max_length=500)
    # A warning leaves the row imported (a bad phone dropped, a duplicate merged); otherwise it is quarantined.
    is_warning = models.BooleanField(default=False)
    raw = models.JSONField(default=dict)

    class Meta:
        verbose_name = _("row problem")
        verbose_name_plural = _("row problems")
        ordering = ["row_number", "id"]
        indexes = [models.Index(fields=["job", "dry_run", "row_number"], name="imports_issue_job_idx")]

    def __str__(self) -> str:
        return f"{self.row_number}: {self.code}"


class DuplicateKind(models.TextChoices):
    DOCUMENT = "document", _("Same passport or INN")
    PHONE_NAME = "phone_name", _("Same phone and name")
    ADDRESS_NAME = "address_name", _("Same address and name")


class DuplicateGroup(models.Model):
    """Rows of a file that look like one subscriber, among themselves or with an existing subscriber, by ``kind``
    and the shared ``key``; the operator's ``decision`` (empty: the job's default)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="duplicate_groups")
    kind = models.CharField(_("by"), max_length=20, choices=DuplicateKind.choices)
    key = models.CharField(_("shared value"), max_length=300)
    row_numbers = models.JSONField(default=list)
    old_ids = models.JSONField(default=list)
    existing_subscriber_ids = models.JSONField(default=list)
    decision = models.CharField(_("decision"), max_length=10, choices=DuplicateDecision.choices, blank=True)

    class Meta:
        verbose_name = _("duplicate group")
        verbose_name_plural = _("duplicate groups")
        ordering = ["job", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "kind", "key"], name="imports_duplicate_uniq")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.key}"


class ImportedRecord(models.Model):
    """The old system's record ``(source, entity, old_id)`` and the object it became here (a subscriber, a plan, a
    past payment), with a hash of the row's cleaned content: a re-import leaves unchanged rows alone and updates
    changed ones. The unique constraint is what makes a second run of the same file import nothing twice."""

    source = models.CharField(max_length=50)
    entity = models.CharField(max_length=20, choices=Entity.choices)
    old_id = models.CharField(max_length=100)
    object_id = models.BigIntegerField()
    content_hash = models.CharField(max_length=64)
    job = models.ForeignKey(ImportJob, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("imported record")
        verbose_name_plural = _("imported records")
        indexes = [models.Index(fields=["entity", "object_id"], name="imports_record_object_idx")]
        constraints = [
            models.UniqueConstraint(fields=["source", "entity", "old_id"], name="imports_record_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.entity}:{self.old_id}"


class LegacyPayment(models.Model):
    """A payment the subscriber made in the old system: history only, shown on the card, with no ledger effect. The
    opening balance already contains it; posting it again would count the money twice (docs/imports.md)."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="legacy_payments")
    source = models.CharField(max_length=50)
    old_id = models.CharField(_("old id"), max_length=100)
    paid_at = models.DateTimeField(_("paid"))
    amount = MoneyField(_("amount"))
    channel = models.CharField(_("channel"), max_length=100, blank=True)
    comment = models.CharField(_("comment"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("payment in the old system")
        verbose_name_plural = _("payments in the old system")
        ordering = ["-paid_at", "-id"]
        indexes = [models.Index(fields=["subscriber", "-paid_at"], name="imports_legacy_payment_idx")]
        constraints = [
            models.UniqueConstraint(fields=["source", "old_id"], name="imports_legacy_payment_uniq"),
            models.CheckConstraint(condition=~Q(amount=0), name="imports_legacy_payment_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.paid_at:%d.%m.%Y} {self.amount}"
