"""The debtors report's page and export (``debtors.py``): parse the filters, check access, read the replica, render.
Its own page rather than a ``pages.Report``: a list of debtors is as long as the debt, so it is paged and sorted
like the receivables list (keyset), and every row opens the subscriber's card."""

from __future__ import annotations

from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.utils.translation import gettext as _

from abonent.core import clock
from abonent.core.listing import export_response, keyset_page, query_without
from abonent.staff.permissions import Perm, has_perm, require_perm

from . import debtors, receivables
from .pages import reports_for
from .replica import reading_db


def _debtors(request):
    form = debtors.DebtorsFilterForm(request.GET or None, user=request.user)
    if form.is_bound and not form.is_valid():
        return form, None, None, None, None
    data = form.cleaned_data if form.is_bound else {}
    today = clock.today()
    sort, order = debtors.SORTING.choose(request.GET.get("sort"))
    return form, today, sort, order, debtors.debtors(request.user, data, today=today, using=reading_db())


@require_perm(Perm.REPORT_VIEW)
def debtors_page(request):
    form, today, sort, order, qs = _debtors(request)
    context = {
        "form": form,
        "reports": reports_for(request.user),
        "tab": "debtors",
        "sort": sort,
        "query_string": query_without(request.GET, "cursor", "format"),
        "sort_query": query_without(request.GET, "cursor", "format", "sort"),
        "window_days": receivables.WINDOW_DAYS,
        "can_see_receivables": has_perm(request.user, Perm.FINANCE_VIEW),
        "page": None,
    }
    if qs is None:
        return render(request, "reports/debtors.html", context, status=400)
    with receivables.without_jit():
        page = keyset_page(qs, ordering=order, cursor=request.GET.get("cursor"))
    for account in page:
        debtors.decorate(account, today)
    # The chart sums the debtors the filters pick, as the table lists them: a branch, an access state or a bucket
    # chosen narrows both.
    data = form.cleaned_data if form.is_bound else {}
    chosen = debtors.matching(request.user, data, today=today).using(reading_db())
    ageing = receivables.ageing(request.user, today=today, accounts=chosen)
    largest = max((cell.debt for _bucket, cell in ageing.buckets), default=0) or 1
    context.update(
        page=page,
        ageing=ageing,
        bars=[(bucket, cell, int(cell.debt * 100 / largest)) for bucket, cell in ageing.buckets],
    )
    return render(request, "reports/debtors.html", context)


@require_perm(Perm.REPORT_VIEW)
def debtors_export(request):
    _form, today, _sort, order, qs = _debtors(request)
    if qs is None:
        return HttpResponseBadRequest(
            _("The filters are not valid: open the report to see why."), content_type="text/plain"
        )
    rows = (debtors.decorate(account, today) for account in qs.order_by(*order).iterator(chunk_size=2000))
    return export_response(request.GET.get("format", ""), "debtors", debtors.COLUMNS, rows)
