"""Reads of the login area: the security page's list of sessions, the staff panel's summary, where a ``next``
may send a subscriber after signing in."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.utils.translation import gettext as _

from abonent.core import clock
from abonent.subscribers.models import ContactKind, ContactPoint, Subscriber

from .models import OneTimeCode, PortalSession, SessionKind
from .sessions import live_sessions

HOME = "/my/"
# Pages a "next" must not lead back to: after signing in, the login pages would only confuse.
_NOT_AFTER_LOGIN = ("/my/login", "/my/logout")


def safe_next(value: str | None) -> str:
    """``value`` when it is a path of this portal (``/my/…``), else the portal's home: a link that signs someone
    in must not send them to another site (``next=https://evil``, ``//evil``, ``/\\evil``) or out of the portal."""
    value = (value or "").strip()
    if not value.startswith(HOME) or len(value) > 2000:
        return HOME
    if "\\" in value or ".." in value or "%2e" in value.lower() or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or value.startswith(_NOT_AFTER_LOGIN):
        return HOME
    return value


# --- the sessions of the security page --------------------------------------------------------------------------

_BROWSERS = [
    ("YaBrowser", "Yandex Browser"),
    ("Edg", "Edge"),
    ("OPR", "Opera"),
    ("Firefox", "Firefox"),
    ("Chrome", "Chrome"),
    ("Safari", "Safari"),
]
_SYSTEMS = [
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
]


def device_of(user_agent: str, kind: str) -> str:
    """A person's name for a device from its User-Agent: "Chrome, Android"; the app's tokens say so."""
    browser = next((name for mark, name in _BROWSERS if re.search(rf"\b{re.escape(mark)}/", user_agent)), "")
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), "")
    if kind == SessionKind.API:
        return _("App") + (f", {system}" if system else "")
    shown = ", ".join(part for part in (browser, system) if part)
    return shown or _("Unknown browser")


@dataclass(frozen=True)
class SessionRow:
    session: PortalSession
    device: str
    current: bool


def session_rows(subscriber_id: int, current: PortalSession | None) -> list[SessionRow]:
    """The subscriber's live sessions, newest first, the one making the request marked."""
    current_pk = current.pk if current is not None else None
    return [SessionRow(s, device_of(s.user_agent, s.kind), s.pk == current_pk) for s in live_sessions(subscriber_id)]


# --- the staff panel ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalSummary:
    has_password: bool
    password_changed_at: object
    last_login_at: object
    live_sessions: int
    last_code_at: object
    has_phone: bool


def _live_filter(now) -> Q:
    """Sessions that still work (``sessions.live_sessions`` in SQL): not revoked, before their end, not idle."""
    web_idle = dt.timedelta(seconds=settings.ABONENT_PORTAL_SESSION_IDLE_SECONDS)
    api_idle = dt.timedelta(seconds=settings.ABONENT_PORTAL_TOKEN_IDLE_SECONDS)
    return Q(revoked_at__isnull=True, expires_at__gt=now) & (
        Q(kind=SessionKind.WEB, last_seen_at__gt=now - web_idle)
        | Q(kind=SessionKind.API, last_seen_at__gt=now - api_idle)
    )


def portal_summary(subscriber_id: int) -> PortalSummary:
    """What the subscriber card's "Portal" panel shows, in one query (the card's count is pinned)."""
    now = clock.now()
    live = (
        PortalSession.objects.filter(_live_filter(now), subscriber_id=OuterRef("pk"))
        .order_by()
        .values("subscriber_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    last_code = OneTimeCode.objects.filter(subscriber_id=OuterRef("pk")).order_by("-created_at").values("created_at")
    phone = ContactPoint.objects.filter(subscriber_id=OuterRef("pk"), kind=ContactKind.PHONE)
    row = (
        Subscriber.objects.filter(pk=subscriber_id)
        .annotate(live=Subquery(live[:1]), last_code=Subquery(last_code[:1]), has_phone=Exists(phone))
        .values(
            "portal__password", "portal__password_changed_at", "portal__last_login_at", "live", "last_code", "has_phone"
        )
        .first()
    ) or {}
    return PortalSummary(
        has_password=bool(row.get("portal__password")),
        password_changed_at=row.get("portal__password_changed_at"),
        last_login_at=row.get("portal__last_login_at"),
        live_sessions=row.get("live") or 0,
        last_code_at=row.get("last_code"),
        has_phone=bool(row.get("has_phone")),
    )
