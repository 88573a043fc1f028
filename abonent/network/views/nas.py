"""The NAS: the list (with monitoring's figures and an export), a NAS's card (charts, its sessions, CoA failures),
adding and editing one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from abonent.core import clock
from abonent.core.forms import apply_action_errors
from abonent.core.listing import Column, export_response
from abonent.staff.permissions import Perm, has_perm, require_perm

from .. import actions, selectors
from ..forms import NasForm
from ..models import Nas, RejectReason
from ..monitoring import selectors as monitoring
from ..monitoring.health import silent_after
from .sessions import COUNT_CAP, capped_count

# Sessions listed on a NAS's card; the sessions page has them all.
CARD_SESSIONS = 20
# Charts of the card: the last day sample by sample, the last week by the hour.
DAY_BUCKET_SECONDS = 0
WEEK_BUCKET_SECONDS = 3600


@dataclass(frozen=True)
class NasRow:
    """A NAS as the list shows it: the RADIUS processes' counters for it summed, and monitoring's state."""

    nas: Nas
    online: int
    last_packet_at: dt.datetime | None
    accepts: int
    restricted: int
    rejects: list[tuple[str, int]]  # (reason label, count), most first
    rejects_total: int
    drops: list[tuple[str, int]]  # (counter suffix, count): malformed, bad_authenticator…
    drops_total: int
    last_accounting_at: dt.datetime | None
    silent: bool


def _nas_rows(user) -> list[NasRow]:
    """Every NAS (shared equipment); ``online`` counts the sessions the user may see, as the sessions page."""
    totals = selectors.radius_totals()
    labels = dict(RejectReason.choices)
    online = {item["nas"].pk: item["online"] for item in selectors.nas_overview(visible_to=user)}
    rows = []
    for state in monitoring.nas_states():
        nas = state.nas
        counters = totals.counters.get(nas.name, {})
        rejects = sorted(
            (
                (labels.get(name[len("rejects_") :], name[len("rejects_") :]), n)
                for name, n in counters.items()
                if name.startswith("rejects_") and n
            ),
            key=lambda pair: -pair[1],
        )
        drops = sorted(
            ((name[len("dropped_") :], n) for name, n in counters.items() if name.startswith("dropped_") and n),
            key=lambda pair: -pair[1],
        )
        seen = totals.last_packet.get(nas.name)
        rows.append(
            NasRow(
                nas=nas,
                online=online.get(nas.pk, 0),
                last_packet_at=dt.datetime.fromtimestamp(seen, tz=dt.UTC) if seen else None,
                accepts=counters.get("accepts", 0),
                restricted=counters.get("accepts_restricted", 0),
                rejects=rejects,
                rejects_total=sum(n for _label, n in rejects),
                drops=drops,
                drops_total=sum(n for _name, n in drops),
                last_accounting_at=state.last_accounting_at,
                silent=state.silent,
            )
        )
    return rows


@require_perm(Perm.NETWORK_VIEW)
def nas_list(request):
    rows = _nas_rows(request.user)
    return render(
        request,
        "network/nas_list.html",
        {
            "rows": rows,
            "silent": [r.nas for r in rows if r.silent],
            "without_message_authenticator": [r.nas for r in rows if not r.nas.require_message_authenticator],
            "can_manage": has_perm(request.user, Perm.NETWORK_MANAGE),
        },
    )


NAS_COLUMNS = [
    Column(gettext_lazy("NAS"), lambda r: r.nas.name),
    Column(gettext_lazy("IP address"), lambda r: r.nas.ip_address),
    Column(gettext_lazy("Vendor"), lambda r: r.nas.get_vendor_display()),
    Column(gettext_lazy("Active"), lambda r: r.nas.is_active),
    Column(gettext_lazy("Online"), lambda r: r.online),
    Column(gettext_lazy("Last accounting"), lambda r: r.last_accounting_at),
    Column(gettext_lazy("Silent"), lambda r: r.silent),
    Column(gettext_lazy("Last packet"), lambda r: r.last_packet_at),
    Column(gettext_lazy("Accepts"), lambda r: r.accepts),
    Column(gettext_lazy("Rejects"), lambda r: r.rejects_total),
    Column(gettext_lazy("Dropped"), lambda r: r.drops_total),
]


@require_perm(Perm.NETWORK_VIEW)
def nas_export(request):
    return export_response(request.GET.get("format", ""), "nas", NAS_COLUMNS, _nas_rows(request.user))


@require_perm(Perm.NETWORK_VIEW)
def nas_card(request, pk):
    nas = get_object_or_404(Nas.objects.select_related("health"), pk=pk)
    now = clock.now()
    state = monitoring.nas_state(nas, now)
    sessions = selectors.open_sessions(nas=nas, visible_to=request.user).select_related("subscriber").order_by("-id")
    seen = selectors.radius_totals().last_packet.get(nas.name)
    day_ago, week_ago = now - monitoring.DAY, now - monitoring.WEEK
    charts = {}
    for period, since, bucket in (("day", day_ago, DAY_BUCKET_SECONDS), ("week", week_ago, WEEK_BUCKET_SECONDS)):
        series = monitoring.nas_series(nas, since=since, bucket_seconds=bucket)
        charts[f"{period}_sessions"] = {
            "x": series.x,
            "series": [{"label": _("Sessions online"), "values": series.values["sessions"], "unit": "count"}],
        }
        charts[f"{period}_traffic"] = {
            "x": series.x,
            "series": [
                {"label": _("Download"), "values": series.values["download"], "unit": "bits"},
                {"label": _("Upload"), "values": series.values["upload"], "unit": "bits"},
            ],
        }
    return render(
        request,
        "network/nas_card.html",
        {
            "nas": nas,
            "state": state,
            "online_now": capped_count(sessions),
            "count_cap": COUNT_CAP,
            "sessions": list(sessions[:CARD_SESSIONS]),
            "last_packet_at": dt.datetime.fromtimestamp(seen, tz=dt.UTC) if seen else None,
            "silent_after_minutes": int(silent_after(nas.interim_interval).total_seconds() // 60),
            "day": monitoring.interval_totals(nas, since=day_ago),
            "coa_failures": monitoring.recent_coa_failures(nas, visible_to=request.user),
            "coa_failures_day": monitoring.coa_failures_by_nas(day_ago).get(nas.pk, 0),
            "coa_pending": monitoring.coa_pending_by_nas().get(nas.pk, 0),
            "charts": charts,
            "chart_titles": [
                ("day_sessions", _("Sessions online, 24 hours")),
                ("day_traffic", _("Traffic, 24 hours")),
                ("week_sessions", _("Sessions online, 7 days")),
                ("week_traffic", _("Traffic, 7 days")),
            ],
            "silent": [nas] if state.silent else [],
            "without_message_authenticator": [] if nas.require_message_authenticator else [nas.name],
            "can_manage": has_perm(request.user, Perm.NETWORK_MANAGE),
        },
    )


@require_perm(Perm.NETWORK_MANAGE)
def nas_create(request):
    form = NasForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = form.nas_values()
        try:
            nas = actions.do_create_nas(acting_user=request.user, **{**values, "secret": values["secret"] or ""})
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("NAS %(name)s added.") % {"name": nas.name})
            return redirect("network:nas_card", nas.pk)
    return render(request, "network/nas_form.html", {"form": form, "nas": None}, status=422 if form.errors else 200)


@require_perm(Perm.NETWORK_MANAGE)
def nas_edit(request, pk):
    nas = get_object_or_404(Nas, pk=pk)
    form = NasForm(request.POST or None, initial=NasForm.initial_of(nas), editing=True)
    if request.method == "POST" and form.is_valid():
        try:
            nas = actions.do_update_nas(nas, acting_user=request.user, **form.nas_values())
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("NAS %(name)s saved.") % {"name": nas.name})
            return redirect("network:nas_card", nas.pk)
    # The warning follows what is stored (do_update_nas changes its own copy), not what a failed form says.
    unprotected = [] if nas.require_message_authenticator else [nas.name]
    context = {"form": form, "nas": nas, "without_message_authenticator": unprotected}
    return render(request, "network/nas_form.html", context, status=422 if form.errors else 200)
