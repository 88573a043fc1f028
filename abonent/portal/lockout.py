"""Counting wrong passwords and codes: a login (and, apart, an address) with too many failures in the lock-out
window is refused without being checked, for the rest of the window.

A login is counted by ``Identified.key``: ``sub:<id>`` once it names a subscriber, so "100000009", "+7 916 …" and
"8 (916) …" of one subscriber share one count; what names nobody is counted by its normalised spelling. The
refusal reads the same in both cases, so a lock-out does not tell whether a login exists.

As the staff login does (``staff.actions.begin_login_attempt``), an attempt is written as a failure *before* it is
checked and counts only the failures written before it: twenty guesses sent at once cannot all slip under the
limit. It must therefore run in autocommit, outside ``transaction.atomic``, for the others to see the row.
"""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings

from abonent.core import clock

from .models import LoginAttempt
from .sessions import stored_ip

# What a failure is: a wrong password or a wrong code. "send" rows (a code asked for) and "lookup" rows (the
# masked phone and e-mail of a login shown) only count against the address's hourly allowance of each.
FAILING_KINDS = ("password", "code")
SEND = "send"
LOOKUP = "lookup"
SEND_WINDOW = dt.timedelta(hours=1)


class LockedOut(Exception):
    """Refused unchecked: too many failures of this login or this address. ``seconds`` until it may try again."""

    def __init__(self, seconds: int):
        super().__init__(seconds)
        self.seconds = max(int(seconds), 1)

    @property
    def minutes(self) -> int:
        return max(1, -(-self.seconds // 60))


def ip_of(request) -> str | None:
    """The client's address as the database can store it (a forwarded header may carry anything)."""
    return stored_ip(request)


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.ABONENT_PORTAL_LOCKOUT_SECONDS)


def lockout_remaining(key: str, ip_address: str | None, *, excluding: LoginAttempt | None = None) -> int:
    """Seconds until ``key`` (and ``ip_address``) may try again; 0 when neither is locked out.

    Failures of the login count since its last success within the window (the subscriber who finally gets it
    right starts afresh); failures from the address count whatever the login, which stops one address cycling
    through many logins.
    """
    window = _window()
    now = clock.now()
    recent = LoginAttempt.objects.filter(attempted_at__gte=now - window)
    if excluding is not None:
        recent = recent.exclude(pk=excluding.pk)
    failures = recent.filter(succeeded=False, kind__in=FAILING_KINDS)
    last_success = (
        recent.filter(identifier=key, succeeded=True, kind__in=FAILING_KINDS)
        .order_by("-attempted_at")
        .values_list("attempted_at", flat=True)
        .first()
    )
    by_login = failures.filter(identifier=key)
    if last_success is not None:
        by_login = by_login.filter(attempted_at__gt=last_success)
    checks = [(by_login, settings.ABONENT_PORTAL_MAX_FAILURES)]
    if ip_address:
        checks.append((failures.filter(ip_address=ip_address), settings.ABONENT_PORTAL_MAX_FAILURES_PER_IP))
    remaining = 0
    for rows, limit in checks:
        times = list(rows.order_by("-attempted_at").values_list("attempted_at", flat=True)[:limit])
        if len(times) >= limit:
            # Locked until the oldest of the last ``limit`` failures leaves the window.
            remaining = max(remaining, math.ceil((times[-1] + window - now).total_seconds()))
    return remaining


def begin(key: str, ip_address: str | None, *, kind: str) -> LoginAttempt:
    """Write this attempt as a failure, then refuse it (``LockedOut``, the row withdrawn: a refused request must
    not lengthen the lock-out it ran into) when enough failures came before it. The caller settles it with
    ``succeeded`` or ``withdraw``; a failure stays as written."""
    attempt = LoginAttempt.objects.create(
        identifier=key[:100], ip_address=ip_address, attempted_at=clock.now(), succeeded=False, kind=kind
    )
    remaining = lockout_remaining(attempt.identifier, ip_address, excluding=attempt)
    if remaining:
        withdraw(attempt)
        raise LockedOut(remaining)
    return attempt


def succeeded(attempt: LoginAttempt) -> None:
    LoginAttempt.objects.filter(pk=attempt.pk).update(succeeded=True)
    attempt.succeeded = True


def withdraw(attempt: LoginAttempt) -> None:
    """Forget an attempt that proved nothing either way (refused unchecked, or a right code with a password too
    weak to set)."""
    LoginAttempt.objects.filter(pk=attempt.pk).delete()


def record_send(key: str, ip_address: str | None, *, kind: str = SEND) -> None:
    """Count a code asked for (or a lookup) from ``ip_address``, whether or not the login exists."""
    LoginAttempt.objects.create(
        identifier=key[:100], ip_address=ip_address, attempted_at=clock.now(), succeeded=False, kind=kind
    )


def sends_remaining(ip_address: str | None, *, kind: str = SEND) -> int:
    """Seconds until ``ip_address`` may ask for a code (or look up where one would go) again; 0 when it may now.
    An address may do each ``ABONENT_PORTAL_MAX_FAILURES_PER_IP`` times an hour, for any logins: what stops one
    machine from walking the account numbers, texting every subscriber or collecting their masked phones."""
    if not ip_address:
        return 0
    now = clock.now()
    limit = settings.ABONENT_PORTAL_MAX_FAILURES_PER_IP
    times = list(
        LoginAttempt.objects.filter(ip_address=ip_address, kind=kind, attempted_at__gte=now - SEND_WINDOW)
        .order_by("-attempted_at")
        .values_list("attempted_at", flat=True)[:limit]
    )
    if len(times) < limit:
        return 0
    return max(1, math.ceil((times[-1] + SEND_WINDOW - now).total_seconds()))
