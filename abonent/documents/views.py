"""The documents pages of the staff console, under ``/staff/documents/``: the list with filters (keyset pages), a
document with its PDF and a correction, the month-end generation with its progress, the 1C export, and issuing one
subscriber's month from the card."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from abonent.core.deadlines import is_deadline
from abonent.core.forms import apply_action_errors
from abonent.core.listing import MONEY_FORMAT, Column, Sorting, export_response, keyset_page, query_without
from abonent.staff.permissions import Perm, allowed_branch_ids, has_perm, require_perm
from abonent.subscribers.models import Subscriber
from abonent.subscribers.selectors import get_subscriber, subscriber_by_account, visible_subscribers

from . import actions, export_1c, rendering, selectors
from .forms import CorrectForm, DocumentFilterForm, ExportForm, GenerateForm
from .models import DocumentRun


def pdf_response(data: bytes, name: str, *, inline: bool = False) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{name}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def _as_int(value: str) -> int | None:
    # ``"²".isdigit()`` is true but ``int("²")`` fails: ASCII digits only.
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


def stored_pdf_response(document, *, inline: bool = False) -> HttpResponse:
    """The stored PDF, or a page saying it is unavailable (410) when its file was lost and cannot be restored."""
    try:
        return pdf_response(rendering.read_file(document), rendering.download_name(document), inline=inline)
    except rendering.FileUnavailable:
        return HttpResponse(
            _("The document's PDF file is unavailable. Ask the administrator to restore it from a backup."),
            status=410,
            content_type="text/plain; charset=utf-8",
        )


# The list's sorts (core.listing.Sorting): the newest first by default, by document date, by total.
DOCUMENT_SORTING = Sorting({"issued": ("id",), "date": ("date", "id"), "total": ("total", "id")}, default="-issued")


def _listing(request):
    form = DocumentFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    subscriber_id = None
    account = (data.get("account") or "").strip()
    if account:
        found = subscriber_by_account(account, queryset=visible_subscribers(request.user))
        subscriber_id = found.pk if found is not None else 0
    elif (pk := _as_int(request.GET.get("subscriber", ""))) is not None:
        subscriber_id = get_subscriber(request.user, pk).pk
    filters = selectors.DocumentFilters(
        kind=data.get("kind") or "", month=data.get("month"), subscriber_id=subscriber_id
    )
    sort, order = DOCUMENT_SORTING.choose(request.GET.get("sort"))
    return form, selectors.filtered_documents(request.user, filters), sort, order


@require_perm(Perm.DOCUMENT_VIEW)
def document_list(request):
    form, qs, sort, order = _listing(request)
    page = keyset_page(qs, ordering=order, cursor=request.GET.get("cursor"), size=selectors.PAGE)
    context = {
        "form": form,
        "page": page,
        "sort": sort,
        "query_string": query_without(request.GET, "cursor", "format", "before"),
        "sort_query": query_without(request.GET, "cursor", "format", "before", "sort"),
        "can_manage": has_perm(request.user, Perm.DOCUMENT_MANAGE),
    }
    return render(request, "documents/list.html", context)


DOCUMENT_COLUMNS = [
    Column(gettext_lazy("Document"), lambda d: d.get_kind_display()),
    Column(gettext_lazy("No."), lambda d: d.number),
    Column(gettext_lazy("Date"), lambda d: d.date),
    Column(gettext_lazy("From"), lambda d: d.period_start),
    Column(gettext_lazy("Until"), lambda d: d.period_end),
    Column(gettext_lazy("Account"), lambda d: d.subscriber.account_number),
    Column(gettext_lazy("Subscriber"), lambda d: d.subscriber.display_name),
    Column(gettext_lazy("Total"), lambda d: d.total, MONEY_FORMAT),
    Column(gettext_lazy("VAT"), lambda d: d.vat_total, MONEY_FORMAT),
    Column(gettext_lazy("Status"), lambda d: d.get_status_display()),
]


@require_perm(Perm.DOCUMENT_VIEW)
def document_list_export(request):
    """The filtered list in its order as CSV or XLSX: the documents' headers (the PDFs are on their pages; the 1C
    exchange file is ``export``)."""
    _form, qs, _sort, order = _listing(request)
    rows = qs.order_by(*order).iterator(chunk_size=2000)
    return export_response(request.GET.get("format", ""), "documents", DOCUMENT_COLUMNS, rows)


def _detail(request, document, *, form=None, status=200):
    context = {
        "doc": document,
        "correction": selectors.correction_of(document),
        "can_manage": has_perm(request.user, Perm.DOCUMENT_MANAGE),
        "form": form or CorrectForm(),
    }
    return render(request, "documents/detail.html", context, status=status)


@require_perm(Perm.DOCUMENT_VIEW)
def document_detail(request, pk: int):
    return _detail(request, selectors.get_document(request.user, pk))


@require_perm(Perm.DOCUMENT_VIEW)
def document_pdf(request, pk: int):
    document = selectors.get_document(request.user, pk)
    return stored_pdf_response(document, inline="inline" in request.GET)


@require_POST
@require_perm(Perm.DOCUMENT_MANAGE)
def document_correct(request, pk: int):
    document = selectors.get_document(request.user, pk)
    form = CorrectForm(request.POST)
    if form.is_valid():
        try:
            correction = actions.do_correct_document(
                document, acting_user=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Correction No. %(number)s issued.") % {"number": correction.number})
            return redirect("documents:detail", correction.pk)
    return _detail(request, document, form=form, status=400)


@require_perm(Perm.DOCUMENT_MANAGE)
def generate(request):
    form = GenerateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run = actions.do_start_document_run(form.cleaned_data["month"], acting_user=request.user)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            return redirect("documents:run", run.pk)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "runs": _runs(request.user), "export_form": ExportForm()}
    return render(request, "documents/generate.html", context, status=status)


def _runs(user) -> list[DocumentRun]:
    # Runs cover every branch (their errors name subscribers): not shown to a branch-limited user.
    return selectors.latest_runs() if allowed_branch_ids(user) is None else []


@require_perm(Perm.DOCUMENT_MANAGE)
def run_detail(request, pk: int):
    actions.check_unlimited(request.user)
    run = get_object_or_404(DocumentRun, pk=pk)
    template = "documents/_run_progress.html" if request.headers.get("HX-Request") else "documents/run.html"
    return render(request, template, {"run": run})


@require_perm(Perm.DOCUMENT_MANAGE)
def export(request):
    form = ExportForm(request.GET)
    if not form.is_valid():
        context = {"form": GenerateForm(), "runs": _runs(request.user), "export_form": form}
        return render(request, "documents/generate.html", context, status=400)
    month = form.cleaned_data["month"]
    data, _summary = export_1c.build(month, branch_ids=allowed_branch_ids(request.user))
    response = HttpResponse(data, content_type="application/xml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export_1c.file_name(month)}"'
    return response


@require_POST
@require_perm(Perm.DOCUMENT_MANAGE)
def issue_month(request, subscriber_pk: int):
    subscriber: Subscriber = get_subscriber(request.user, subscriber_pk)
    form = GenerateForm(request.POST)
    if form.is_valid():
        try:
            issued = actions.do_issue_month_documents(subscriber, form.cleaned_data["month"], acting_user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except OperationalError as exc:
            if not is_deadline(exc):
                raise
            messages.error(
                request, _("Documents are being issued for this subscriber or series: try again in a minute.")
            )
        else:
            messages.success(
                request,
                _("Documents issued: %(new)s; already issued: %(old)s.")
                % {"new": len(issued.created), "old": len(issued.existing)},
            )
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect("subscribers:card", subscriber.pk)
