"""Reads of the imports app: jobs, a file's preview for the mapping step, profiles, reports and row problems."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from abonent.core import clock

from . import files
from .models import DuplicateGroup, ImportFile, ImportIssue, ImportJob, ImportProfile, JobStatus
from .profiles import BUILTIN_PROFILES, builtin_profile

PREVIEW_ROWS = 10
# A run renews its heartbeat at least every ``engine.HEARTBEAT_EVERY`` while it works; its longest silence is one
# chunk's transaction. Past this without a sign of life the worker is gone (killed, restarted) and nothing will
# finish the job: it is "interrupted" and may be configured and run again (the real run is idempotent by old id).
HEARTBEAT_DEADLINE = dt.timedelta(minutes=10)


@dataclass
class Preview:
    headers: list[str]
    rows: list[tuple[int, list[str]]]
    sheets: list[str]
    row_count: int


def get_job(pk: int) -> ImportJob:
    job = ImportJob.objects.filter(pk=pk).first()
    if job is None:
        raise Http404
    return job


def is_interrupted(job: ImportJob) -> bool:
    """A job left "running" by a run that stopped without a word: its heartbeat is older than the deadline."""
    if job.status != JobStatus.RUNNING:
        return False
    beat = job.heartbeat_at or job.started_at
    return beat is None or clock.now() - beat > HEARTBEAT_DEADLINE


def is_busy(job: ImportJob) -> bool:
    """Queued, or running with a live heartbeat: another start or configure must wait."""
    return job.status == JobStatus.QUEUED or (job.status == JobStatus.RUNNING and not is_interrupted(job))


def list_jobs() -> QuerySet[ImportJob]:
    return ImportJob.objects.defer("report", "dry_run_report").order_by("-created_at", "-id")


def job_content(job: ImportJob) -> bytes:
    return bytes(ImportFile.objects.values_list("content", flat=True).get(job=job))


def file_info(job: ImportJob) -> files.FileInfo:
    return files.FileInfo(job.file_format, encoding=job.encoding, delimiter=job.delimiter)


def preview(job: ImportJob, *, rows: int = PREVIEW_ROWS) -> Preview:
    """The header and the first ``rows`` data rows as read (trimmed text), for the mapping step."""
    content = job_content(job)
    info = file_info(job)
    sheets = files.sniff(content).sheets if job.file_format == "xlsx" else []
    table = files.read_table(content, info, sheet=job.sheet)
    first = []
    for row in table.rows:
        first.append(row)
        if len(first) >= rows:
            break
    return Preview(headers=table.headers, rows=first, sheets=sheets, row_count=job.row_count)


def list_profiles(entity: str) -> list[dict]:
    """The ready profiles and the saved ones for files of ``entity``: ``{"name", "builtin", "mapping", "options"}``."""
    found = [
        {"name": name, "builtin": True, **builtin_profile(name, entity)}
        for name in BUILTIN_PROFILES
        if builtin_profile(name, entity)
    ]
    found += [
        {"name": p.name, "builtin": False, "mapping": p.mapping, "options": p.options, "pk": p.pk}
        for p in ImportProfile.objects.filter(entity=entity)
    ]
    return found


def load_profile(name: str, entity: str) -> dict | None:
    """A saved profile of that name, else the ready one: ``{"mapping", "options"}``, or ``None``."""
    saved = ImportProfile.objects.filter(entity=entity, name=name).first()
    if saved is not None:
        return {"mapping": dict(saved.mapping), "options": dict(saved.options), "profile": saved}
    return builtin_profile(name, entity)


def report(job: ImportJob, *, dry_run: bool) -> dict:
    """The reconciliation report of the job's last dry run or of its real run (``{}`` before one ran); its shape is
    documented in ``reports.build_report``."""
    return job.dry_run_report if dry_run else job.report


def issues(job: ImportJob, *, dry_run: bool) -> QuerySet[ImportIssue]:
    """The row problems of the job's last dry run or of its real run, by row."""
    return ImportIssue.objects.filter(job=job, dry_run=dry_run).order_by("row_number", "id")


def duplicate_groups(job: ImportJob) -> QuerySet[DuplicateGroup]:
    return DuplicateGroup.objects.filter(job=job).order_by("id")
