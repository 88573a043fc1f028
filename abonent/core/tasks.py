"""Housekeeping jobs of the core app."""

from __future__ import annotations

import datetime as dt

from django.db.models import Max, Q
from django_tasks import task

from . import clock
from .scheduler import periodic

TASK_RESULT_RETENTION = dt.timedelta(days=14)


@periodic("core.prune_task_results", daily_at=dt.time(3, 30))
@task()
def prune_task_results() -> int:
    """Delete finished task results and scheduler slots older than two weeks; keeps the queue table small."""
    from django_tasks_db.models import DBTaskResult

    from .models import ScheduledRun

    cutoff = clock.now() - TASK_RESULT_RETENTION
    deleted, _ = DBTaskResult.objects.filter(finished_at__lt=cutoff).delete()
    # Keep each job's latest slot: deleting it would make the scheduler enqueue that slot again.
    latest = ScheduledRun.objects.values("job").annotate(last=Max("slot")).values_list("job", "last")
    keep = Q()
    for job, last in latest:
        keep |= Q(job=job, slot=last)
    ScheduledRun.objects.filter(slot__lt=cutoff).exclude(keep).delete()
    return deleted
