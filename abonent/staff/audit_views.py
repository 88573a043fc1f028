"""The audit viewer under ``/staff/audit/``: a keyset-paged list and its CSV/XLSX export, the same filters."""

from __future__ import annotations

from django.shortcuts import render
from django.utils.translation import gettext as _

from abonent.core import audit
from abonent.core.audit_labels import known_actions
from abonent.core.listing import EXPORT_FORMATS, export_response, keyset_page

from . import audit_log
from .forms import ACTOR_PROCESSES, AuditFilterForm
from .models import StaffUser
from .permissions import Perm, require_perm


def _form(request) -> AuditFilterForm:
    return AuditFilterForm(
        request.GET or None,
        staff_users=StaffUser.objects.filter(is_service_account=False).order_by("full_name", "username"),
        actions=known_actions(),
    )


def _filters(request, form: AuditFilterForm) -> audit_log.AuditFilters | None:
    """The form's filters, or ``None`` when they name nothing to show (errors put on the form)."""
    if not form.is_bound:
        return audit_log.AuditFilters()
    if not form.is_valid():
        return None
    data = form.cleaned_data
    who = data.get("who") or ""
    subscriber_ids = None
    if data.get("subscriber"):
        subscriber_ids = audit_log.find_subscriber_ids(request.user, data["subscriber"])
        if not subscriber_ids:
            form.add_error("subscriber", _("No subscriber you can see has this account number or name."))
            form.mark_invalid()
            return None
        if len(subscriber_ids) > audit_log.SUBSCRIBER_MATCHES:
            form.add_error("subscriber", _("Too many subscribers have this name: type more of it or the account."))
            form.mark_invalid()
            return None
    return audit_log.AuditFilters(
        actor_id=int(who) if who.isdigit() else None,
        processes=who == ACTOR_PROCESSES,
        subscriber_ids=subscriber_ids,
        action=data.get("action") or "",
        date_from=data.get("date_from"),
        date_to=data.get("date_to"),
    )


def _query_string(request) -> str:
    query = request.GET.copy()
    for name in ("cursor", "format"):
        query.pop(name, None)
    return query.urlencode()


@require_perm(Perm.AUDIT_VIEW)
def audit_list(request):
    form = _form(request)
    filters = _filters(request, form)
    page, rows = None, []
    if filters is not None:
        page = keyset_page(
            audit_log.filtered_events(request.user, filters),
            ordering=audit_log.ORDERING,
            cursor=request.GET.get("cursor"),
        )
        rows = [audit_log.audit_row(event) for event in page]
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "query_string": _query_string(request),
    }
    return render(request, "staff/audit_list.html", context, status=422 if form.errors else 200)


@require_perm(Perm.AUDIT_VIEW)
def audit_export(request):
    form = _form(request)
    filters = _filters(request, form)
    if filters is None:
        return render(request, "staff/audit_list.html", {"form": form, "rows": [], "query_string": ""}, status=422)
    fmt = request.GET.get("format", "csv")
    events = audit_log.filtered_events(request.user, filters)
    if fmt not in EXPORT_FORMATS:
        return export_response(fmt, "audit", [], [])  # the 400 that names the formats
    # Who took the log away, and with which filters: it holds personal data (152-FZ) of many subscribers.
    exported = audit.record(
        actor=request.user,
        action="staff.audit_exported",
        obj=request.user,
        after={"format": fmt, "filters": {k: v for k, v in request.GET.items() if k not in ("format", "cursor")}},
    )
    rows = audit_log.export_rows(events.exclude(pk=exported.pk))  # the file holds what was there when asked
    return export_response(fmt, "audit", audit_log.export_columns(), rows)
