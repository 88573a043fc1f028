"""Housekeeping jobs of the core app."""

from __future__ import annotations

import datetime as dt

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
    ScheduledRun.objects.filter(slot__lt=cutoff).delete()
    return deleted
