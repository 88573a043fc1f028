"""The finance pages: receivables ageing, billing runs with what they parked, the ledger's verification; and the
business reports, one generic page and export for every report registered in ``pages.py``. Thin: parse, check
access, call a selector (or queue the verification), render."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from abonent.billing.runs import selectors as runs
from abonent.billing.runs.models import LedgerVerification
from abonent.billing.runs.verification import do_request_ledger_verification
from abonent.core import clock
from abonent.core.listing import MONEY_FORMAT, Column, Sorting, export_response, keyset_page, query_without
from abonent.core.money import format_money
from abonent.dunning.models import AccessStateKind
from abonent.staff.permissions import Perm, check_perm, has_perm, require_perm

from . import receivables
from .forms import ReceivablesFilterForm
from .pages import DAY, ReportFilterForm, get_report, reports_for
from .results import outcome

# --- receivables ------------------------------------------------------------------------------------------


def _receivables(request):
    form = ReceivablesFilterForm(request.GET or None, user=request.user)
    data = form.cleaned_data if form.is_valid() else {}
    today = clock.today()
    sort, order = receivables.SORTING.choose(request.GET.get("sort"))
    qs = receivables.filtered(
        receivables.debtors(request.user, today=today),
        bucket=data.get("bucket") or "",
        branch_id=data["branch"].pk if data.get("branch") else None,
        query=data.get("q") or "",
        today=today,
    ).select_related("subscriber__branch")
    return form, today, sort, order, qs


def _debtor_row(account, today):
    """What a row shows beside the account: days in debt, the bucket, the access state's label."""
    account.days_in_debt = max((today - account.debt_since).days, 0)
    account.bucket = receivables.bucket_of(account.debt_since, today)
    # A debt older than the ledger walk's window has no day of its own (dunning's episode start aside).
    account.since_known = account.debt_since != receivables.before_window(today)
    account.access_label = AccessStateKind(account.access_state).label if account.access_state else ""
    return account


@require_perm(Perm.FINANCE_VIEW)
def receivables_page(request):
    form, today, sort, order, qs = _receivables(request)
    with receivables.without_jit():
        page = keyset_page(qs, ordering=order, cursor=request.GET.get("cursor"))
    for account in page:
        _debtor_row(account, today)
    context = {
        "form": form,
        "ageing": receivables.ageing(request.user, today=today),
        "page": page,
        "sort": sort,
        "query_string": query_without(request.GET, "cursor", "format"),
        "sort_query": query_without(request.GET, "cursor", "format", "sort"),
        "window_days": receivables.WINDOW_DAYS,
    }
    return render(request, "reports/receivables.html", context)


def _since_cell(account):
    return account.debt_since if account.since_known else None


RECEIVABLES_COLUMNS = [
    Column(gettext_lazy("Account"), lambda a: a.subscriber.account_number),
    Column(gettext_lazy("Subscriber"), lambda a: a.subscriber.display_name),
    Column(gettext_lazy("Branch"), lambda a: a.subscriber.branch.name),
    Column(gettext_lazy("Debt"), lambda a: -a.balance, MONEY_FORMAT),
    Column(gettext_lazy("In debt since"), _since_cell),
    Column(gettext_lazy("Days in debt"), lambda a: a.days_in_debt),
    Column(gettext_lazy("In debt for"), lambda a: str(a.bucket.label)),
    Column(gettext_lazy("Access"), lambda a: str(a.access_label)),
]


@require_perm(Perm.FINANCE_VIEW)
def receivables_export(request):
    _form, today, _sort, order, qs = _receivables(request)
    rows = (_debtor_row(account, today) for account in qs.order_by(*order).iterator(chunk_size=2000))
    return export_response(request.GET.get("format", ""), "receivables", RECEIVABLES_COLUMNS, rows)


# --- billing runs -----------------------------------------------------------------------------------------

RUN_SORTING = Sorting({"started": ("started_at", "id")}, default="-started")
RUN_COLUMNS = [
    Column(gettext_lazy("Started"), lambda r: r.started_at),
    Column(gettext_lazy("Finished"), lambda r: r.finished_at),
    Column(gettext_lazy("Day billed"), lambda r: r.as_of),
    Column(gettext_lazy("Status"), lambda r: r.get_shown_status_display()),
    Column(gettext_lazy("Subscriptions"), lambda r: r.subscriptions),
    Column(gettext_lazy("Charges"), lambda r: r.charges),
    Column(gettext_lazy("Charged"), lambda r: r.amount, MONEY_FORMAT),
    Column(gettext_lazy("Parked"), lambda r: r.parked),
    Column(gettext_lazy("Days not charged (offline)"), lambda r: r.unbilled),
    Column(gettext_lazy("Duration, s"), lambda r: r.seconds),
    Column(gettext_lazy("Error"), lambda r: r.error),
]


