"""Days a subscriber was online, written by RADIUS accounting and read by online-only daily plans."""

from __future__ import annotations

from ..models import (
    OnlineDay,
)


def do_record_online_days(pairs) -> None:
    """Mark ``(subscriber_id, day)`` pairs as days the subscriber was online (from RADIUS accounting).
    Idempotent by the unique ``(subscriber, day)``; daily plans that charge only after an online day read it."""
    rows = [OnlineDay(subscriber_id=subscriber_id, day=day) for subscriber_id, day in sorted(set(pairs))]
    if rows:
        OnlineDay.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
