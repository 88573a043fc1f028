"""The dashboard's snapshot of the figures too heavy to count on every page view."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Snapshot(models.Model):
    """The heavy figures of the dashboard at one moment, computed by the periodic task (``dashboard.snapshot``)
    every five minutes: receivables and their ageing, payments this month, revenue by service, ARPU, sessions
    online over time. ``figures`` is the JSON ``snapshot.compute_figures`` returns (amounts as decimal strings).
    The page reads the newest row; rows older than a day are pruned by the task."""

    taken_at = models.DateTimeField(_("taken at"), db_index=True)
    duration_ms = models.PositiveIntegerField(_("computed in, ms"), default=0)
    figures = models.JSONField(default=dict)

    class Meta:
        verbose_name = _("dashboard snapshot")
        verbose_name_plural = _("dashboard snapshots")
        ordering = ["-taken_at"]

    def __str__(self) -> str:
        return f"snapshot {self.taken_at:%Y-%m-%d %H:%M}"
