"""Periodic jobs of this app: sending the outbox.

The scheduler runs a job at most once a minute, so a message may wait up to a minute here; where that is too
slow, run ``abonent notify send --loop`` beside the worker (several of them may run: rows are claimed).
"""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic

# One run drains the outbox batch by batch, but hands the worker back well before the next slot.
SEND_BUDGET_S = 40


@periodic("notifications.send_due", every=dt.timedelta(minutes=1))
@task(queue_name="notifications")
def send_due() -> dict:
    from .delivery import drain

    return drain(budget_s=SEND_BUDGET_S)
