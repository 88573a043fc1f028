"""Decisions on the monitoring rows, pure: is a NAS silent, how full is a pool. No queries: the callers (the NAS
list and card, the pool list, the dashboard, ``/metrics``) read the rows once and ask here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings


def silent_after(interim_interval: int, minutes: int | None = None) -> dt.timedelta:
    """How long a NAS may send no accounting while it has sessions: ``ABONENT_NETWORK_SILENT_MINUTES``, but at
    least two of its interim intervals (a NAS told to send interims hourly, with a handful of subscribers, may
    well be quiet for 15 minutes)."""
    if minutes is None:
        minutes = settings.ABONENT_NETWORK_SILENT_MINUTES
    return max(dt.timedelta(minutes=minutes), dt.timedelta(seconds=2 * interim_interval))


def is_silent(
    *,
    is_active: bool,
    interim_interval: int,
    open_sessions: int,
    last_accounting_at: dt.datetime | None,
    stranded_at: dt.datetime | None,
    now: dt.datetime,
    minutes: int | None = None,
) -> bool:
    """An active NAS stopped sending accounting while subscribers were online on it: nothing for
    ``silent_after`` since ``last_accounting_at``, and either sessions are still open on it (as of the last sample)
    or the stale-session sweeper closed the last of them after that accounting (``stranded_at``).

    A NAS that closed its sessions itself (Stop, Accounting-On/Off) is not silent, however quiet it is after: it has
    nobody online to report. The flag goes once any accounting arrives again (the sampler moves
    ``last_accounting_at``)."""
    if not is_active or last_accounting_at is None:
        return False
    if now - last_accounting_at <= silent_after(interim_interval, minutes):
        return False
    return open_sessions > 0 or (stranded_at is not None and stranded_at >= last_accounting_at)


def nas_is_silent(nas, now: dt.datetime) -> bool:
    """``is_silent`` of a ``Nas`` read with its ``health`` (``select_related("health")``); no health row yet: no."""
    health = getattr(nas, "health", None)
    if health is None:
        return False
    return is_silent(
        is_active=nas.is_active,
        interim_interval=nas.interim_interval,
        open_sessions=health.open_sessions,
        last_accounting_at=health.last_accounting_at,
        stranded_at=health.stranded_at,
        now=now,
    )


class PoolLevel(StrEnum):
    OK = "ok"
    WARNING = "warning"
    DANGER = "danger"


@dataclass(frozen=True)
class PoolFill:
    """A pool's use: addresses in use of those it can hand out, the percentage and its level."""

    used: int
    size: int
    percent: float
    level: PoolLevel

    @property
    def free(self) -> int:
        return max(self.size - self.used, 0)


def pool_level(percent: float, *, warning: int | None = None, danger: int | None = None) -> PoolLevel:
    """``danger`` at ``ABONENT_NETWORK_POOL_DANGER_PERCENT`` and above, ``warning`` at the warning percentage."""
    warning = settings.ABONENT_NETWORK_POOL_WARNING_PERCENT if warning is None else warning
    danger = settings.ABONENT_NETWORK_POOL_DANGER_PERCENT if danger is None else danger
    if percent >= danger:
        return PoolLevel.DANGER
    if percent >= warning:
        return PoolLevel.WARNING
    return PoolLevel.OK


def pool_fill(used: int, size: int) -> PoolFill:
    """A pool of ``size`` addresses with ``used`` in use."""
    # A pool of no addresses (a /32 taken, text that is not a network) with any in use is full.
    percent = min(100.0 * used / size, 100.0) if size > 0 else (100.0 if used else 0.0)
    return PoolFill(used=used, size=size, percent=round(percent, 1), level=pool_level(percent))
