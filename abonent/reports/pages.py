"""What every business report is made of, so that a new report is one class and nothing else.

A report page is: the filters (a period, picked from presets or typed; the branch; the service or plan; grouping by
day or month), a chart and a table of the same rows, and the rows again as CSV or XLSX through ``core/listing``'s
exporters. A report declares its columns and computes its rows from a ``ReportQuery``; the page, the export, the
branch scope, the permission (``Perm.REPORT_VIEW``) and the menu (``reports/_nav.html``) come from here.

Light reports (a sum over the summary tables) are computed on each view. Heavy ones say ``in_worker = True``: the
page shows the last result the worker computed for the same filters, with the time it was computed, and asks the
worker for a new one when there is none or it is older than ``max_age`` (``results.py``).

To add a report: subclass ``Report`` in a module of this app, set ``slug``, ``title``, ``description`` and
``columns``, implement ``rows()`` (and ``chart()`` for a chart), call ``register()`` on an instance, and import the
module in ``ReportsConfig.ready()``. Read through ``replica.reading_db()``; scope with ``query.branch_ids``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from django import forms
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from abonent.catalog.models import Plan, Service
from abonent.core import clock
from abonent.core.forms import ConsoleForm
from abonent.core.listing import Column
from abonent.core.models import Branch
from abonent.staff.permissions import Perm, allowed_branch_ids, has_perm

DAY, MONTH = "day", "month"
# The earliest day a report accepts, and how far ahead (the forecast looks at next month): anything else is a typo.
FIRST_DAY = dt.date(2000, 1, 1)
DAYS_AHEAD = 400
# A period grouped by day is a table of at most this many rows; a longer one is grouped by month.
MAX_DAYS_BY_DAY = 400
MAX_DAYS = 3660


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


# --- the period presets ----------------------------------------------------------------------------------------


def _preset_periods(today: dt.date) -> dict[str, tuple[dt.date, dt.date]]:
    """Each preset's ``[start, end)``."""
    this_month = month_start(today)
    return {
        "this_month": (this_month, next_month(today)),
        "last_month": (add_months(this_month, -1), this_month),
        "last_3_months": (add_months(this_month, -2), next_month(today)),
        "last_12_months": (add_months(this_month, -11), next_month(today)),
        "this_year": (dt.date(today.year, 1, 1), dt.date(today.year + 1, 1, 1)),
        "last_year": (dt.date(today.year - 1, 1, 1), dt.date(today.year, 1, 1)),
    }


PRESETS = [
    ("this_month", _("This month")),
    ("last_month", _("Last month")),
    ("last_3_months", _("The last 3 months")),
    ("last_12_months", _("The last 12 months")),
    ("this_year", _("This year")),
    ("last_year", _("Last year")),
    ("custom", _("Dates below")),
]


