"""The reports of the subscriber base's movement: new connections and churn, plan migrations, traffic by NAS and
plan. Each is a ``pages.Report`` computed by the worker (they read subscriptions, their history and the daily
traffic, not the summary tables); what each figure means is in its ``description``, ``movement.py`` and
docs/reports.md."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from abonent.core.listing import MONEY_FORMAT, Column
from abonent.network.monitoring.traffic import usage_groups

from . import movement, selectors
from .pages import Report, chart_x, label_column, money_series, month_start, next_month, register
from .selectors import ZERO

GB = Decimal(10**9)


def _get(name):
    return lambda row: row.get(name)


def _count_series(label, values, *, bars: bool = True, color: str = "") -> dict:
    series = {"label": str(label), "values": list(values), "unit": "count", "bars": bars}
    if color:
        series["color"] = color
    return series


class NewAndChurn(Report):
    slug = "churn"
    title = _("New connections and churn")
    description = _(
        "Per month: subscribers active at its start (with a subscription running, frozen ones included), new (their "
        "first subscription ever was activated in the month), returned (they had left and came back), churned (their "
        "last running subscription was terminated, or the account was closed; a freeze is not churn), the churn rate "
        "(churned ÷ active at the start) and the net growth (new + returned − churned). A plan filter counts by the "
        "plan the subscriber came on, left on, or was on at the month's start; moves between plans are in the plan "
        "migrations report. Computed by the worker."
    )
    filters = frozenset({"plan"})
    in_worker = True
    columns = [
        Column(_("Month"), _get("period")),
        Column(_("Active at the start"), _get("active")),
        Column(pgettext_lazy("subscribers", "New"), _get("new")),
        Column(pgettext_lazy("subscribers", "Returned"), _get("returned")),
        Column(_("Churned"), _get("churned")),
        Column(_("Churn rate, %"), _get("churn_rate")),
        Column(_("Net growth"), _get("net")),
    ]

    def rows(self, query, *, using):
        result = movement.subscriber_movement(
            query.start, query.end, using=using, branch_ids=query.branch_ids, plan_id=query.plan_id
        )
        rows = []
        for month in result.months:
            active = result.active.get(month, 0)
            new, back, gone = result.new.get(month, 0), result.returned.get(month, 0), result.churned.get(month, 0)
            rate = (Decimal(gone * 100) / active).quantize(Decimal("0.01")) if active else None
            rows.append(
                {
                    "period": month,
                    "active": active,
                    "new": new,
                    "returned": back,
                    "churned": gone,
                    "churn_rate": rate,
                    "net": new + back - gone,
                }
            )
        return rows

    def totals(self, rows):
        return {
            "period": None,
            "active": None,
            "new": sum(r["new"] for r in rows),
            "returned": sum(r["returned"] for r in rows),
            "churned": sum(r["churned"] for r in rows),
            "churn_rate": None,
            "net": sum(r["net"] for r in rows),
        }

    def chart(self, rows, query):
        return {
            "x": chart_x([r["period"] for r in rows]),
            "series": [
                _count_series(
                    pgettext_lazy("subscribers", "New"), [r["new"] + r["returned"] for r in rows], color="#198754"
                ),
                _count_series(_("Churned"), [r["churned"] for r in rows], color="#dc3545"),
                _count_series(_("Net growth"), [r["net"] for r in rows], bars=False, color="#0d6efd"),
            ],
        }


# The worker keeps codes, not words (pages.label_column); no monthly price (a time-rated plan): None, shown "—".
DIRECTIONS = {"upgrade": _("Upgrade"), "downgrade": _("Downgrade"), "same": _("Same price")}


class PlanMigrations(Report):
    slug = "plan-migrations"
    title = _("Plan migrations")
    description = _(
        "Plan changes that took effect in each period, from plan → to plan: an upgrade when the new plan's monthly "
        "list price on that day is higher, a downgrade when lower (a scheduled downgrade counts on the day it took "
        "effect). "
        "The revenue effect is the new monthly price minus the old one, per month, for all the changes of the row; "
        "time-rated plans have no monthly price and no effect. A plan filter shows the changes from or to it. "
        "Computed by the worker."
    )
    filters = frozenset({"plan", "group_by"})
    in_worker = True
    columns = [
        Column(_("Period"), _get("period")),
        Column(_("From plan"), _get("from_plan")),
        Column(_("To plan"), _get("to_plan")),
        label_column(_("Direction"), "direction", DIRECTIONS),
        Column(pgettext_lazy("plan changes", "Changes"), _get("count")),
        Column(_("Price change a month"), _get("price_delta"), MONEY_FORMAT),
        Column(_("Revenue effect a month"), _get("effect"), MONEY_FORMAT),
    ]

    def rows(self, query, *, using):
        _services, plans = selectors.names(using)
        merged: dict[tuple, dict] = {}
        for change in movement.plan_changes(
            query.start, query.end, using=using, branch_ids=query.branch_ids, plan_id=query.plan_id
        ):
            key = (query.bucket(change.day), change.from_plan_id, change.to_plan_id)
            delta = change.price_delta
            entry = merged.setdefault(
                key,
                {
                    "period": key[0],
                    "from_plan": plans.get(change.from_plan_id, "—"),
                    "to_plan": plans.get(change.to_plan_id, "—"),
                    "delta_sign": None if delta is None else (delta > 0) - (delta < 0),
                    "price_delta": delta,
                    "count": 0,
                    "effect": None,
                },
            )
            entry["count"] += change.count
            if delta is not None:
                entry["effect"] = (entry["effect"] or ZERO) + delta * change.count
                if entry["price_delta"] != delta:  # a price version changed within the period
                    entry["price_delta"] = None
        codes = {1: "upgrade", -1: "downgrade", 0: "same", None: None}
        rows = []
        for key in sorted(merged, key=lambda k: (k[0], merged[k]["from_plan"], merged[k]["to_plan"])):
            entry = merged[key]
            sign = entry.pop("delta_sign")
            rows.append({**entry, "direction": codes[sign], "upgrade": sign == 1, "downgrade": sign == -1})
        return rows

    def totals(self, rows):
        return {
            "period": None,
            "from_plan": str(_("Total")),
            "to_plan": "",
            "direction": "",
            "count": sum(r["count"] for r in rows),
            "price_delta": None,
            "effect": sum((r["effect"] for r in rows if r["effect"] is not None), ZERO),
        }

    def chart(self, rows, query):
        periods = query.buckets()
        ups, downs, effect = defaultdict(int), defaultdict(int), defaultdict(lambda: ZERO)
        for row in rows:
            if row["upgrade"]:
                ups[row["period"]] += row["count"]
            if row["downgrade"]:
                downs[row["period"]] += row["count"]
            effect[row["period"]] += row["effect"] or ZERO
        return {
            "x": chart_x(periods),
            "series": [
                _count_series(_("Upgrades"), [ups[p] for p in periods], color="#198754"),
                _count_series(_("Downgrades"), [downs[p] for p in periods], color="#dc3545"),
                money_series(_("Revenue effect a month"), [effect[p] for p in periods], bars=False),
            ],
        }


class TrafficByNasAndPlan(Report):
    slug = "traffic"
    title = _("Traffic by NAS and plan")
    description = _(
        "Traffic per period, NAS and plan, from the daily traffic that accounting keeps per subscriber (the data of "
        "the network's traffic page and of usage rating). Each subscriber's traffic of a month (or of the whole period "
        "when grouped by day) counts on the NAS of their newest session and the plan of their newest internet "
        "subscription by its end. Subscribers: those with traffic in the period (by day: that day). Computed by the "
        "worker."
    )
    filters = frozenset({"plan", "group_by"})
    default_period = "last_3_months"
    in_worker = True
    columns = [
        Column(_("Period"), _get("period")),
        Column(_("NAS"), _get("nas")),
        Column(_("Plan"), _get("plan")),
        Column(_("Subscribers"), _get("subscribers")),
        Column(_("Download, GB"), _get("download_gb"), "#,##0.000"),
        Column(_("Upload, GB"), _get("upload_gb"), "#,##0.000"),
        Column(_("Total, GB"), _get("total_gb"), "#,##0.000"),
    ]

    def _spans(self, query) -> list[tuple[dt.date, dt.date]]:
        """The ``[start, end]`` (inclusive) spans attributed at once: each month, or the whole period by day."""
        if query.group_by == "day":
            return [(query.start, query.end - dt.timedelta(days=1))]
        spans, month = [], month_start(query.start)
        while month < query.end:
            spans.append((max(month, query.start), min(next_month(month), query.end) - dt.timedelta(days=1)))
            month = next_month(month)
        return spans

    def rows(self, query, *, using):
        from abonent.network.models import Nas

        _services, plans = selectors.names(using)
        nas_names = dict(Nas.objects.using(using).values_list("id", "name"))
        merged: dict[tuple, dict] = {}
        by_day = query.group_by == "day"
        for start, end in self._spans(query):
            groups, counts = usage_groups(start, end, branch_ids=query.branch_ids, using=using)
            subscribers = {(nas_id, plan_id): n for nas_id, plan_id, n in counts}
            for day, nas_id, plan_id, octets_in, octets_out, n in groups:
                if query.plan_id and plan_id != query.plan_id:
                    continue
                day = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
                key = (query.bucket(day), nas_id, plan_id)
                entry = merged.setdefault(
                    key,
                    {
                        "period": key[0],
                        "nas": nas_names.get(nas_id, "—") if nas_id else "—",
                        "plan": plans.get(plan_id, "—") if plan_id else "—",
                        "subscribers": n if by_day else subscribers.get((nas_id, plan_id), 0),
                        "input": 0,
                        "output": 0,
                    },
                )
                entry["input"] += int(octets_in or 0)
                entry["output"] += int(octets_out or 0)
        rows = []
        for key in sorted(merged, key=lambda k: (k[0], merged[k]["nas"], merged[k]["plan"])):
            entry = merged[key]
            rows.append(
                {
                    "period": entry["period"],
                    "nas": entry["nas"],
                    "plan": entry["plan"],
                    "subscribers": entry["subscribers"],
                    # RADIUS's Acct-Output-Octets are what the NAS sent to the subscriber: their download.
                    "download_bytes": entry["output"],
                    "upload_bytes": entry["input"],
                    "download_gb": _gb(entry["output"]),
                    "upload_gb": _gb(entry["input"]),
                    "total_gb": _gb(entry["input"] + entry["output"]),
                }
            )
        return rows

    def totals(self, rows):
        download = sum(r["download_bytes"] for r in rows)
        upload = sum(r["upload_bytes"] for r in rows)
        return {
            "period": None,
            "nas": str(_("Total")),
            "plan": "",
            "subscribers": None,
            "download_gb": _gb(download),
            "upload_gb": _gb(upload),
            "total_gb": _gb(download + upload),
        }

    def chart(self, rows, query):
        periods = query.buckets()
        by_nas: dict[str, dict] = defaultdict(lambda: defaultdict(int))
        for row in rows:
            by_nas[row["nas"]][row["period"]] += row["download_bytes"]
        return {
            "x": chart_x(periods),
            "series": [
                {"label": nas, "values": [values[p] for p in periods], "unit": "bytes", "bars": False}
                for nas, values in sorted(by_nas.items())[:8]
            ],
        }


def _gb(octets: int) -> Decimal:
    return (Decimal(octets) / GB).quantize(Decimal("0.001"))


for report in (NewAndChurn(), PlanMigrations(), TrafficByNasAndPlan()):
    register(report)
