"""The console wizard's writes on an import job, beside the engine's actions (``actions.py``): the column mapping kept
on its own step, and a run started at most once however often "run" is sent.

Like the engine's actions, each checks ``Perm.IMPORT_RUN``, locks the job row, validates before writing and writes an
audit row; the domain tables are written only by the run itself, in the worker.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit
from abonent.staff.permissions import Perm, check_perm

from . import actions
from .models import ImportJob, ImportProfile, JobStatus
from .wizard_selectors import decisions_match_dry_run, settings_fingerprint

RUNNING = (JobStatus.QUEUED, JobStatus.RUNNING)


def _check(acting_user) -> None:
    if acting_user is not None:  # None: the system (the CLI), as in the engine's actions
        check_perm(acting_user, Perm.IMPORT_RUN)


def lock_open_job(job: ImportJob) -> ImportJob:
    """The job row locked for a change of its settings, in the caller's transaction; refused while it runs
    (``job_running``) and once it has imported (``job_done``): its settings are the record of that import."""
    locked = ImportJob.objects.select_for_update().get(pk=job.pk)
    if locked.status in RUNNING:
        raise ValidationError(_("The job is running: wait for it to finish."), code="job_running")
    if locked.status == JobStatus.DONE:
        raise ValidationError(
            _("This job has imported its file: upload the file again to import it with other settings."),
            code="job_done",
        )
    return locked


@transaction.atomic
def do_save_mapping(
    job: ImportJob, *, mapping: dict, acting_user, profile: ImportProfile | None = None, options: dict | None = None
) -> ImportJob:
    """Keep a checked mapping (``actions.validate_mapping``'s refusals name each field) on the job. The run's settings
    are then confirmed again on the options step, which starts a new dry run: figures computed with another mapping
    no longer stand."""
    _check(acting_user)
    job = lock_open_job(job)
    clean = actions.validate_mapping(job.entity, mapping, job.headers)
    job.mapping, job.profile, job.status = clean, profile, JobStatus.UPLOADED
    fields = ["mapping", "profile", "status"]
    if options is not None:
        job.options = options
        fields.append("options")
    job.save(update_fields=fields)
    audit.record(
        actor=acting_user,
        action="imports.mapping_saved",
        obj=job,
        after={"mapping": clean, "profile": profile.name if profile else None},
    )
    return job


@transaction.atomic
def do_start_wizard_run(job: ImportJob, *, dry_run: bool, acting_user, fingerprint: str = "") -> tuple[ImportJob, bool]:
    """Queue the job's dry run or real run once: ``(job, started)``. The job row is locked first, so a double click,
    a reload or a second administrator on the same job finds the run already queued (or, for the real run, done)
    and starts nothing (``started`` is ``False``).

    The real run needs the dry run's ``fingerprint`` as the confirm screen showed it (``settings_fingerprint``):
    refused (``dry_run_stale``) when the file, the mapping, the options or the duplicate decisions changed since,
    or the dry run was repeated meanwhile; refused (``dry_run_needed``) when no dry run stands for these settings."""
    _check(acting_user)
    locked = ImportJob.objects.select_for_update().get(pk=job.pk)
    if locked.status in RUNNING:
        if locked.dry_run == dry_run:
            return locked, False
        raise ValidationError(_("The job is running: wait for it to finish."), code="job_running")
    if not dry_run:
        current = settings_fingerprint(locked)
        if locked.status == JobStatus.DONE and fingerprint == current:
            return locked, False  # this confirmation was carried out already
        if locked.status != JobStatus.DRY_RUN_DONE:
            raise ValidationError(
                _("Run the dry run first: no dry run stands for the current settings."), code="dry_run_needed"
            )
        if fingerprint != current or not decisions_match_dry_run(locked):
            raise ValidationError(
                _("The file, the mapping or the options changed since the dry run you saw: check the new figures."),
                code="dry_run_stale",
            )
    return actions.do_start_run(locked, dry_run=dry_run, acting_user=acting_user), True
