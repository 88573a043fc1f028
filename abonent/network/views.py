"""Staff console pages of the network: NAS, sessions online, IP pools; and the forms of the subscriber card's
network panel (add a login, disconnect a session). Thin: parse, check access, call an action or selector,
render. NETWORK_VIEW sees, NETWORK_MANAGE changes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from abonent.core.forms import apply_action_errors
from abonent.staff.permissions import Perm, has_perm, require_perm
from abonent.subscribers.selectors import get_subscriber

from . import actions, selectors
from .forms import IpPoolForm, LoginActiveForm, LoginForm, LoginPasswordForm, NasForm, SessionFilterForm
from .models import IpPool, Login, Nas, RejectReason, Session
from .panels import render_network_panel
from .policy import PASSWORD_KINDS

SESSIONS_PER_PAGE = 50


# --- NAS ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NasRow:
    """A NAS as the list shows it, with the RADIUS processes' counters for it summed."""

    nas: Nas
    online: int
    last_packet_at: dt.datetime | None
    accepts: int
    restricted: int
    rejects: list[tuple[str, int]]  # (reason label, count), most first
    rejects_total: int
    drops: list[tuple[str, int]]  # (counter suffix, count): malformed, bad_authenticator…
    drops_total: int


def _nas_rows() -> list[NasRow]:
    totals = selectors.radius_totals()
    labels = dict(RejectReason.choices)
    rows = []
    for item in selectors.nas_overview():
        nas = item["nas"]
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
                online=item["online"],
                last_packet_at=dt.datetime.fromtimestamp(seen, tz=dt.UTC) if seen else None,
                accepts=counters.get("accepts", 0),
                restricted=counters.get("accepts_restricted", 0),
                rejects=rejects,
                rejects_total=sum(n for _label, n in rejects),
                drops=drops,
                drops_total=sum(n for _name, n in drops),
            )
        )
    return rows


