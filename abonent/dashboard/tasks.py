"""The dashboard's periodic job: the snapshot of its heavy figures."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("dashboard.snapshot", every=dt.timedelta(minutes=5))
@task(queue_name="default")
def take_snapshot() -> dict:
    """Receivables and their ageing, payments this month, revenue by service, ARPU and sessions online over time,
    for the dashboard to read in one row (``dashboard.snapshot``)."""
    from .snapshot import do_take_snapshot

    snapshot = do_take_snapshot()
    return {"taken_at": snapshot.taken_at.isoformat(), "duration_ms": snapshot.duration_ms}
