"""The business reports: revenue accrued and received, payments by channel, ARPU, next month's forecast. Each is a
``pages.Report`` (page, chart, table, export); what each figure means is in its ``description`` and docs/reports.md."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.utils.translation import gettext_lazy as _

from abonent.billing import selectors as billing_selectors
from abonent.core.listing import MONEY_FORMAT, Column

from . import selectors
from .pages import (
    Report,
    ReportQuery,
    add_months,
    chart_x,
    label_column,
    money_series,
    month_start,
    next_month,
    register,
)
from .selectors import ZERO, money


def _get(name):
    return lambda row: row.get(name)


def _money_column(title, name):
    return Column(title, _get(name), MONEY_FORMAT)


class AccrualRevenue(Report):
    slug = "revenue"
    title = _("Revenue (accrual)")
    description = _(
        "What was charged for each period: every charge counts on the first day of the period it is for, credits and "
        "reversals of charges are subtracted; one-off services, promised-payment fees, prepaid cards and bonuses count "
        "on their date. From the summary tables, which the worker brings up to date every minute."
    )
    columns = [
        Column(_("Period"), _get("period")),
        Column(_("Service"), _get("service")),
        Column(_("Plan"), _get("plan")),
        _money_column(_("Charged"), "charged"),
        _money_column(_("Credited and reversed"), "credited"),
        _money_column(_("Revenue"), "net"),
        Column(_("Charges"), _get("count")),
    ]

    def rows(self, query: ReportQuery, *, using: str) -> list[dict]:
        services, plans = selectors.names(using)
        merged: dict[tuple, dict] = {}
        for row in selectors.accrual_by_day(query, using=using):
            key = (query.bucket(row["day"]), row["service_id"], row["plan_id"])
            entry = merged.setdefault(
                key,
                {
                    "period": key[0],
                    "service": services.get(row["service_id"], "—") if row["service_id"] else _("No service"),
                    "plan": plans.get(row["plan_id"], "") if row["plan_id"] else "",
                    "charged": ZERO,
                    "credited": ZERO,
                    "net": ZERO,
                    "count": 0,
                },
            )
            entry["charged"] += money(row["charged"])
            entry["credited"] += money(row["credited"])
            entry["net"] += money(row["net"])
            entry["count"] += int(row["n"] or 0)
        return [
            {**e, "service": str(e["service"])}
            for _k, e in sorted(merged.items(), key=lambda kv: (kv[0][0], str(kv[1]["service"]), kv[1]["plan"]))
        ]

    def totals(self, rows):
        return {
            "period": None,
            "service": str(_("Total")),
            "plan": "",
            "charged": sum((r["charged"] for r in rows), ZERO),
            "credited": sum((r["credited"] for r in rows), ZERO),
            "net": sum((r["net"] for r in rows), ZERO),
            "count": sum(r["count"] for r in rows),
        }

    def chart(self, rows, query):
        by_period: dict = defaultdict(lambda: ZERO)
        for row in rows:
            by_period[row["period"]] += row["net"]
        periods = query.buckets()
        return {
            "x": chart_x(periods),
            "series": [money_series(_("Revenue"), [by_period.get(p, ZERO) for p in periods])],
        }


class CashRevenue(Report):
    slug = "revenue-cash"
    title = _("Revenue (cash)")
    description = _(
        "Money received in each period through every channel, on the day it was booked, less payments cancelled and "
        "money refunded in that period. A payment left in suspense counts under no branch."
    )
    filters = frozenset({"group_by"})
    columns = [
        Column(_("Period"), _get("period")),
        _money_column(_("Received"), "received"),
        _money_column(_("Cancelled and refunded"), "returned"),
        _money_column(_("Net received"), "net"),
        Column(_("Payments"), _get("count")),
    ]

    def rows(self, query, *, using):
        merged: dict = {}
        for row in selectors.cash_by_day(query, using=using):
            period = query.bucket(row["day"])
            entry = merged.setdefault(
                period, {"period": period, "received": ZERO, "returned": ZERO, "net": ZERO, "count": 0}
            )
            amount = money(row["total"])
            if amount >= 0:
                entry["received"] += amount
                entry["count"] += int(row["n"] or 0)
            else:
                entry["returned"] += amount
            entry["net"] += amount
        return [merged[p] for p in sorted(merged)]

    def totals(self, rows):
        return {
            "period": None,
            "received": sum((r["received"] for r in rows), ZERO),
            "returned": sum((r["returned"] for r in rows), ZERO),
            "net": sum((r["net"] for r in rows), ZERO),
            "count": sum(r["count"] for r in rows),
        }

    def chart(self, rows, query):
        by_period = {r["period"]: r["net"] for r in rows}
        periods = query.buckets()
        return {
            "x": chart_x(periods),
            "series": [money_series(_("Net received"), [by_period.get(p, ZERO) for p in periods])],
        }


def channel_label(channel: str) -> str:
    if channel.startswith("agent:"):
        return _("Agent %(code)s") % {"code": channel.removeprefix("agent:")}
    labels = {
        "cash": _("Cash desk"),
        "bank": _("Bank statement"),
        "manual": _("Entered by hand"),
        "yookassa": "YooKassa",
    }
    return str(labels.get(channel, channel))


class PaymentsByChannel(Report):
    slug = "payments"
    title = _("Payments by channel")
    description = _(
        "Payments per channel and period: the cash desk, bank statements, each payment agent (terminal network or bank "
        "app) and each online gateway; cancellations and refunds are subtracted from the channel they came through."
    )
    filters = frozenset({"group_by"})
    columns = [
        Column(_("Period"), _get("period")),
        Column(_("Channel"), _get("channel")),
        Column(_("Payments"), _get("count")),
        _money_column(_("Received"), "received"),
        _money_column(_("Cancelled and refunded"), "returned"),
        _money_column(_("Net received"), "net"),
    ]

    def rows(self, query, *, using):
        merged: dict = {}
        for row in selectors.cash_by_day(query, using=using):
            key = (query.bucket(row["day"]), row["channel"])
            entry = merged.setdefault(
                key,
                {
                    "period": key[0],
                    "channel": channel_label(row["channel"]),
                    "count": 0,
                    "received": ZERO,
                    "returned": ZERO,
                    "net": ZERO,
                },
            )
            amount = money(row["total"])
            if amount >= 0:
                entry["received"] += amount
                entry["count"] += int(row["n"] or 0)
            else:
                entry["returned"] += amount
            entry["net"] += amount
        return [merged[k] for k in sorted(merged, key=lambda k: (k[0], merged[k]["channel"]))]

    def totals(self, rows):
        return {
            "period": None,
            "channel": str(_("Total")),
            "count": sum(r["count"] for r in rows),
            "received": sum((r["received"] for r in rows), ZERO),
            "returned": sum((r["returned"] for r in rows), ZERO),
            "net": sum((r["net"] for r in rows), ZERO),
        }

    def chart(self, rows, query):
        periods = query.buckets()
        channels = sorted({r["channel"] for r in rows})
        values = {(r["period"], r["channel"]): r["net"] for r in rows}
        return {
            "x": chart_x(periods),
            "series": [money_series(c, [values.get((p, c), ZERO) for p in periods], bars=False) for c in channels[:8]],
        }


class Arpu(Report):
    slug = "arpu"
    title = _("ARPU")
    description = _(
        "Average revenue per subscriber, by month: the month's accrued revenue (as in the accrual report) divided by "
        "the subscribers who had a subscription on at least one day of the month. Computed by the worker."
    )
    filters = frozenset({"service", "plan"})
    in_worker = True
    columns = [
        Column(_("Month"), _get("period")),
        _money_column(_("Revenue"), "revenue"),
        Column(_("Subscribers"), _get("subscribers")),
        _money_column(_("ARPU"), "arpu"),
    ]

    def rows(self, query, *, using):
        monthly = ReportQuery(
            start=month_start(query.start),
            end=next_month(query.end - dt.timedelta(days=1)),
            branch_ids=query.branch_ids,
            service_id=query.service_id,
            plan_id=query.plan_id,
        )
        revenue = selectors.accrued_by_month(monthly, using=using)
        rows = []
        for month in monthly.buckets():
            subscribers = billing_selectors.subscribers_billed(
                month,
                next_month(month),
                using=using,
                branch_ids=query.branch_ids,
                service_id=query.service_id,
                plan_id=query.plan_id,
            )
            amount = revenue.get(month, ZERO)
            arpu = money(amount / subscribers) if subscribers else None
            rows.append({"period": month, "revenue": amount, "subscribers": subscribers, "arpu": arpu})
        return rows

    def chart(self, rows, query):
        return {
            "x": chart_x([r["period"] for r in rows]),
            "series": [money_series(_("ARPU"), [r["arpu"] or ZERO for r in rows], bars=False)],
        }


# The worker keeps codes, not words: a result computed in one language is read in any (pages.label_column).
FIGURES = {"accrued": _("Accrued"), "forecast": _("Forecast")}


class Forecast(Report):
    slug = "forecast"
    title = _("Forecast")
    description = _(
        "Next month's revenue from recurring fees, beside the accrued revenue of the last months. The forecast takes "
        "every live subscription at the list price of the plan it will be on next month (downgrades scheduled for the "
        "month's start included), less the days of the month it is frozen for. It does not foresee individual prices "
        "and discounts, traffic and time, one-off services, new connections or terminations. Computed by the worker."
    )
    filters = frozenset({"service", "plan"})
    in_worker = True
    default_period = "last_3_months"
    columns = [
        Column(_("Month"), _get("period")),
        label_column(_("Figure"), "figure", FIGURES),
        _money_column(_("Revenue"), "amount"),
        Column(_("Subscriptions"), _get("subscriptions")),
    ]

    def rows(self, query, *, using):
        from abonent.core import clock

        this_month = month_start(clock.today())
        target = next_month(this_month)
        first = min(month_start(query.start), add_months(this_month, -1))
        past = ReportQuery(
            start=first, end=target, branch_ids=query.branch_ids, service_id=query.service_id, plan_id=query.plan_id
        )
        revenue = selectors.accrued_by_month(past, using=using)
        rows = [
            {"period": month, "figure": "accrued", "amount": revenue.get(month, ZERO), "subscriptions": None}
            for month in past.buckets()
        ]
        amount, subscriptions = selectors.forecast_month(target, query, using=using)
        rows.append({"period": target, "figure": "forecast", "amount": amount, "subscriptions": subscriptions})
        return rows

    def chart(self, rows, query):
        return {
            "x": chart_x([r["period"] for r in rows]),
            "series": [
                money_series(_("Accrued"), [r["amount"] if r["subscriptions"] is None else None for r in rows]),
                money_series(
                    _("Forecast"),
                    [r["amount"] if r["subscriptions"] is not None else None for r in rows],
                    color="#fd7e14",
                ),
            ],
        }


for report in (AccrualRevenue(), CashRevenue(), PaymentsByChannel(), Arpu(), Forecast()):
    register(report)