@require_perm(Perm.NETWORK_VIEW)
def nas_list(request):
    rows = _nas_rows()
    return render(
        request,
        "network/nas_list.html",
        {
            "rows": rows,
            "without_message_authenticator": [r.nas for r in rows if not r.nas.require_message_authenticator],
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
            return redirect("network:nas_list")
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
            return redirect("network:nas_list")
    # The warning follows what is stored (do_update_nas changes its own copy), not what a failed form says.
    unprotected = [] if nas.require_message_authenticator else [nas.name]
    context = {"form": form, "nas": nas, "without_message_authenticator": unprotected}
    return render(request, "network/nas_form.html", context, status=422 if form.errors else 200)


# --- sessions online ----------------------------------------------------------------------------------------


@require_perm(Perm.NETWORK_VIEW)
def session_list(request):
    form = SessionFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    sessions = selectors.open_sessions(nas=data.get("nas"), visible_to=request.user).select_related("subscriber")
    page = Paginator(sessions, SESSIONS_PER_PAGE).get_page(data.get("page") or 1)
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "network/session_list.html",
        {"form": form, "page": page, "query_string": params.urlencode(), "now": timezone.now()},
    )


# --- IP pools -----------------------------------------------------------------------------------------------


@require_perm(Perm.NETWORK_VIEW)
def pool_list(request):
    return render(
        request,
        "network/pool_list.html",
        {"pools": IpPool.objects.order_by("name"), "can_manage": has_perm(request.user, Perm.NETWORK_MANAGE)},
    )


@require_perm(Perm.NETWORK_MANAGE)
def pool_create(request):
    form = IpPoolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            pool = actions.do_create_ip_pool(acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            messages.success(request, _("Pool %(name)s added.") % {"name": pool.name})
            return redirect("network:pool_list")
    return render(request, "network/pool_form.html", {"form": form}, status=422 if form.errors else 200)


# --- the subscriber card's network panel ---------------------------------------------------------------------


def _panel_response(request, subscriber, *, form=None, notice: str = "", error: str = ""):
    """The re-rendered panel (422 when the action refused); without HTMX, back to the card with a message."""
    failed = bool(error) or (form is not None and bool(form.errors))
    if not request.htmx:
        if failed:
            text = error or " ".join(str(e) for errors in form.errors.values() for e in errors)
            messages.error(request, text)
        elif notice:
            messages.success(request, notice)
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-network")
    html = render_network_panel(request, subscriber, form=form if failed else None, notice=notice, error=error)
    return HttpResponse(html, status=422 if failed else 200)


@require_POST
@require_perm(Perm.NETWORK_MANAGE)
def login_add(request, pk):
    subscriber = get_subscriber(request.user, pk)
    form = LoginForm(request.POST, auto_id="login-%s")
    notice = ""
    if form.is_valid():
        try:
            login = actions.do_create_login(subscriber, acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            notice = _("Login %(login)s added.") % {"login": login.username}
    return _panel_response(request, subscriber, form=form, notice=notice)


def _login_of(subscriber, login_pk: int) -> Login:
    return get_object_or_404(Login.objects.select_related("pool"), pk=login_pk, subscriber_id=subscriber.pk)


@require_POST
@require_perm(Perm.NETWORK_MANAGE)
def login_password(request, pk, login_pk):
    """Reset a login's password (typed, or generated); the panel shows it once, the audit row never does."""
    subscriber = get_subscriber(request.user, pk)
    login = _login_of(subscriber, login_pk)
    form = LoginPasswordForm(request.POST, auto_id=f"password-{login.pk}-%s")
    if login.kind not in PASSWORD_KINDS:  # the panel offers no form for it: say why above the logins
        message = _("Only a PPPoE or hotspot login has a password: IPoE logins are the device's address.")
        return _panel_response(request, subscriber, error=message)
    if form.is_valid():
        try:
            login, password = actions.do_reset_login_password(login, acting_user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_action_errors(form, exc)
        else:
            shown = {"login": login, "password": password}
            if not request.htmx:  # a page of its own: the password is never put in a message (a cookie)
                return render(request, "network/password_shown.html", {"subscriber": subscriber, **shown})
            html = render_network_panel(request, subscriber, new_password=shown)
            return HttpResponse(html)
    if not request.htmx:
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect(reverse("subscribers:card", args=[subscriber.pk]) + "#panel-network")
    return HttpResponse(render_network_panel(request, subscriber, bound={login.pk: form}), status=422)


@require_POST
@require_perm(Perm.NETWORK_MANAGE)
def login_active(request, pk, login_pk):
    """Disable a login (its sessions are disconnected, RADIUS rejects it) or enable it again."""
    subscriber = get_subscriber(request.user, pk)
    login = _login_of(subscriber, login_pk)
    form = LoginActiveForm(request.POST)
    if not form.is_valid():
        return _panel_response(request, subscriber, error=" ".join(e for errs in form.errors.values() for e in errs))
    login = actions.do_set_login_active(
        login, active=form.cleaned_data["active"], acting_user=request.user, reason=form.cleaned_data["reason"]
    )
    if login.is_active:
        notice = _("Login %(login)s enabled.") % {"login": login.username}
    else:
        notice = _("Login %(login)s disabled: RADIUS rejects it, its sessions are disconnected.") % {
            "login": login.username
        }
    return _panel_response(request, subscriber, notice=notice)


@require_POST
@require_perm(Perm.NETWORK_MANAGE)
def session_disconnect(request, pk, session_pk):
    subscriber = get_subscriber(request.user, pk)
    session = get_object_or_404(Session.objects.select_related("nas"), pk=session_pk, subscriber_id=subscriber.pk)
    try:
        actions.do_disconnect_session(session, acting_user=request.user, reason=request.POST.get("reason", "")[:500])
    except ValidationError as exc:
        return _panel_response(request, subscriber, error=" ".join(exc.messages))
    notice = _("Disconnect of %(login)s sent to %(nas)s.") % {"login": session.username, "nas": session.nas.name}
    return _panel_response(request, subscriber, notice=notice)
