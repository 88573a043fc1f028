"""Portal sessions: a browser's cookie and an app's bearer token are both a ``PortalSession`` whose secret only
the client holds (the table keeps its SHA-256). One lookup per request finds the session and its subscriber."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from abonent.core import audit, clock
from abonent.core.middleware import client_ip

from .models import PortalAccount, PortalSession, SessionKind

COOKIE = "abonent_my"
TOKEN_PREFIX = "abm_"  # noqa: S105 - a label, not a secret
# A session's last_seen_at is written at most this often: a page view should not cost an UPDATE.
TOUCH_EVERY = dt.timedelta(minutes=5)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _lifetimes(kind: str) -> tuple[dt.timedelta, dt.timedelta]:
    """(idle, absolute) of a session of ``kind``."""
    if kind == SessionKind.API:
        return (
            dt.timedelta(seconds=settings.ABONENT_PORTAL_TOKEN_IDLE_SECONDS),
            dt.timedelta(seconds=settings.ABONENT_PORTAL_TOKEN_SECONDS),
        )
    return (
        dt.timedelta(seconds=settings.ABONENT_PORTAL_SESSION_IDLE_SECONDS),
        dt.timedelta(seconds=settings.ABONENT_PORTAL_SESSION_SECONDS),
    )


def stored_ip(request) -> str | None:
    """The client's address as the column can hold it: a malformed one (a misconfigured proxy) is None, not a 500."""
    raw = (client_ip(request) or "") if request is not None else ""
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return None


def open_session(subscriber, *, kind: str = SessionKind.WEB, request=None) -> tuple[PortalSession, str]:
    """A new session of ``subscriber`` and its secret (to put in the cookie, or to hand out as the token once)."""
    secret = (TOKEN_PREFIX if kind == SessionKind.API else "") + secrets.token_urlsafe(32)
    now = clock.now()
    session = PortalSession.objects.create(
        subscriber=subscriber,
        kind=kind,
        key_hash=hash_secret(secret),
        created_at=now,
        last_seen_at=now,
        expires_at=now + _lifetimes(kind)[1],
        ip_address=stored_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request is not None else "")[:200],
    )
    return session, secret


def find_session(secret: str, *, kind: str) -> PortalSession | None:
    """The live session of ``secret`` with its subscriber (and branch) loaded, or None: unknown, revoked, idle
    too long or past its end. Touches ``last_seen_at`` at most every ``TOUCH_EVERY``."""
    if not secret or len(secret) > 200:
        return None
    session = (
        PortalSession.objects.filter(key_hash=hash_secret(secret), kind=kind, revoked_at__isnull=True)
        .select_related("subscriber__branch")
        .first()
    )
    if session is None:
        return None
    now = clock.now()
    idle = _lifetimes(kind)[0]
    if now >= session.expires_at or now - session.last_seen_at >= idle:
        return None
    if now - session.last_seen_at >= TOUCH_EVERY:
        PortalSession.objects.filter(pk=session.pk).update(last_seen_at=now)
        session.last_seen_at = now
    return session


def live_sessions(subscriber_id: int) -> list[PortalSession]:
    """The subscriber's sessions that still work, newest first (the profile lists them)."""
    now = clock.now()
    rows = PortalSession.objects.filter(subscriber_id=subscriber_id, revoked_at__isnull=True, expires_at__gt=now)
    return [s for s in rows.order_by("-last_seen_at", "-id") if now - s.last_seen_at < _lifetimes(s.kind)[0]]


def revoke_session(session: PortalSession) -> None:
    PortalSession.objects.filter(pk=session.pk, revoked_at__isnull=True).update(revoked_at=clock.now())


def lock_account(subscriber_id: int) -> PortalAccount | None:
    """The subscriber's ``PortalAccount`` row, locked till the end of the transaction (None if there is none).
    What orders a session being opened against the password changing or every session ending (actions.py)."""
    return PortalAccount.objects.select_for_update().filter(subscriber_id=subscriber_id).first()


@transaction.atomic
def revoke_all(subscriber, *, reason: str, keep: PortalSession | None = None) -> int:
    """End every session of ``subscriber`` (but ``keep``): "log out everywhere", a password set or changed.
    Under the account row's lock: a login opening its session meanwhile either ends here too or opens after."""
    lock_account(subscriber.pk)
    rows = PortalSession.objects.filter(subscriber_id=subscriber.pk, revoked_at__isnull=True)
    if keep is not None:
        rows = rows.exclude(pk=keep.pk)
    count = rows.update(revoked_at=clock.now())
    audit.record(
        actor=None,
        action="portal.sessions_revoked",
        obj=subscriber,
        subscriber_id=subscriber.pk,
        after={"sessions": count},
        reason=reason,
    )
    return count


def set_cookie(response, secret: str) -> None:
    response.set_cookie(
        COOKIE,
        secret,
        max_age=settings.ABONENT_PORTAL_SESSION_SECONDS,
        path="/my/",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def clear_cookie(response) -> None:
    response.delete_cookie(COOKIE, path="/my/", samesite="Lax")


def local_now():
    return timezone.localtime(clock.now())
