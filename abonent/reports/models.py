"""What the reports keep: results the worker computed for the heavy reports, and (``facts.py``) the summary tables
the light ones sum."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ReportResult(models.Model):
    """The last result of a heavy report for one set of filters (``key``, the query's JSON), computed by the worker
    (``reports.compute_report``): the page shows ``rows`` with ``computed_at``. ``requested_at`` is when a page last
    asked for a new one, so that a burst of views queues one task, not one each."""

    slug = models.CharField(max_length=50)
    key = models.CharField(max_length=500)
    rows = models.JSONField(default=list)
    computed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("report result")
        verbose_name_plural = _("report results")
        constraints = [models.UniqueConstraint(fields=["slug", "key"], name="reports_result_uniq")]

    def __str__(self) -> str:
        return f"{self.slug} {self.computed_at}"
