"""The dunning queue: who is warned, restricted, suspended, blocked or terminated, since when, how much they owe;
totals per state; CSV of the same filter."""

from __future__ import annotations

import csv

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.core import clock
from abonent.staff.permissions import Perm, require_perm

from .. import selectors
from ..forms import QueueFilterForm

PAGE_SIZE = 50


def _filters(request) -> tuple[QueueFilterForm, dict, selectors.QueueFilters]:
    form = QueueFilterForm(request.GET or None, user=request.user)
    data = {}
    if form.is_bound:
        form.is_valid()  # the filters that parse apply; one that does not is shown with its error and left out
        data = form.cleaned_data
    exempt = {"yes": True, "no": False}.get(data.get("exempt") or "")
    filters = selectors.QueueFilters(
        states=(data["state"],) if data.get("state") else (),
        branch_id=data["branch"].pk if data.get("branch") else None,
        exempt=exempt,
        order=data.get("order") or "owed",
    )
    return form, data, filters


@require_perm(Perm.DUNNING_VIEW)
def queue(request):
    form, data, filters = _filters(request)
    qs = selectors.queue(request.user, filters)
    totals = selectors.queue_totals(qs)
    paginator = Paginator(qs, PAGE_SIZE)
    paginator.__dict__["count"] = totals.count  # counted already, with the totals
    page = paginator.get_page(data.get("page") or 1)
    now = clock.now()
    rows = [
        (state, selectors.days_restricted(state, now), selectors.STATE_COLOURS[state.state])
        for state in page.object_list
    ]
    labels = dict(selectors.AccessStateKind.choices)
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "totals": totals,
        "total_rows": [(labels[s], s, n, owed) for s, (n, owed) in totals.by_state.items()],
        "query_string": params.urlencode(),
    }
    return render(request, "dunning/queue.html", context)


class _Echo:
    def write(self, value):
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would run as a formula is written as text (CWE-1236), as in the payments journal.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@require_perm(Perm.DUNNING_VIEW)
def queue_csv(request):
    """The filtered queue as CSV (UTF-8 with a BOM, so Excel reads Cyrillic), streamed."""
    _form, _data, filters = _filters(request)
    qs = selectors.queue(request.user, filters)
    writer = csv.writer(_Echo(), delimiter=";")
    header = [
        _("Account"),
        _("Subscriber"),
        _("Branch"),
        _("Access state"),
        _("Since"),
        _("Owed"),
        _("Days in debt"),
        _("Money lasts until"),
        _("Exempt"),
        _("Reason"),
    ]
    now = clock.now()

    def rows():
        yield "\ufeff" + writer.writerow(header)
        for state in qs.iterator(chunk_size=2000):
            subscriber = state.subscriber
            yield writer.writerow(
                [
                    _cell(value)
                    for value in (
                        subscriber.account_number,
                        subscriber.display_name,
                        subscriber.branch.name,
                        state.get_state_display(),
                        timezone.localtime(state.since).strftime("%Y-%m-%d %H:%M"),
                        state.owed,
                        selectors.days_restricted(state, now),
                        state.runout_on.isoformat() if state.runout_on else "",
                        _("yes") if state.exempt else "",
                        state.reason,
                    )
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(now).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="dunning-{stamp}.csv"'
    return response
