"""Console pages of issue 18's part of the helpdesk: routing a ticket (queue, assignee, priority, NAS, device), its
files (served only here, after the permission and branch checks) and the SLA report with its export."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.core.listing import Column, export_response, query_without
from abonent.staff.permissions import Perm, require_perm

from . import report, routing, selectors
from .downloads import file_response
from .forms import RoutingForm, SlaReportForm


@require_POST
@require_perm(Perm.TICKET_MANAGE)
def ticket_route(request, pk: int):
    from .views import _ticket_page

    ticket = selectors.get_ticket(request.user, pk)
    form = RoutingForm(request.POST, ticket=ticket, auto_id="routing-%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            routing.do_route_ticket(
                ticket,
                routing.Routing(
                    queue_id=data["queue"].pk if data["queue"] else None,
                    assignee_id=data["assignee"].pk if data["assignee"] else None,
                    priority=data["priority"],
                    nas_id=data["nas"].pk if data["nas"] else None,
                    equipment_id=int(data["equipment"]) if data["equipment"] else None,
                ),
                reason=data["reason"],
                acting_user=request.user,
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Saved."))
            return redirect("helpdesk:ticket", pk=ticket.pk)
    form.mark_invalid()
    return _ticket_page(request, ticket, routing_form=form, status=422)


@require_perm(Perm.TICKET_VIEW)
def attachment_download(request, pk: int):
    return file_response(selectors.get_attachment(request.user, pk))


def _pct(value) -> str:
    return "" if value is None else f"{value:g}"


REPORT_COLUMNS = [
    Column(gettext_lazy("Group"), lambda r: r.label),
    Column(gettext_lazy("Tickets"), lambda r: r.tickets),
    Column(gettext_lazy("First response met"), lambda r: r.first_response_met),
    Column(gettext_lazy("First response breached"), lambda r: r.first_response_breached),
    Column(gettext_lazy("First response met, %"), lambda r: r.first_response_met_percent),
    Column(gettext_lazy("Resolution met"), lambda r: r.resolution_met),
    Column(gettext_lazy("Resolution breached"), lambda r: r.resolution_breached),
    Column(gettext_lazy("Resolution met, %"), lambda r: r.resolution_met_percent),
]


@require_perm(Perm.TICKET_VIEW)
def sla_report(request):
    form = SlaReportForm(request.GET or None)
    date_from, date_to, group_by = form.period()
    rows = report.sla_report(request.user, date_from=date_from, date_to=date_to, group_by=group_by)
    if request.GET.get("format"):
        name = f"sla-{date_from:%Y%m%d}-{date_to:%Y%m%d}"
        return export_response(request.GET["format"], name, REPORT_COLUMNS, rows)
    context = {
        "form": form,
        "rows": rows,
        "date_from": date_from,
        "date_to": date_to,
        "query_string": query_without(request.GET, "format"),
    }
    return render(request, "helpdesk/sla_report.html", context)
