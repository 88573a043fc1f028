"""The sessions online: the list with its filters, keyset pages and export, and per session the Disconnect and CoA
(re-send the policy) buttons, whose requests are queued for the worker (``network.tasks.send_coa``) and whose
outcome the page follows (``coa_status``) until the NAS answers or the retries give up."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from abonent.billing.models import Subscription, SubscriptionStatus
from abonent.core.listing import Column, export_response, keyset_page
from abonent.staff.permissions import Perm, has_perm, require_perm, scope_to_branches

from .. import actions, selectors
from ..forms import SessionFilterForm
from ..models import CoaKind, CoaRequest, Session

SESSIONS_PER_PAGE = 50
# The page counts the sessions matching its filters up to this many: an exact count of hundreds of thousands
# would cost more than the page.
COUNT_CAP = 10_000
# Newest first by id: the id grows with the first record of a session, and the primary key walks the newest
# (mostly open) sessions first, where an order by start would sort every open session for each page.
ORDERING = ("-id",)


def capped_count(qs: QuerySet, cap: int = COUNT_CAP) -> int:
    """How many rows ``qs`` has, counting at most ``cap + 1`` (more than ``cap``: ``cap + 1``)."""
    return qs.order_by()[: cap + 1].count()


def _filtered(request) -> tuple[SessionFilterForm, QuerySet[Session]]:
    form = SessionFilterForm(request.GET or None)
    sessions = selectors.open_sessions(visible_to=request.user).select_related("subscriber")
    if not form.is_bound:
        return form, sessions
    if not form.is_valid():
        return form, sessions.none()
    data = form.cleaned_data
    if data["nas"] is not None:
        sessions = sessions.filter(nas=data["nas"])
    if data["login"]:
        sessions = sessions.filter(username=data["login"].strip())
    if data["ip"]:
        sessions = sessions.filter(framed_ip=data["ip"])
    if data["plan"] is not None:
        on_plan = Subscription.objects.filter(subscriber_id=OuterRef("subscriber_id"), plan=data["plan"]).exclude(
            status=SubscriptionStatus.TERMINATED
        )
        sessions = sessions.filter(Exists(on_plan))
    return form, sessions


def _query_string(request, *drop: str) -> str:
    params = request.GET.copy()
    for name in ("cursor", "format", *drop):
        params.pop(name, None)
    return params.urlencode()


def latest_requests(session_ids: list[int]) -> dict[int, CoaRequest]:
    """The newest CoA/Disconnect request of each of these sessions (one query over the page's sessions)."""
    latest: dict[int, CoaRequest] = {}
    for request in CoaRequest.objects.filter(session_id__in=session_ids).order_by("session_id", "-created_at", "-id"):
        latest.setdefault(request.session_id, request)
    return latest


@require_perm(Perm.NETWORK_VIEW)
def session_list(request):
    form, sessions = _filtered(request)
    page = keyset_page(sessions, ordering=ORDERING, cursor=request.GET.get("cursor"), size=SESSIONS_PER_PAGE)
    latest = latest_requests([s.pk for s in page.rows])
    return render(
        request,
        "network/session_list.html",
        {
            "form": form,
            "page": page,
            "rows": [(s, latest.get(s.pk)) for s in page.rows],
            "count": capped_count(sessions),
            "count_cap": COUNT_CAP,
            "query_string": _query_string(request),
            "export_url": reverse("network:sessions_export"),
            "can_manage": has_perm(request.user, Perm.NETWORK_MANAGE),
        },
        status=422 if form.errors else 200,
    )


SESSION_COLUMNS = [
    Column(gettext_lazy("Login"), lambda s: s.username),
    Column(gettext_lazy("Account"), lambda s: s.subscriber.account_number if s.subscriber else None),
    Column(gettext_lazy("IP address"), lambda s: s.framed_ip),
    Column(gettext_lazy("MAC / caller"), lambda s: s.calling_station_id),
    Column(gettext_lazy("NAS"), lambda s: s.nas.name),
    Column(gettext_lazy("NAS port"), lambda s: s.nas_port_id),
    Column(gettext_lazy("Started"), lambda s: s.started_at),
    Column(gettext_lazy("Last update"), lambda s: s.updated_at),
    Column(gettext_lazy("Download, bytes"), lambda s: s.output_octets, "#,##0"),
    Column(gettext_lazy("Upload, bytes"), lambda s: s.input_octets, "#,##0"),
]
SUBSCRIBER_NAME = Column(gettext_lazy("Subscriber"), lambda s: s.subscriber.display_name if s.subscriber else None)


@require_perm(Perm.NETWORK_VIEW)
def session_export(request):
    form, sessions = _filtered(request)
    if form.errors:
        text = " ".join(str(e) for errors in form.errors.values() for e in errors)
        return HttpResponse(text, status=422, content_type="text/plain; charset=utf-8")
    rows = sessions.order_by(*ORDERING).iterator(chunk_size=2000)
    columns = list(SESSION_COLUMNS)
    if has_perm(request.user, Perm.SUBSCRIBER_EXPORT):
        # Names of many people at once are personal data (152-FZ): only for those who may export the subscribers.
        columns.insert(2, SUBSCRIBER_NAME)
    return export_response(request.GET.get("format", ""), "sessions-online", columns, rows)


# --- Disconnect and CoA ------------------------------------------------------------------------------------------


def _visible_session(request, pk: int) -> Session:
    """A session (open or not) the user may see, else 404: of a subscriber in their branches, or of none for a user
    without a branch limit (``selectors.open_sessions``' rule)."""
    sessions = scope_to_branches(
        Session.objects.select_related("nas", "subscriber"), request.user, "subscriber__branch"
    )
    return get_object_or_404(sessions, pk=pk)


def queued_message(request_kind: str, session: Session) -> str:
    """What was done, truthfully: queued for the worker, not sent; the outcome shows when the NAS answers."""
    values = {"login": session.username, "nas": session.nas.name}
    if request_kind == CoaKind.DISCONNECT:
        return _("Disconnect of %(login)s queued for %(nas)s: it is sent within a minute, the result shows here.") % (
            values
        )
    return _("CoA for %(login)s queued for %(nas)s: it is sent within a minute, the result shows here.") % values


def _answer(request, session: Session, *, coa: CoaRequest | None = None, notice: str = "", error: str = ""):
    """For htmx, the session's outcome cell (422 with the reason when refused); otherwise back to the list."""
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, notice)
        target = request.POST.get("next") or ""
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse("network:sessions")
        return redirect(target)
    html = render_to_string(
        "network/_coa_outcome.html",
        {"session": session, "coa": coa, "notice": notice, "error": error},
        request=request,
    )
    return HttpResponse(html, status=422 if error else 200)