@require_perm(Perm.FINANCE_VIEW)
def billing_runs(request):
    sort, order = RUN_SORTING.choose(request.GET.get("sort"))
    page = keyset_page(runs.run_records(), ordering=order, cursor=request.GET.get("cursor"))
    context = {
        "page": page,
        "sort": sort,
        "query_string": query_without(request.GET, "cursor", "format"),
        "sort_query": query_without(request.GET, "cursor", "format", "sort"),
    }
    return render(request, "reports/billing_runs.html", context)


@require_perm(Perm.FINANCE_VIEW)
def billing_runs_export(request):
    _sort, order = RUN_SORTING.choose(request.GET.get("sort"))
    rows = runs.run_records().order_by(*order).iterator(chunk_size=2000)
    return export_response(request.GET.get("format", ""), "billing-runs", RUN_COLUMNS, rows)


@require_perm(Perm.FINANCE_VIEW)
def billing_run(request, pk: int):
    record = runs.get_run_record(pk)
    page = keyset_page(
        runs.parked_of(record, request.user), ordering=("subscription_id", "id"), cursor=request.GET.get("cursor")
    )
    context = {
        "record": record,
        "reasons": runs.parked_reasons(record),
        "page": page,
        "query_string": "",
    }
    return render(request, "reports/billing_run.html", context)


# --- the ledger's verification ----------------------------------------------------------------------------


@require_perm(Perm.FINANCE_VIEW)
def ledger(request):
    page = keyset_page(runs.verifications(), ordering=("-created_at", "-id"), cursor=request.GET.get("cursor"))
    context = {
        "latest": runs.latest_verification(),
        "pending": runs.pending_verification(),
        "page": page,
        "query_string": "",
        "can_verify": has_perm(request.user, Perm.LEDGER_VERIFY),
        "Status": LedgerVerification.Status,
    }
    return render(request, "reports/ledger.html", context)


@require_POST
@require_perm(Perm.LEDGER_VERIFY)
def ledger_verify(request):
    _row, created = do_request_ledger_verification(acting_user=request.user)
    if created:
        messages.success(request, _("The verification is queued: the worker runs it in a moment."))
    else:
        messages.info(request, _("A verification is queued or running already."))
    return redirect("reports:ledger")


# --- the business reports -----------------------------------------------------------------------------------


def _report_request(request, slug: str):
    """The report, its filters form and, when the filters are valid, what the page shows."""
    report = get_report(slug)
    check_perm(request.user, report.permission)
    params = request.GET.copy()
    for name in ("format", "cursor"):
        params.pop(name, None)
    form = ReportFilterForm(params or None, user=request.user, report=report)
    if form.is_bound and not form.is_valid():
        return report, form, None, None
    query = form.query()
    return report, form, query, outcome(report, query, user=request.user)


def _text(column, value, group_by: str) -> str:
    if value is None:
        return "—"
    if column.number_format == MONEY_FORMAT:
        return format_money(value)
    if isinstance(value, dt.date):
        return date_format(value, "SHORT_DATE_FORMAT" if group_by == DAY else "YEAR_MONTH_FORMAT")
    if isinstance(value, int):
        return number_format(value, force_grouping=True)
    return str(value)


def _cell(column, value, group_by: str) -> dict:
    """A table cell: its text in the operator's formats, numbers to the right."""
    return {"text": _text(column, value, group_by), "end": isinstance(value, int | Decimal)}


@login_required
def report_page(request, slug: str):
    report, form, query, result = _report_request(request, slug)
    group_by = query.group_by if query else DAY
    rows = result.rows if result else []
    totals = report.totals(rows) if rows else None
    context = {
        "report": report,
        "reports": reports_for(request.user),
        "tab": report.slug,
        "form": form,
        "query": query,
        "result": result,
        "table": [[_cell(c, c.value(row), group_by) for c in report.columns] for row in rows],
        "totals": [_cell(c, c.value(totals), group_by) for c in report.columns] if totals else None,
        "chart": report.chart(rows, query) if rows else None,
        "query_string": query_without(request.GET, "cursor", "format"),
    }
    return render(request, "reports/report.html", context, status=200 if query else 400)


@login_required
def report_export(request, slug: str):
    report, _form, query, result = _report_request(request, slug)
    if query is None:
        return HttpResponseBadRequest(
            _("The filters are not valid: open the report to see why."), content_type="text/plain"
        )
    if result.computed_at is None and report.in_worker:
        # No result yet: an empty file would read as "nothing in this period". Say so, and where to look.
        response = render(
            request,
            "reports/not_computed.html",
            {"report": report, "result": result, "page_query": query_without(request.GET, "cursor", "format")},
            status=429 if result.refused else 409,
        )
        response["Retry-After"] = "60"
        return response
    rows = list(result.rows)
    totals = report.totals(rows) if rows else None
    name = f"{report.slug}-{query.start.isoformat()}-{(query.end - dt.timedelta(days=1)).isoformat()}"
    return export_response(request.GET.get("format", ""), name, report.columns, rows + ([totals] if totals else []))
