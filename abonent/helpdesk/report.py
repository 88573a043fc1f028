"""The SLA report: tickets opened in a period, by queue or by assignee, with how many met and breached each target.

A target is *breached* when its breach was recorded (the sweep, or the late reply or resolution itself); *met* when
its clock stopped in time (a first public reply, a resolution); otherwise it is still *pending*. Branch-scoped like
the list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import FINISHED_STATUSES
from .selectors import visible_tickets

BY_QUEUE, BY_ASSIGNEE = "queue", "assignee"


@dataclass(frozen=True)
class ReportRow:
    label: str
    tickets: int
    first_response_met: int
    first_response_breached: int
    resolution_met: int
    resolution_breached: int

    @staticmethod
    def _share(met: int, breached: int) -> float | None:
        decided = met + breached
        return round(100 * met / decided, 1) if decided else None

    @property
    def first_response_met_percent(self) -> float | None:
        return self._share(self.first_response_met, self.first_response_breached)

    @property
    def resolution_met_percent(self) -> float | None:
        return self._share(self.resolution_met, self.resolution_breached)


# The dates a period is clamped to: a day either side of the calendar's ends, so that the next day and the conversion
# to UTC stay dates (no ticket opens in the year 1 or 9999 anyway).
_FIRST_DAY, _LAST_DAY = dt.date(1, 1, 2), dt.date(9999, 12, 30)


def _bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = timezone.get_default_timezone()
    date_from = min(max(date_from, _FIRST_DAY), _LAST_DAY)
    date_to = min(max(date_to, _FIRST_DAY), _LAST_DAY)
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start, end


def sla_report(user, *, date_from: dt.date, date_to: dt.date, group_by: str = BY_QUEUE) -> list[ReportRow]:
    """One row per queue (or assignee) of the tickets opened from ``date_from`` to ``date_to`` (local dates,
    inclusive), then a total row."""
    start, end = _bounds(date_from, date_to)
    tickets = visible_tickets(user).filter(
        created_at__gte=start, created_at__lt=end, resolution_target_minutes__isnull=False
    )
    key = "queue__name" if group_by == BY_QUEUE else "assignee__username"
    counts = {
        "tickets": Count("id"),
        "first_response_met": Count(
            "id", filter=Q(first_response_at__isnull=False, first_response_breached_at__isnull=True)
        ),
        "first_response_breached": Count("id", filter=Q(first_response_breached_at__isnull=False)),
        "resolution_met": Count("id", filter=Q(status__in=FINISHED_STATUSES, resolution_breached_at__isnull=True)),
        "resolution_breached": Count("id", filter=Q(resolution_breached_at__isnull=False)),
    }
    grouped = tickets.order_by().values(key).annotate(**counts).order_by(key)
    nobody = _("(no queue)") if group_by == BY_QUEUE else _("(unassigned)")
    rows = [ReportRow(label=row[key] or nobody, **{name: row[name] for name in counts}) for row in grouped]
    # Named groups by name, then those of no queue (or nobody): NULLs sort first on one engine, last on another.
    rows.sort(key=lambda row: (row.label == nobody, row.label))
    total = tickets.order_by().aggregate(**counts)
    rows.append(ReportRow(label=_("Total"), **total))
    return rows
