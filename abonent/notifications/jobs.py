"""Periodic jobs of the console side of notifications: the payments outbox drained into messages, bulk
messages expanded. (Delivery's own jobs are in ``tasks``.)"""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("notifications.payment_notices", every=dt.timedelta(minutes=1))
@task(queue_name="notifications")
def drain_payment_notices() -> int:
    """Autopay reminders and outcomes queued by payments (``PaymentNotice``) into messages; safe to run twice."""
    from .events import drain_payment_notices as drain

    return drain()


@periodic("notifications.bulk", every=dt.timedelta(minutes=1))
@task(queue_name="notifications")
def expand_bulk_messages() -> dict:
    """Confirmed bulk messages expanded into messages at their rate; finished ones marked done. Safe to run twice."""
    from .bulk import expand_bulks

    return {str(k): v for k, v in expand_bulks().items()}
