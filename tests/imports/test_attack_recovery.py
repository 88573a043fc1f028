"""Attacks on a run's life: a worker killed mid-run, and two runs of one file at the same moment."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum

from abonent.billing import ledger
from abonent.billing.models import LedgerTransaction, Posting, TransactionKind
from abonent.core import clock
from abonent.imports import actions, run_subscribers, selectors
from abonent.imports.models import ImportedRecord, ImportJob, JobStatus
from abonent.subscribers.models import Subscriber
from tests.concurrency import together

from .conftest import csv_bytes
from .test_dirty import row

PEOPLE = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров"]


def _file() -> tuple[list[list[str]], Decimal]:
    rows = [
        row(f"10{i + 1:02d}", f"{name} Иван Иванович", f"28{i:02d} 1{i:05d}", deposit=f"{(i + 1) * 111},1{i}")
        for i, name in enumerate(PEOPLE)
    ]
    return rows, sum((Decimal(f"{(i + 1) * 111}.1{i}") for i in range(len(PEOPLE))), Decimal("0.00"))


class Killed(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs, no ``except Exception`` sees it."""


def _opening_balances() -> dict[str, Decimal]:
    out = {}
    for subscriber in Subscriber.objects.select_related("ledger_account"):
        out[subscriber.legacy_account] = subscriber.ledger_account.balance
    return out


def test_a_run_killed_mid_way_is_interrupted_after_the_deadline_and_a_rerun_imports_each_row_once(
    configured, admin, monkeypatch
):
    rows, total = _file()
    job = configured(csv_bytes(rows), "a.csv")
    monkeypatch.setattr(run_subscribers, "CHUNK_ROWS", 2)
    real_write_chunk = run_subscribers.SubscriberRun._write_chunk
    calls = []

    def write_chunk_then_die(self, chunk):
        calls.append(len(chunk))
        if len(calls) == 2:
            raise Killed
        return real_write_chunk(self, chunk)

    monkeypatch.setattr(run_subscribers.SubscriberRun, "_write_chunk", write_chunk_then_die)
    with pytest.raises(Killed):
        actions.run_job(job, dry_run=False, acting_user=admin)
    monkeypatch.setattr(run_subscribers.SubscriberRun, "_write_chunk", real_write_chunk)

    job = ImportJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.RUNNING
    assert Subscriber.objects.count() == 2  # the first chunk committed
    # While the run may still be alive (its heartbeat is fresh), the job is refused as running...
    assert not selectors.is_interrupted(job)
    with pytest.raises(ValidationError) as refused:
        actions.do_start_run(job, dry_run=False, acting_user=admin)
    assert refused.value.code == "job_running"

    # ...and once the heartbeat is older than the deadline it is interrupted: it can be configured and run again.
    with clock.travel_to(clock.now() + selectors.HEARTBEAT_DEADLINE + dt.timedelta(seconds=1)):
        job = ImportJob.objects.get(pk=job.pk)
        assert selectors.is_interrupted(job)
        job = actions.do_configure_job(
            job,
            mapping=job.mapping,
            cutover_date=job.cutover_date,
            default_branch=job.default_branch,
            acting_user=admin,
        )
        job = actions.do_start_run(job, dry_run=False, acting_user=admin)
        assert job.status == JobStatus.QUEUED
        job = actions.run_job(job, dry_run=False, acting_user=admin)

    assert job.status == JobStatus.DONE, job.error
    assert job.report["rows"]["new"] == 4 and job.report["rows"]["unchanged"] == 2
    assert Subscriber.objects.count() == len(rows)
    assert ImportedRecord.objects.count() == len(rows)
    assert LedgerTransaction.objects.filter(kind=TransactionKind.OPENING_BALANCE).count() == len(rows)
    balances = _opening_balances()
    for i, values in enumerate(rows):
        assert balances[values[0]] == Decimal(f"{(i + 1) * 111}.1{i}")
    assert sum(balances.values()) == total
    opening = ledger.system_account("opening_balances")
    assert Posting.objects.filter(account=opening).aggregate(total=Sum("amount"))["total"] == -total
    assert ledger.verify() == []


def test_a_running_job_heartbeats_with_every_chunk(configured, admin, monkeypatch):
    rows, _total = _file()
    job = configured(csv_bytes(rows), "a.csv")
    monkeypatch.setattr(run_subscribers, "CHUNK_ROWS", 2)
    beats = []
    real_write_chunk = run_subscribers.SubscriberRun._write_chunk

    def spy(self, chunk):
        beats.append(ImportJob.objects.values_list("heartbeat_at", flat=True).get(pk=job.pk))
        return real_write_chunk(self, chunk)

    monkeypatch.setattr(run_subscribers.SubscriberRun, "_write_chunk", spy)
    start = clock.now()
    moments = (start + dt.timedelta(minutes=m) for m in itertools.count())
    monkeypatch.setattr(clock, "now", lambda: next(moments))
    actions.run_job(job, dry_run=False, acting_user=admin)
    assert len(beats) == 3
    assert beats[0] < beats[1] < beats[2], beats


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL; SQLite serialises the whole database"
)
@pytest.mark.django_db(transaction=True)
def test_two_runs_of_one_file_at_once_import_each_row_once_and_the_loser_reports_them_unchanged(configured, admin):
    rows, total = _file()
    first, second = configured(csv_bytes(rows), "a.csv"), configured(csv_bytes(rows), "b.csv")

    outcomes = together(
        lambda: actions.run_job(first, dry_run=False, acting_user=admin),
        lambda: actions.run_job(second, dry_run=False, acting_user=admin),
    )

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    reports = [ImportJob.objects.get(pk=j.pk).report["rows"] for j in (first, second)]
    assert sorted(r["new"] for r in reports) == [0, len(rows)], reports
    assert all(r["new"] + r["unchanged"] == len(rows) for r in reports), reports
    assert not [i.code for j in (first, second) for i in selectors.issues(j, dry_run=False)]
    assert Subscriber.objects.count() == ImportedRecord.objects.count() == len(rows)
    assert sum(_opening_balances().values()) == total
    assert ledger.verify() == []
