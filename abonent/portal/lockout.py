"""Counting wrong passwords and codes: a login (and, apart, an address) with too many failures in the lock-out
window is refused without being checked, for the rest of the window.

A login is counted by ``Identified.key``: ``sub:<id>`` once it names a subscriber, so "100000009", "+7 916 …" and
"8 (916) …" of one subscriber share one count; what names nobody is counted by the same canonical form of what
was typed (the digits of a number, a phone in E.164, a login in lower case), so its spellings share one count
too. The refusal reads the same in both cases, so a lock-out does not tell whether a login exists.

An address is counted by its network (``network_of``): an IPv4 address as it is, an IPv6 one by its /64, which a
home connection gets whole and may use any address of.

As the staff login does (``staff.actions.begin_login_attempt``), an attempt is written as a failure *before* it is
checked and counts the attempts written besides it: twenty guesses sent at once cannot all slip under the
limit. The address's hourly allowances of code requests and mask lookups (``take``) are kept the same way. It
must therefore run in autocommit, outside ``transaction.atomic``, for the others to see the row.

Wrong codes and wrong passwords both count against a password login; a code is held back only by wrong codes
(and the address's failures). Five wrong passwords typed by a stranger thus do not keep the owner from setting a
new password with the code sent to the contract's phone: the code proves the phone, and each code dies after
``codes.MAX_TRIES`` wrong tries anyway.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
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
# Which failures of the login hold back an attempt of each kind (see the module docstring).
_LOGIN_KINDS = {"password": FAILING_KINDS, "code": ("code",)}


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


def network_of(ip_address: str | None) -> str:
    """What the per-address allowances count by: ``203.0.113.5`` as it is, ``2001:db8:7:9::5`` as
    ``2001:db8:7:9::/64`` (an IPv4 address written as IPv6, ``::ffff:203.0.113.5``, as the IPv4 one); "" for none."""
    try:
        address = ipaddress.ip_address(ip_address or "")
    except ValueError:
        return ""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.version == 4:
        return str(address)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.ABONENT_PORTAL_LOCKOUT_SECONDS)


def _record(key: str, ip_address: str | None, kind: str) -> LoginAttempt:
    return LoginAttempt.objects.create(
        identifier=key[:100],
        ip_address=ip_address,
        network=network_of(ip_address),
        attempted_at=clock.now(),
        succeeded=False,
        kind=kind,
    )


def _wait(rows, limit: int, window: dt.timedelta, now) -> int:
    """Seconds until fewer than ``limit`` of ``rows`` are left in ``window``; 0 when fewer already are."""
    times = list(rows.order_by("-attempted_at").values_list("attempted_at", flat=True)[:limit])
    if len(times) < limit:
        return 0
    # Held back until the oldest of the last ``limit`` leaves the window.
    return max(1, math.ceil((times[-1] + window - now).total_seconds()))


def lockout_remaining(
    key: str, ip_address: str | None, *, excluding: LoginAttempt | None = None, kind: str = "password"
) -> int:
    """Seconds until ``key`` (and ``ip_address``) may try again (an attempt of ``kind``); 0 when neither is locked
    out.

    Failures of the login count since its last success within the window (the subscriber who finally gets it
    right starts afresh); failures from the address (its network) count whatever the login, which stops one
    address cycling through many logins.
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
    by_login = failures.filter(identifier=key, kind__in=_LOGIN_KINDS.get(kind, FAILING_KINDS))
    if last_success is not None:
        by_login = by_login.filter(attempted_at__gt=last_success)
    remaining = _wait(by_login, settings.ABONENT_PORTAL_MAX_FAILURES, window, now)
    network = network_of(ip_address)
    if network:
        by_address = failures.filter(network=network)
        remaining = max(remaining, _wait(by_address, settings.ABONENT_PORTAL_MAX_FAILURES_PER_IP, window, now))
    return remaining


def begin(key: str, ip_address: str | None, *, kind: str) -> LoginAttempt:
    """Write this attempt as a failure, then refuse it (``LockedOut``, the row withdrawn: a refused request must
    not lengthen the lock-out it ran into) when enough failures came besides it. The caller settles it with
    ``succeeded`` or ``withdraw``; a failure stays as written."""
    attempt = _record(key, ip_address, kind)
    remaining = lockout_remaining(attempt.identifier, ip_address, excluding=attempt, kind=kind)
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


def take(key: str, ip_address: str | None, *, kind: str = SEND) -> None:
    """Count a code asked for (or a lookup, ``kind``) from ``ip_address``, whether or not the login exists, or
    refuse it (``LockedOut``, nothing kept) when the address's network already did it
    ``ABONENT_PORTAL_MAX_FAILURES_PER_IP`` times in the last hour, for any logins: what stops one machine from
    walking the account numbers, texting every subscriber or collecting their masked phones.

    Written first, counted after (as ``begin``): of requests sent at once, each sees the rows of all those that
    were written before it counted, so no more than the allowance get through."""
    row = _record(key, ip_address, kind)
    if not row.network:
        return
    others = LoginAttempt.objects.filter(
        network=row.network, kind=kind, attempted_at__gte=row.attempted_at - SEND_WINDOW
    ).exclude(pk=row.pk)
    wait = _wait(others, settings.ABONENT_PORTAL_MAX_FAILURES_PER_IP, SEND_WINDOW, row.attempted_at)
    if wait:
        withdraw(row)
        raise LockedOut(wait)
