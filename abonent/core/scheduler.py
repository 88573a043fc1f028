"""A small periodic scheduler inside ``abonent worker``.

Jobs register with ``@periodic`` (an interval or a daily local time). On every tick each worker
computes the job's latest due slot and tries to insert ``ScheduledRun(job, slot)``; the unique
constraint lets exactly one worker win, and the winner enqueues the task in the same transaction
(the task backend is the same database), so a slot is never lost between "claimed" and "enqueued".
Only the latest slot is enqueued after downtime: jobs are written to catch up themselves (the
billing run charges every missed day), so replaying each missed slot would only repeat work.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import clock
from .metrics import TASKS_ENQUEUED
from .models import ScheduledRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: object  # a django_tasks Task
    every: dt.timedelta | None = None
    daily_at: dt.time | None = None

    def latest_slot(self, moment: dt.datetime) -> dt.datetime:
        if self.every is not None:
            seconds = int(self.every.total_seconds())
            epoch = int(moment.timestamp())
            return dt.datetime.fromtimestamp(epoch - epoch % seconds, tz=dt.UTC)
        assert self.daily_at is not None
        local = timezone.localtime(moment)
        slot = timezone.make_aware(dt.datetime.combine(local.date(), self.daily_at))
        if slot > moment:
            slot = timezone.make_aware(dt.datetime.combine(local.date() - dt.timedelta(days=1), self.daily_at))
        return slot


_jobs: dict[str, PeriodicJob] = {}


def periodic(name: str, *, every: dt.timedelta | None = None, daily_at: dt.time | None = None):
    """Register a task to be enqueued periodically: ``@periodic("x", every=timedelta(hours=1))`` above ``@task``."""
    if (every is None) == (daily_at is None):
        raise ValueError("give exactly one of every= or daily_at=")
    if every is not None and every.total_seconds() < 60:
        raise ValueError("periodic jobs run at most once a minute")

    def register(task):
        _jobs[name] = PeriodicJob(name=name, task=task, every=every, daily_at=daily_at)
        return task

    return register


def registered_jobs() -> dict[str, PeriodicJob]:
    return dict(_jobs)


def tick(moment: dt.datetime | None = None) -> list[str]:
    """Enqueue every job whose latest slot has not been enqueued yet. Returns the jobs enqueued."""
    moment = moment or clock.now()
    enqueued = []
    for job in list(_jobs.values()):
        slot = job.latest_slot(moment)
        try:
            with transaction.atomic():
                run = ScheduledRun.objects.create(job=job.name, slot=slot, enqueued_at=moment)
                result = job.task.enqueue()
                run.task_result_id = str(result.id)
                run.save(update_fields=["task_result_id"])
        except IntegrityError:
            continue  # another worker (or an earlier tick) has this slot
        TASKS_ENQUEUED.labels(job.name).inc()
        logger.info("scheduled %s for slot %s", job.name, slot.isoformat())
        enqueued.append(job.name)
    return enqueued