@require_POST
@require_perm(Perm.NETWORK_MANAGE)
def session_disconnect(request, pk):
    session = _visible_session(request, pk)
    try:
        coa = actions.do_disconnect_session(
            session, acting_user=request.user, reason=request.POST.get("reason", "")[:500]
        )
    except ValidationError as exc:
        return _answer(request, session, error=" ".join(exc.messages))
    return _answer(request, session, coa=coa, notice=queued_message(coa.kind, session))


@require_POST
@require_perm(Perm.NETWORK_MANAGE)
def session_coa(request, pk):
    session = _visible_session(request, pk)
    try:
        queued = actions.do_reapply_session_policy(
            session, acting_user=request.user, reason=request.POST.get("reason", "")[:500]
        )
    except ValidationError as exc:
        return _answer(request, session, error=" ".join(exc.messages))
    coa = queued[0]
    return _answer(request, session, coa=coa, notice=queued_message(coa.kind, session))


@require_perm(Perm.NETWORK_VIEW)
def coa_status(request, pk):
    """One CoA/Disconnect request's state, for a page following it: polled while it waits, still once it ended."""
    requests = scope_to_branches(CoaRequest.objects.select_related("nas"), request.user, "subscriber__branch")
    coa = get_object_or_404(requests, pk=pk)
    return HttpResponse(render_to_string("network/_coa_status.html", {"coa": coa}, request=request))
