"""The billing run's record (``BillingRunRecord``): one INSERT when a run starts and one UPDATE when it ends, plus
one INSERT of the subscriptions it parked when it parked any. Nothing per chunk or per subscription: the run's cost
does not change with its record (bench/billing_run.py, docs/finance-pages.md)."""

from __future__ import annotations

import datetime as dt
import logging

from abonent.core import clock

from .models import BillingRunRecord, ParkedSubscription, RunStatus

logger = logging.getLogger(__name__)

# Parked subscriptions kept per run: enough for any real run (a handful), bounded for a broken catalogue that parks
# everyone (a plan without a price): the count on the record stays exact.
MAX_PARKED_ROWS = 10_000
# A run still "running" this long after it started is taken for interrupted (its process died without ``fail``):
# the pages show it so (``BillingRunRecord.shown_status``) and the next run marks it.
STALE_AFTER = dt.timedelta(hours=6)


def start(as_of) -> BillingRunRecord:
    now = clock.now()
    BillingRunRecord.objects.filter(status=RunStatus.RUNNING, started_at__lt=now - STALE_AFTER).update(
        status=RunStatus.INTERRUPTED
    )
    return BillingRunRecord.objects.create(as_of=as_of, status=RunStatus.RUNNING, started_at=now)


def _fill(record: BillingRunRecord, result) -> list[str]:
    record.finished_at = clock.now()
    record.seconds = round(result.seconds or (record.finished_at - record.started_at).total_seconds(), 3)
    record.subscriptions = result.subscriptions
    record.charges = result.charges
    record.amount = result.amount
    record.parked = len(result.parked)
    record.unbilled = result.unbilled
    record.chunks = result.chunks
    record.workers = result.workers
    return ["status", "finished_at", "seconds", "subscriptions", "charges", "amount", "parked", "unbilled", "chunks",
            "workers"]  # fmt: skip


def _park(record: BillingRunRecord, result) -> None:
    rows = {p.subscription_id: p for p in result.parked}  # a subscription is parked once per run
    ParkedSubscription.objects.bulk_create(
        [
            ParkedSubscription(run=record, subscription_id=p.subscription_id, reason=p.reason, detail=p.why[:300])
            for p in sorted(rows.values())[:MAX_PARKED_ROWS]
        ]
    )


def finish(record: BillingRunRecord, result) -> None:
    record.status = RunStatus.FINISHED
    record.save(update_fields=_fill(record, result))
    if result.parked:
        _park(record, result)


def fail(record: BillingRunRecord, result, exc: BaseException) -> None:
    """The run stopped with ``exc``: what it had done by then (its chunks committed), and the error. Never raises:
    the run's own exception is what the caller must see."""
    try:
        record.status = RunStatus.FAILED
        record.error = f"{type(exc).__name__}: {exc}"[:2000]
        record.save(update_fields=[*_fill(record, result), "error"])
        if result.parked:
            _park(record, result)
    except Exception:
        logger.exception("billing run %s: its failure could not be recorded", record.as_of)
