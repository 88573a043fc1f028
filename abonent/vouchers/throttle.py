"""The activation rate limit, as ``portal.lockout`` counts logins: an attempt is written as a failure *before*
the code is looked up, in autocommit, and then counts the failures written besides it; twenty guesses sent at
once cannot all slip under the limit. A signed-in subscriber is counted by ``sub:<id>``; every attempt is also
counted by the client's network (an IPv4 address, an IPv6 /64), which is all the anonymous Wi-Fi page has. An
anonymous attempt without a usable address (an empty REMOTE_ADDR behind a unix-socket upstream, a forwarded header
that is not an address) fails closed: it is counted in one shared ``unknown`` bucket, not let through uncounted.

Typos (a wrong check character) are refused before this and not counted: they reach no card.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math

from django.conf import settings

from abonent.core import clock

from .models import ActivationAttempt


class TooManyAttempts(Exception):
    """Refused unchecked; ``seconds`` until the next try is let through."""

    def __init__(self, seconds: int):
        super().__init__(seconds)
        self.seconds = max(int(seconds), 1)

    @property
    def minutes(self) -> int:
        return max(1, -(-self.seconds // 60))


def network_of(ip_address: str | None) -> str:
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
    return dt.timedelta(seconds=settings.ABONENT_VOUCHER_ATTEMPT_WINDOW_SECONDS)


def _wait(rows, limit: int, window: dt.timedelta, now) -> int:
    times = list(rows.order_by("-attempted_at").values_list("attempted_at", flat=True)[:limit])
    if len(times) < limit:
        return 0
    return max(1, math.ceil((times[-1] + window - now).total_seconds()))


# The network of every anonymous attempt whose address is unknown: one bucket for them all.
UNKNOWN_NETWORK = "unknown"


def begin(key: str, ip_address: str | None) -> ActivationAttempt:
    """Write the attempt as a failure, then refuse it (``TooManyAttempts``, the row withdrawn) if enough failures
    came besides it. Must run outside ``transaction.atomic`` so that concurrent attempts see each other's rows.

    A signed-in subscriber (``key``) without an address (the console's card panel) is limited by ``key`` alone;
    an anonymous one goes into the ``unknown`` network, so no address never means no limit."""
    now = clock.now()
    network = network_of(ip_address) or ("" if key else UNKNOWN_NETWORK)
    attempt = ActivationAttempt.objects.create(key=key, network=network, attempted_at=now)
    window = _window()
    failures = ActivationAttempt.objects.filter(attempted_at__gte=now - window, succeeded=False).exclude(pk=attempt.pk)
    wait = 0
    if key:
        wait = _wait(failures.filter(key=key), settings.ABONENT_VOUCHER_MAX_FAILURES, window, now)
    if attempt.network:
        wait = max(
            wait,
            _wait(failures.filter(network=attempt.network), settings.ABONENT_VOUCHER_MAX_FAILURES_PER_IP, window, now),
        )
    if wait:
        ActivationAttempt.objects.filter(pk=attempt.pk).delete()
        raise TooManyAttempts(wait)
    return attempt


def succeeded(attempt: ActivationAttempt) -> None:
    ActivationAttempt.objects.filter(pk=attempt.pk).update(succeeded=True)


def prune(older_than: dt.timedelta) -> int:
    return ActivationAttempt.objects.filter(attempted_at__lt=clock.now() - older_than).delete()[0]
