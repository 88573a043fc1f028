"""The import run, dry or real, and the job's bookkeeping around it.

A run first **plans**: it reads every row, cleans it, checks every value fits its column, looks up what must be
unique and the duplicates (read queries, set-based), and computes the reconciliation from what it would write. A
**dry run** stops there: it writes nothing to the domain tables, and its report is the plan's. A **real run** is
the same plan followed by the writes, chunk by chunk, each chunk in one transaction: a row's subscriber, contract,
addresses, contacts, subscription, balance and login land together or not at all. The database re-checks: a chunk
it refuses (a unique value taken meanwhile) is written again row by row, each in a savepoint, so only the row at
fault is quarantined. The row problems and the report are written on the job (never into the domain tables).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.core.bulk_load import BulkWriter, reserve_ids
from abonent.staff.permissions import Perm, check_perm

from . import files
from .models import Entity, ImportFile, ImportIssue, ImportJob, JobStatus

# Rows per transaction: fewer, larger chunks cost fewer round trips; a chunk the database refuses is retried row
# by row, which stays cheap because refusals are rare (the values that must be unique are checked beforehand).
CHUNK_ROWS = 5000
# How often a run renews its heartbeat (``ImportJob.heartbeat_at``): after a chunk, at most this often, so a run of
# 100,000 single-row updates does not write the job row 100,000 times.
HEARTBEAT_EVERY = dt.timedelta(seconds=30)


@dataclass
class Issue:
    row_number: int
    old_id: str
    field: str
    code: str
    message: str
    raw: dict
    is_warning: bool = False


@dataclass
class Context:
    job: ImportJob
    dry_run: bool
    acting_user: object
    progress: Callable[[int, int], None] | None
    issues: list[Issue] = field(default_factory=list)
    done: int = 0
    beaten_at: dt.datetime | None = None

    def problem(self, row_number, old_id, field_name, code, message, raw, *, warning=False) -> None:
        self.issues.append(Issue(row_number, old_id or "", field_name, code, str(message)[:500], raw, warning))

    def advance(self, rows: int) -> None:
        self.done += rows
        self.beaten_at = clock.now()
        ImportJob.objects.filter(pk=self.job.pk).update(
            rows_done=min(self.done, self.job.rows_total), heartbeat_at=self.beaten_at
        )
        if self.progress is not None:
            self.progress(min(self.done, self.job.rows_total), self.job.rows_total)

    def chunk(self, work: Callable[[], object]):
        """``work()`` in one transaction (a savepoint inside another); returns its result. Only a real run writes:
        a dry run that got here would be a bug, so it is refused rather than rolled back."""
        if self.dry_run:
            raise RuntimeError("a dry run writes nothing to the domain tables")
        try:
            with transaction.atomic():
                return work()
        finally:
            self.beat()

    def beat(self) -> None:
        """Renew the run's lease on the job (outside any chunk's transaction, so other sessions see it)."""
        moment = clock.now()
        if self.beaten_at is None or moment - self.beaten_at >= HEARTBEAT_EVERY:
            self.beaten_at = moment
            ImportJob.objects.filter(pk=self.job.pk).update(heartbeat_at=moment)


def content_hash(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def read_rows(job: ImportJob) -> tuple[list[str], list[tuple[int, dict]]]:
    """Every row as ``{our field: text}`` by the job's mapping (raises on ``file`` as ``files.read_table`` does)."""
    content = bytes(ImportFile.objects.values_list("content", flat=True).get(job=job))
    info = files.FileInfo(job.file_format, encoding=job.encoding, delimiter=job.delimiter)
    table = files.read_table(content, info, sheet=job.sheet)
    index = {h.strip().lower(): i for i, h in enumerate(table.headers)}
    columns = {name: index[column.lower()] for name, column in job.mapping.items() if column.lower() in index}
    headers = table.headers
    rows = []
    for number, values in table.rows:
        raw = {headers[i]: values[i] for i in range(min(len(headers), len(values))) if headers[i]}
        mapped = {name: (values[i] if i < len(values) else "") for name, i in columns.items()}
        mapped["_raw"] = raw
        rows.append((number, mapped))
    return headers, rows


def run(job: ImportJob, *, dry_run: bool, acting_user, progress=None) -> ImportJob:
    """Run a configured job (see ``actions.run_job``); the job records the outcome whatever happens."""
    if acting_user is not None:
        check_perm(acting_user, Perm.IMPORT_RUN)
    job = ImportJob.objects.get(pk=job.pk)
    if not job.mapping:
        raise ValidationError(_("Map the columns first."), code="job_not_mapped")
    job.status, job.dry_run, job.started_at, job.finished_at = JobStatus.RUNNING, dry_run, clock.now(), None
    job.rows_total, job.rows_done, job.error, job.heartbeat_at = job.row_count, 0, "", job.started_at
    job.save(
        update_fields=[
            "status",
            "dry_run",
            "started_at",
            "finished_at",
            "rows_total",
            "rows_done",
            "error",
            "heartbeat_at",
        ]
    )
    context = Context(job, dry_run, acting_user, progress, beaten_at=job.started_at)
    try:
        from .runs import RUNNERS

        report = RUNNERS[job.entity](context).run()
    except ValidationError as exc:
        _fail(job, "; ".join(exc.messages))
        raise
    except Exception as exc:
        _fail(job, f"{type(exc).__name__}: {exc}")
        raise
    report["problems"] = _problem_counts(context.issues)
    with transaction.atomic():
        ImportIssue.objects.filter(job=job, dry_run=dry_run).delete()
        _insert_issues(job, dry_run, context.issues)
        if dry_run:
            job.dry_run_report = report
        else:
            job.report = report
        job.status = JobStatus.DRY_RUN_DONE if dry_run else JobStatus.DONE
        job.rows_done, job.finished_at = job.rows_total, clock.now()
        job.save(update_fields=["dry_run_report", "report", "status", "rows_done", "finished_at"])
        audit.record(
            actor=acting_user,
            action="imports.dry_run_finished" if dry_run else "imports.run_finished",
            obj=job,
            after={"rows": report.get("rows", {}), "balances": report.get("balances", {})},
        )
    return job


def _insert_issues(job: ImportJob, dry_run: bool, issues: list[Issue]) -> None:
    """The run's problem rows in one COPY: a file with a warning on every row has 100,000 of them."""
    ids = reserve_ids(ImportIssue, len(issues))
    writer = BulkWriter()
    writer.write(
        ImportIssue._meta.db_table,
        ["id", "job_id", "dry_run", "row_number", "old_id", "field", "code", "message", "is_warning", "raw"],
        [
            (
                issue_id,
                job.pk,
                dry_run,
                i.row_number,
                i.old_id[:100],
                i.field[:50],
                i.code[:50],
                i.message,
                i.is_warning,
                json.dumps(i.raw, ensure_ascii=False, default=str),
            )
            for issue_id, i in zip(ids, issues, strict=True)
        ],
    )
    writer.close()


def _fail(job: ImportJob, message: str) -> None:
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error=message[:5000], finished_at=clock.now())
    job.refresh_from_db()


def _problem_counts(issues: list[Issue]) -> dict:
    counts: dict[str, int] = {}
    for issue in issues:
        counts[issue.code] = counts.get(issue.code, 0) + 1
    return dict(sorted(counts.items()))


ENTITIES = Entity
