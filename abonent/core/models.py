from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """One change made by a person or a process: who, what, when, the fields before and after, and why.

    Written by every action in the same transaction as the change, so a change without its audit row
    cannot commit. Rows are never edited.
    """

    created_at = models.DateTimeField(_("time"), db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("staff user"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # Processes (billing run, import, RADIUS) have no user: they name themselves here.
    actor_label = models.CharField(_("actor"), max_length=150)
    action = models.CharField(_("action"), max_length=100, db_index=True)
    object_type = models.CharField(_("object type"), max_length=100)
    object_id = models.CharField(_("object id"), max_length=64)
    object_repr = models.CharField(_("object"), max_length=255, blank=True)
    # The subscriber the change belongs to, so the card can show its whole history in one query.
    subscriber_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="core_audit_object_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_repr}"


class ScheduledRun(models.Model):
    """One slot of a periodic job that has been enqueued.

    The unique ``(job, slot)`` pair is what makes several ``abonent worker`` processes enqueue each slot
    exactly once: the loser of the insert race gets an IntegrityError and enqueues nothing.
    """

    job = models.CharField(max_length=100)
    slot = models.DateTimeField()
    enqueued_at = models.DateTimeField()
    task_result_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("scheduled run")
        verbose_name_plural = _("scheduled runs")
        constraints = [models.UniqueConstraint(fields=["job", "slot"], name="core_scheduledrun_job_slot_uniq")]
        ordering = ["-slot"]

    def __str__(self) -> str:
        return f"{self.job}@{self.slot:%Y-%m-%d %H:%M}"


class Branch(models.Model):
    """A branch (филиал): a town or region the ISP operates in.

    Subscribers, and later NAS and cash desks, belong to one; staff may be limited to some, so a
    multi-town ISP can migrate and operate one branch at a time.
    """

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    # The branch's local time (an IANA name, "Asia/Yekaterinburg"); blank: the installation's TIME_ZONE. Messages
    # to its subscribers keep to the quiet hours of this zone.
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("branch")
        verbose_name_plural = _("branches")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Sequence(models.Model):
    """A named counter (account numbers, later invoice numbers), advanced under a row lock.

    Works the same on SQLite and PostgreSQL, hands out blocks for bulk work, and never reuses a value.
    """

    name = models.CharField(max_length=50, unique=True)
    last_value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("number sequence")
        verbose_name_plural = _("number sequences")

    def __str__(self) -> str:
        return f"{self.name}={self.last_value}"
