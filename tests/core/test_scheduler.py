import datetime as dt
import threading

import pytest
from django.db import connection
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from abonent.core import scheduler
from abonent.core.models import ScheduledRun


@task()
def noop_job() -> None:
    return None


@pytest.fixture
def only_test_jobs(monkeypatch):
    monkeypatch.setattr(scheduler, "_jobs", {})
    scheduler.periodic("test.hourly", every=dt.timedelta(hours=1))(noop_job)
    scheduler.periodic("test.daily", daily_at=dt.time(3, 0))(noop_job)


def at(hour, minute=0, day=29):
    # Moscow local time, the default operator zone.
    from django.utils import timezone

    return timezone.make_aware(dt.datetime(2026, 11, day, hour, minute))


def test_latest_slot_of_a_daily_job_is_today_after_the_hour_and_yesterday_before():
    job = scheduler.PeriodicJob("x", noop_job, daily_at=dt.time(3, 0))
    assert job.latest_slot(at(3, 1)) == at(3, 0)
    assert job.latest_slot(at(2, 59)) == at(3, 0, day=28)


def test_tick_enqueues_each_slot_once(db, only_test_jobs):
    assert sorted(scheduler.tick(at(10, 5))) == ["test.daily", "test.hourly"]
    assert scheduler.tick(at(10, 59)) == []  # same slots: nothing new
    assert scheduler.tick(at(11, 0)) == ["test.hourly"]  # the next hour's slot
    assert ScheduledRun.objects.count() == 3
    assert DBTaskResult.objects.count() == 3


def test_after_downtime_only_the_latest_slot_is_enqueued(db, only_test_jobs):
    scheduler.tick(at(1, 0))
    enqueued = scheduler.tick(at(1, 0, day=29) + dt.timedelta(hours=30))
    assert sorted(enqueued) == ["test.daily", "test.hourly"]
    assert ScheduledRun.objects.filter(job="test.hourly").count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_ticking_at_once_enqueue_each_slot_once(only_test_jobs):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    barrier = threading.Barrier(4)
    results = []

    def worker():
        barrier.wait()
        try:
            results.append(scheduler.tick(at(12, 0)))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(job for r in results for job in r) == ["test.daily", "test.hourly"]
    assert DBTaskResult.objects.count() == 2


def test_periodic_refuses_bad_schedules():
    with pytest.raises(ValueError):
        scheduler.periodic("bad", every=dt.timedelta(seconds=10))
    with pytest.raises(ValueError):
        scheduler.periodic("bad")
