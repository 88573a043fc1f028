"""What the billing run and the ledger's verification leave behind: a record of each run with the subscriptions
it parked, and each verification's result (docs/finance-pages.md). Registered with the billing app from
billing/models.py."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from abonent.core import clock
from abonent.core.money import MoneyField


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    FINISHED = "finished", _("Finished")
    FAILED = "failed", _("Failed")
    # Left "running" past ``recording.STALE_AFTER``: the process died (killed, out of memory, the server restarted).
    INTERRUPTED = "interrupted", _("Interrupted")


class ParkReason(models.TextChoices):
    """Why the run left a subscription uncharged (engine: ``Parked``); a person decides what to do with it."""

    NO_PRICE = "no_price", _("The plan has no price for the period")
    BALANCE = "balance", _("The balance is beyond what an account can hold")
    TOO_MANY_PERIODS = "too_many_periods", _("Too many periods due at once")


class BillingRunRecord(models.Model):
    """One billing run (``abonent billing run`` or the daily job): written once when it starts and once when it
    ends, so the run pays two statements for its record whatever its size. A row left ``running`` whose process is
    gone was interrupted (killed, the server restarted): the next run charges what it did not."""

    as_of = models.DateField(_("day billed"))
    status = models.CharField(_("status"), max_length=12, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    seconds = models.FloatField(_("duration, s"), null=True, blank=True)
    # Due subscriptions the run looked at, the charges it wrote (late online days included) and their sum.
    subscriptions = models.PositiveIntegerField(_("subscriptions"), default=0)
    charges = models.PositiveIntegerField(_("charges"), default=0)
    amount = MoneyField(_("charged"), default=0)
    parked = models.PositiveIntegerField(_("parked"), default=0)
    # Days of online-only daily plans not charged for want of a day online before them (``UnbilledDay``).
    unbilled = models.PositiveIntegerField(_("days not charged (offline)"), default=0)
    chunks = models.PositiveIntegerField(default=0)
    workers = models.PositiveSmallIntegerField(default=1)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("billing run")
        verbose_name_plural = _("billing runs")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.as_of} {self.status}"

    @property
    def shown_status(self) -> str:
        """The status as the pages show it: a run "running" past ``STALE_AFTER`` is interrupted, marked or not."""
        from .recording import STALE_AFTER

        if self.status == RunStatus.RUNNING and self.started_at < clock.now() - STALE_AFTER:
            return RunStatus.INTERRUPTED
        return self.status

    def get_shown_status_display(self) -> str:
        return str(RunStatus(self.shown_status).label)


class ParkedSubscription(models.Model):
    """A subscription one run parked, and why: the list an operator works through on the run's page."""

    run = models.ForeignKey(BillingRunRecord, on_delete=models.CASCADE, related_name="parked_subscriptions")
    subscription = models.ForeignKey("billing.Subscription", on_delete=models.CASCADE, related_name="+", db_index=False)
    reason = models.CharField(_("reason"), max_length=20, choices=ParkReason.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("parked subscription")
        verbose_name_plural = _("parked subscriptions")
        constraints = [
            models.UniqueConstraint(fields=["run", "subscription"], name="billing_parked_once_per_run"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}: {self.subscription_id} {self.reason}"


class VerificationSource(models.TextChoices):
    SCHEDULED = "scheduled", _("Daily job")
    CONSOLE = "console", _("Requested in the console")
    COMMAND = "command", _("Command line")


class LedgerVerification(models.Model):
    """One ``abonent ledger verify`` (``ledger.verify``): when, how long, and what it found. ``queued`` rows are
    requests from the console the worker has not started yet; a row still ``running`` long after it started was
    interrupted."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        OK = "ok", _("No problems")
        PROBLEMS = "problems", _("Problems found")
        FAILED = "failed", _("Failed")
        INTERRUPTED = "interrupted", _("Interrupted")

    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.QUEUED)
    source = models.CharField(_("started by"), max_length=10, choices=VerificationSource.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("requested"))
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    seconds = models.FloatField(_("duration, s"), null=True, blank=True)
    problems = models.PositiveIntegerField(_("problems"), default=0)
    # The first ``FIRST_PROBLEMS`` problems as ``verify`` words them (English: they name tables and ids).
    first_problems = models.JSONField(default=list, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("ledger verification")
        verbose_name_plural = _("ledger verifications")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def shown_status(self) -> str:
        """The status as the pages show it: queued or running past ``STALE_AFTER`` is interrupted (the worker died)."""
        from .verification import STALE_AFTER

        live = (self.Status.QUEUED, self.Status.RUNNING)
        if self.status in live and self.created_at < clock.now() - STALE_AFTER:
            return self.Status.INTERRUPTED
        return self.status

    def get_shown_status_display(self) -> str:
        return str(self.Status(self.shown_status).label)
