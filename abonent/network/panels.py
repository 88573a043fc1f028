"""The "Network" panel of the subscriber card: logins, the last sessions (with a Disconnect button for the
open ones), the last authentication attempts that were not plain accepts ("why can't this subscriber
connect?") and the CoA / Disconnect requests sent to the NAS.

Five queries whatever the history's length: each list is capped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from abonent.staff.permissions import Perm, has_perm
from abonent.subscribers.extensions import HeaderItem, register_header_item
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from . import selectors
from .forms import LoginForm, LoginPasswordForm
from .models import Login, Session, SessionStatus
from .policy import PASSWORD_KINDS

SESSIONS = 10
AUTH_ATTEMPTS = 10
COA_REQUESTS = 10


def format_duration(seconds: int) -> str:
    """``3725`` → ``1:02:05``; a day or more → ``2 d 1:02:05``."""
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    if days:
        return _("%(days)d d %(time)s") % {"days": days, "time": clock}
    return clock


@dataclass(frozen=True)
class SessionRow:
    session: Session
    online: bool
    duration: str


def _session_row(session: Session, now: dt.datetime) -> SessionRow:
    online = session.status == SessionStatus.OPEN
    # session_time is what the NAS reported at the last interim or the stop; an open session has run until now.
    seconds = session.session_time
    if online:
        seconds = max(seconds, int((now - session.started_at).total_seconds()))
    return SessionRow(session, online, format_duration(seconds))


def last_sessions(subscriber) -> list[Session]:
    """The newest ``SESSIONS`` sessions, read once per request: the panel lists them, the header says online."""
    sessions = getattr(subscriber, "_network_sessions", None)
    if sessions is None:
        sessions = subscriber._network_sessions = selectors.sessions_of(subscriber.pk, limit=SESSIONS)
    return sessions


def online_sessions(subscriber) -> list[Session]:
    """The open sessions, newest first (a second device keeps an older one open): one query, the same whatever the
    subscriber's history (a page of the newest sessions would miss an open one behind ten closed ones)."""
    return list(
        Session.objects.filter(subscriber_id=subscriber.pk, status=SessionStatus.OPEN)
        .select_related("nas")
        .order_by("-started_at")[:SESSIONS]
    )


def render_header(request, subscriber) -> SafeString:
    """The card header's part: online since when and where, or when last seen."""
    online = online_sessions(subscriber)
    sessions = last_sessions(subscriber)  # the panel's (read once for both)
    context = {"online": online, "last": None if online or not sessions else sessions[0]}
    return render_to_string("network/_header.html", context, request=request)


@dataclass(frozen=True)
class LoginRow:
    login: Login
    password_form: LoginPasswordForm | None  # for a PPPoE or hotspot login, to those who manage the network


def network_context(
    request,
    subscriber,
    form=None,
    notice: str = "",
    error: str = "",
    bound: dict | None = None,
    new_password: dict | None = None,
) -> dict:
    """``bound``: a password form that failed, by login id; ``new_password``: the login and the password just
    set, shown this once."""
    now = timezone.now()
    can_manage = has_perm(request.user, Perm.NETWORK_MANAGE)
    logins = [
        LoginRow(
            login,
            ((bound or {}).get(login.pk) or LoginPasswordForm(auto_id=f"password-{login.pk}-%s"))
            if can_manage and login.kind in PASSWORD_KINDS
            else None,
        )
        for login in selectors.logins_of(subscriber.pk)
    ]
    return {
        "logins": logins,
        "new_password": new_password,
        "sessions": [_session_row(s, now) for s in last_sessions(subscriber)],
        "attempts": selectors.auth_attempts_of(subscriber.pk, limit=AUTH_ATTEMPTS),
        "coa_requests": selectors.coa_requests_of(subscriber.pk, limit=COA_REQUESTS),
        "can_write": can_manage,
        "form": (form or LoginForm(auto_id="login-%s")) if can_manage else None,
        "notice": notice,
        "error": error,
    }


PANEL = register_panel(
    Panel("network", gettext_lazy("Network"), "network/panels/network.html", 8, network_context, Perm.NETWORK_VIEW)
)


register_header_item(HeaderItem("network", 30, render_header, Perm.NETWORK_VIEW))


def render_network_panel(
    request, subscriber, *, form=None, notice: str = "", error: str = "", bound=None, new_password=None
) -> SafeString:
    context = network_context(
        request, subscriber, form=form, notice=notice, error=error, bound=bound, new_password=new_password
    )
    html = render_to_string(PANEL.template, {"subscriber": subscriber, "panel": PANEL, **context}, request=request)
    return mark_safe(html)  # noqa: S308 — rendered by the template engine, escaped there


register_action_labels(
    {
        "network.login_created": gettext_lazy("Network login added"),
        "network.login_updated": gettext_lazy("Network login changed"),
        "network.login_password_reset": gettext_lazy("Network login password reset"),
        "network.login_disabled": gettext_lazy("Network login disabled"),
        "network.login_enabled": gettext_lazy("Network login enabled"),
        "network.session_disconnect": gettext_lazy("Session disconnected by staff"),
        "network.nas_created": gettext_lazy("NAS added"),
        "network.nas_updated": gettext_lazy("NAS changed"),
        "network.pool_created": gettext_lazy("IP pool added"),
        "network.usage_records_added": gettext_lazy("Traffic records added"),
    },
    fields={
        "username": gettext_lazy("login"),
        "static_ip": gettext_lazy("static IP address"),
        "pool_id": gettext_lazy("address pool"),
        "password_changed": gettext_lazy("password changed"),
        "coa_request": gettext_lazy("CoA request"),
        "coa_requests": gettext_lazy("CoA requests"),
        "generated": gettext_lazy("generated"),
    },
)