# --- the query -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportQuery:
    """What a report is asked for: the days ``[start, end)``, the branches it may count (``None``: all), a service
    or a plan, and the grouping. Built by the filters form, so already bounded and scoped to the user."""

    start: dt.date
    end: dt.date
    branch_ids: frozenset[int] | None = None
    service_id: int | None = None
    plan_id: int | None = None
    group_by: str = MONTH

    def bucket(self, day: dt.date) -> dt.date:
        """The row a day falls in: itself, or its month's first day."""
        return day if self.group_by == DAY else month_start(day)

    def buckets(self) -> list[dt.date]:
        """Every row of the period in order, none left out (a day with nothing is a zero, not a gap)."""
        result, day = [], self.start
        while day < self.end:
            result.append(day)
            day = day + dt.timedelta(days=1) if self.group_by == DAY else next_month(day)
        return [self.bucket(day) for day in result] if self.group_by == MONTH else result

    def as_params(self) -> dict:
        """JSON for a task's arguments and a cached result's key."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "branch_ids": sorted(self.branch_ids) if self.branch_ids is not None else None,
            "service_id": self.service_id,
            "plan_id": self.plan_id,
            "group_by": self.group_by,
        }

    @classmethod
    def from_params(cls, params: dict) -> ReportQuery:
        ids = params.get("branch_ids")
        return cls(
            start=dt.date.fromisoformat(params["start"]),
            end=dt.date.fromisoformat(params["end"]),
            branch_ids=frozenset(ids) if ids is not None else None,
            service_id=params.get("service_id"),
            plan_id=params.get("plan_id"),
            group_by=params.get("group_by") or MONTH,
        )

    def key(self) -> str:
        return json.dumps(self.as_params(), sort_keys=True, separators=(",", ":"))


# --- the filters form ------------------------------------------------------------------------------------------


class ReportFilterForm(ConsoleForm):
    """The filters every report page has (a report may leave out service, plan or grouping: ``Report.filters``)."""

    period = forms.ChoiceField(label=_("Period"), required=False, choices=PRESETS)
    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To (inclusive)"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    branch = forms.ModelChoiceField(
        label=_("Branch"), required=False, queryset=Branch.objects.none(), empty_label=_("All branches")
    )
    service = forms.ModelChoiceField(
        label=_("Service"), required=False, queryset=Service.objects.none(), empty_label=_("All services")
    )
    plan = forms.ModelChoiceField(
        label=_("Plan"), required=False, queryset=Plan.objects.none(), empty_label=_("All plans")
    )
    group_by = forms.ChoiceField(
        label=_("Group by"), required=False, choices=[(MONTH, _("Month")), (DAY, _("Day"))], initial=MONTH
    )

    def __init__(self, data=None, *, user, report: Report, today: dt.date | None = None, **kwargs):
        super().__init__(data, **kwargs)
        self.user, self.report = user, report
        self.today = today or clock.today()
        ids = allowed_branch_ids(user)
        branches = Branch.objects.order_by("name")
        self.fields["branch"].queryset = branches if ids is None else branches.filter(pk__in=ids)
        self.fields["service"].queryset = Service.objects.order_by("name")
        self.fields["plan"].queryset = Plan.objects.order_by("name")
        self.fields["period"].initial = report.default_period
        for name in ("service", "plan", "group_by"):
            if name not in report.filters:
                del self.fields[name]

    def clean(self):
        data = super().clean()
        preset = data.get("period") or self.report.default_period
        start, end = data.get("start"), data.get("end")
        if preset != "custom" and not (start or end):
            start, last = _preset_periods(self.today)[preset]
            end = last - dt.timedelta(days=1)
        if start is None:
            self.add_error("start", forms.ValidationError(_("Give the first day."), code="required"))
        if end is None:
            self.add_error("end", forms.ValidationError(_("Give the last day."), code="required"))
        if start is None or end is None:
            return data
        latest = self.today + dt.timedelta(days=DAYS_AHEAD)
        for name, day in (("start", start), ("end", end)):
            if not FIRST_DAY <= day <= latest:
                self.add_error(
                    name,
                    forms.ValidationError(
                        _("Give a day between %(first)s and %(last)s."),
                        code="out_of_range",
                        params={"first": FIRST_DAY.strftime("%d.%m.%Y"), "last": latest.strftime("%d.%m.%Y")},
                    ),
                )
        if self.errors:
            return data
        if end < start:
            self.add_error(
                "end", forms.ValidationError(_("The last day is before the first."), code="end_before_start")
            )
            return data
        days = (end - start).days + 1
        group_by = data.get("group_by") or self.report.default_group_by
        if days > MAX_DAYS:
            self.add_error(
                "start",
                forms.ValidationError(
                    _("A report covers at most %(days)s days."), code="period_too_long", params={"days": MAX_DAYS}
                ),
            )
        elif group_by == DAY and days > MAX_DAYS_BY_DAY:
            self.add_error(
                "group_by",
                forms.ValidationError(
                    _("Group a period of more than %(days)s days by month."),
                    code="too_many_days",
                    params={"days": MAX_DAYS_BY_DAY},
                ),
            )
        data["start"], data["end"], data["group_by"] = start, end, group_by
        return data

    def query(self) -> ReportQuery:
        """The query of valid filters (the report's defaults when nothing was asked), scoped to the user."""
        if self.is_bound:
            data = self.cleaned_data
        else:
            start, end = _preset_periods(self.today)[self.report.default_period]
            data = {"start": start, "end": end - dt.timedelta(days=1), "group_by": self.report.default_group_by}
        allowed = allowed_branch_ids(self.user)
        if data.get("branch"):
            branch_ids = frozenset({data["branch"].pk})
        else:
            branch_ids = frozenset(allowed) if allowed is not None else None
        return ReportQuery(
            start=data["start"],
            end=data["end"] + dt.timedelta(days=1),
            branch_ids=branch_ids,
            service_id=data["service"].pk if data.get("service") else None,
            plan_id=data["plan"].pk if data.get("plan") else None,
            group_by=data.get("group_by") or self.report.default_group_by,
        )


# --- the report ------------------------------------------------------------------------------------------------


class Report:
    """One report: what it is called, what it means, its columns, how its rows and chart are made.

    ``rows(query, using=alias)`` returns the table as dicts (values Decimal, int, date or str), in order; the
    columns read them (``Column(title, lambda r: r["amount"], MONEY_FORMAT)``). ``chart(rows, query)`` returns
    the JSON ``static/abonent/charts.js`` draws, or ``None``. ``totals(rows)`` the table's last line, or ``None``.
    """

    slug: ClassVar[str] = ""
    title: ClassVar[Any] = ""
    description: ClassVar[Any] = ""
    columns: ClassVar[Sequence[Column]] = ()
    filters: ClassVar[frozenset[str]] = frozenset({"service", "plan", "group_by"})
    default_period: ClassVar[str] = "last_12_months"
    default_group_by: ClassVar[str] = MONTH
    in_worker: ClassVar[bool] = False
    # How old a worker-computed result may be before the page asks for a new one.
    max_age: ClassVar[dt.timedelta] = dt.timedelta(minutes=30)
    permission: ClassVar[Perm] = Perm.REPORT_VIEW

    def rows(self, query: ReportQuery, *, using: str) -> list[dict]:
        raise NotImplementedError

    def chart(self, rows: list[dict], query: ReportQuery) -> dict | None:
        return None

    def totals(self, rows: list[dict]) -> dict | None:
        return None


def label_column(title, name: str, labels: dict) -> Column:
    """A column of a code the rows keep (``"upgrade"``), shown as its label in the language of the page or export
    being made: a worker-computed result is kept once and read in every user's language, so it must hold no
    translated text. A value that is not a code (a total line's ``""``) is shown as it is."""

    def value(row):
        code = row.get(name)
        return str(labels[code]) if code in labels else code

    return Column(title, value)


REPORTS: dict[str, Report] = {}


def register(report: Report) -> Report:
    if not report.slug or report.slug in REPORTS:
        raise ValueError(f"a report needs a slug of its own: {report.slug!r}")
    REPORTS[report.slug] = report
    return report


def get_report(slug: str) -> Report:
    try:
        return REPORTS[slug]
    except KeyError:
        raise Http404 from None


def reports_for(user) -> list[Report]:
    """The reports the user may open, in the order they were registered (the menu's order)."""
    return [report for report in REPORTS.values() if has_perm(user, report.permission)]


# --- chart helpers ---------------------------------------------------------------------------------------------


def chart_x(days: Sequence[dt.date]) -> list[int]:
    """The chart's x values: each row's local midnight in unix seconds (``charts.js`` with ``data-chart-days``)."""
    return [int(timezone.make_aware(dt.datetime.combine(day, dt.time.min)).timestamp()) for day in days]


def money_series(label, values: Sequence[Decimal], *, bars: bool = True, color: str = "") -> dict:
    series = {
        "label": str(label),
        "values": [None if v is None else float(v) for v in values],
        "unit": "money",
        "bars": bars,
    }
    if color:
        series["color"] = color
    return series
