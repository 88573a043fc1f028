"""Periodic jobs of this app: sending due webhook deliveries (``sending.send_due``), and pruning the old log.

The scheduler runs it once a minute; a manual redelivery enqueues it at once. Where a minute is too slow, run
``abonent webhooks send --loop`` beside the worker (several may run: rows are claimed).
"""

import datetime as dt

from django_tasks import task

from abonent.core import queues
from abonent.core.scheduler import periodic

# One run drains batch by batch, but hands the worker back well before the next slot.
SEND_BUDGET_S = 40


@periodic("webhooks.send_due", every=dt.timedelta(minutes=1))
@task(queue_name="default")
def send_due() -> dict:
    from .sending import DEFAULT_BATCH
    from .sending import send_due as send

    return queues.drain(lambda limit: send(limit=limit), limit=DEFAULT_BATCH, budget_s=SEND_BUDGET_S)


@periodic("webhooks.prune", daily_at=dt.time(4, 30))
@task(queue_name="default")
def prune() -> int:
    from .actions import do_prune_events

    return do_prune_events()
