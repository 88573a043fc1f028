"""Traffic by NAS and plan over a chosen period (``monitoring.traffic``): a table and a chart per day by NAS."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import render
from django.utils import timezone

from abonent.core import clock
from abonent.staff.permissions import Perm, allowed_branch_ids, require_perm

from ..forms import TrafficPeriodForm
from ..monitoring.traffic import traffic_report

DEFAULT_DAYS = 7


@require_perm(Perm.NETWORK_VIEW)
def traffic(request):
    today = clock.today()
    default = {"date_from": today - dt.timedelta(days=DEFAULT_DAYS - 1), "date_to": today}
    form = TrafficPeriodForm(request.GET if request.GET else None, initial=default)
    if form.is_bound and not form.is_valid():
        return render(request, "network/traffic.html", {"form": form, "report": None}, status=422)
    period = form.cleaned_data if form.is_bound else default
    # A branch-limited user sees their branches' subscribers' traffic, as the sessions page shows their sessions.
    report = traffic_report(period["date_from"], period["date_to"], branch_ids=allowed_branch_ids(request.user))
    midnight = lambda day: int(timezone.make_aware(dt.datetime.combine(day, dt.time.min)).timestamp())  # noqa: E731
    chart = {
        "x": [midnight(day) for day in report.days],
        "series": [
            {"label": report.nas_names.get(nas_id) or "—", "values": values, "unit": "bytes", "bars": False}
            for nas_id, values in sorted(
                report.download_by_nas.items(), key=lambda item: report.nas_names[item[0]] or ""
            )
        ],
    }
    return render(request, "network/traffic.html", {"form": form, "report": report, "chart": chart})
