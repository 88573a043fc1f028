"""Reads of the staff app."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Q

from abonent.core import clock

from .models import ApiToken, LoginAttempt, hash_token


def login_lockout_remaining(*, username: str, ip_address: str | None, excluding: LoginAttempt | None = None) -> int:
    """Seconds until this login (or address) may try again; 0 when not locked out.

    Counted from failures since the last success within the lockout window: a user who finally types
    the right password starts afresh, a guesser cycling logins from one address is stopped by the IP limit.
    ``excluding`` is the attempt being decided, already recorded as a failure (``actions.begin_login_attempt``):
    it counts the others, not itself. Attempts of others still being checked count as failures.
    """
    window = dt.timedelta(seconds=settings.ABONENT_LOGIN_LOCKOUT_SECONDS)
    since = clock.now() - window
    recent = LoginAttempt.objects.filter(attempted_at__gte=since)
    if excluding is not None:
        recent = recent.exclude(pk=excluding.pk)

    last_success = (
        recent.filter(username=username, succeeded=True)
        .order_by("-attempted_at")
        .values_list("attempted_at", flat=True)
        .first()
    )
    by_user = recent.filter(username=username, succeeded=False)
    if last_success:
        by_user = by_user.filter(attempted_at__gt=last_success)
    checks = [(by_user, settings.ABONENT_LOGIN_MAX_FAILURES)]
    if ip_address:
        checks.append(
            (recent.filter(ip_address=ip_address, succeeded=False), settings.ABONENT_LOGIN_MAX_FAILURES_PER_IP)
        )

    remaining = 0
    for failures, limit in checks:
        times = list(failures.order_by("-attempted_at").values_list("attempted_at", flat=True)[:limit])
        if len(times) >= limit:
            # Locked until the oldest of the last ``limit`` failures leaves the window.
            unlock_at = times[-1] + window
            remaining = max(remaining, int((unlock_at - clock.now()).total_seconds()) + 1)
    return remaining


def get_user_by_api_token(plaintext: str):
    """The active user owning a valid token, with the token, or ``(None, None)``."""
    if not plaintext or len(plaintext) > 200:
        return None, None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(plaintext), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=clock.now()))
        .first()
    )
    if token is None or not token.user.is_active:
        return None, None
    return token.user, token
