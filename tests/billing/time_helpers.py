"""Shared set-up of the time rating tests: a per-minute plan, a subscriber on it, sessions as accounting writes."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.utils import timezone

from abonent.billing.models import Charge, ChargeKind
from abonent.core import clock

D = Decimal
_ids = itertools.count(1)


def local(*args) -> dt.datetime:
    return timezone.make_aware(dt.datetime(*args))


def session(nas, subscriber, start: dt.datetime, end: dt.datetime | None, *, seconds: int | None = None, **fields):
    """A session as accounting leaves it: closed with ``end``, or open with ``seconds`` online so far."""
    from abonent.network.models import Session, SessionStatus

    n = next(_ids)
    if seconds is None:
        seconds = int(((end or start) - start).total_seconds())
    values = {
        "nas": nas,
        "unique_id": f"u{n}-{subscriber.pk}",
        "acct_session_id": f"s{n}",
        "subscriber": subscriber,
        "username": f"user{subscriber.pk}",
        "status": SessionStatus.CLOSED if end is not None else SessionStatus.OPEN,
        "started_at": start,
        "updated_at": end or start + dt.timedelta(seconds=seconds),
        "stopped_at": end,
        "session_time": seconds,
    }
    values.update(fields)
    return Session.objects.create(**values)


def rate(at: dt.datetime, **kwargs):
    from abonent.billing.rating.time import rate_time

    with clock.travel_to(at):
        return rate_time(**kwargs)


def time_charges(subscription) -> list[tuple[dt.date, Decimal, int]]:
    return list(
        Charge.objects.filter(subscription=subscription, kind=ChargeKind.TIME)
        .order_by("period_start", "id")
        .values_list("period_start", "amount", "quantity")
    )
