"""What the reports keep: results the worker computed for the heavy reports, and (``facts.py``) the summary tables
the light ones sum."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ReportResult(models.Model):
    """The last result of a heavy report for one set of filters (``key``, the query's JSON), computed by the worker
    (``reports.compute_report``): the page shows ``rows`` with ``computed_at``. ``requested_at`` is when a page last
    asked for a new one, so that a burst of views queues one task, not one each; ``requested_by`` who asked, so that
    one user's waiting computations are bounded (``results.PENDING_PER_USER``)."""

    slug = models.CharField(max_length=50)
    key = models.CharField(max_length=500)
    rows = models.JSONField(default=list)
    computed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("report result")
        verbose_name_plural = _("report results")
        constraints = [models.UniqueConstraint(fields=["slug", "key"], name="reports_result_uniq")]
        indexes = [models.Index(fields=["requested_at"], name="reports_result_requested")]

    def __str__(self) -> str:
        return f"{self.slug} {self.computed_at}"


class RevenueFact(models.Model):
    """Revenue accrued on one day, for one branch, service, plan and kind: the sum of the charges (and credits) of
    those whose period starts that day (``source`` "c": ``kind`` is the charge's kind), or the revenue postings of
    the ledger transactions that carry no charges (``source`` "t": one-off services, promised-payment fees, prepaid
    cards, bonuses; ``kind`` is the transaction's). Kept by ``facts.do_roll_up_facts`` (one writer, the worker), so
    no writer of charges ever updates a row of it. 0 in ``branch_id``/``service_id``/``plan_id`` is "none"."""

    day = models.DateField()
    branch_id = models.BigIntegerField(default=0)
    service_id = models.BigIntegerField(default=0)
    plan_id = models.BigIntegerField(default=0)
    kind = models.CharField(max_length=30)
    source = models.CharField(max_length=1)
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("revenue fact")
        verbose_name_plural = _("revenue facts")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "branch_id", "service_id", "plan_id", "kind", "source"], name="reports_revenue_fact_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}: {self.amount}"


class PaymentFact(models.Model):
    """Money received (or given back) on one day, for one branch, channel and transaction kind: minus the sum of
    the postings on the channel's cash or clearing account (a payment +, a cancellation or refund −). ``channel`` is
    the account's code after ``cash:``/``clearing:`` (``agent:<code>`` for a terminal network). Kept like
    ``RevenueFact``."""

    day = models.DateField()
    branch_id = models.BigIntegerField(default=0)
    channel = models.CharField(max_length=100)
    kind = models.CharField(max_length=30)
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("payment fact")
        verbose_name_plural = _("payment facts")
        constraints = [
            models.UniqueConstraint(fields=["day", "branch_id", "channel", "kind"], name="reports_payment_fact_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.channel}: {self.amount}"


class FactWatermark(models.Model):
    """How far the facts have read a source table (``charges``, ``transactions``): every row with ``id`` up to
    ``last_id`` is in the facts, and none above it. Moved only past ids no transaction can still commit
    (``facts.safe_high_water``); its row lock serialises the rollups."""

    source = models.CharField(max_length=20, primary_key=True)
    last_id = models.BigIntegerField(default=0)
    rolled_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("summary tables' position")
        verbose_name_plural = _("summary tables' positions")

    def __str__(self) -> str:
        return f"{self.source} ≤ {self.last_id}"
