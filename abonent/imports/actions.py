"""The imports app's writes, the interface the console wizard and the CLI call:

1. ``do_create_import_job`` — an uploaded file checked (type by content, size, encoding, sheet) and stored;
2. ``selectors.preview`` — its headers and first rows, for the mapping step;
3. ``do_save_profile`` / ``selectors.load_profile`` — a reusable mapping (ready ones: ``mikbill``, ``abills``);
4. ``validate_mapping`` / ``do_configure_job`` — the mapping and the run's settings (cut-over date, duplicates,
   pilot subset) checked and kept on the job; nothing is written to the domain tables before this passes;
5. ``do_decide_duplicates`` — a decision per duplicate group found by a dry run;
6. ``do_start_run`` — a dry run or the real run queued for the worker (``tasks.run_import``), which updates
   ``rows_done`` on the job as it goes; ``run_job`` does the same work in the calling process (the CLI);
7. ``selectors.report`` / ``selectors.issues`` — the reconciliation report and the quarantined rows.

Each action checks ``Perm.IMPORT_RUN`` (``acting_user=None`` is the system: the CLI), is atomic, and writes an
audit row. The runs themselves write the domain tables only through the domain apps' bulk import actions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Callable
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.core.models import Branch
from abonent.staff.permissions import Perm, check_perm

from . import files
from .fields import REQUIRED, field_names, label_of
from .models import (
    DuplicateDecision,
    DuplicateGroup,
    Entity,
    ImportFile,
    ImportJob,
    ImportProfile,
    JobStatus,
)
from .selectors import is_busy

SOURCE_MAX_LENGTH = 50
# How far from today the old system's last charged day may be.
CUTOVER_MAX_DAYS = 366


def _check(acting_user) -> None:
    if acting_user is not None:
        check_perm(acting_user, Perm.IMPORT_RUN)


@transaction.atomic
def do_create_import_job(
    *, entity: str, file_name: str, content: bytes, source: str, acting_user, sheet: str = ""
) -> ImportJob:
    """A job for an uploaded file: refused (``ValidationError`` on ``file``, ``entity``, ``source`` or ``sheet``)
    when the file is not a CSV or XLSX by its content, too large, in an unknown or mixed encoding, or has no header.
    ``source`` names the old system (``mikbill``): a later job of the same source re-imports by the same old ids.
    Formulas, merged cells and the row limit are checked when the rows are read (``selectors.preview`` and every
    run), before anything is written."""
    _check(acting_user)
    errors = {}
    if entity not in Entity.values:
        errors["entity"] = ValidationError(_("Choose what the file holds."), code="entity_invalid")
    source = (source or "").strip().lower()
    if not source or len(source) > SOURCE_MAX_LENGTH:
        errors["source"] = ValidationError(
            _("Name the old system in at most %(n)s characters.") % {"n": SOURCE_MAX_LENGTH}, code="source_invalid"
        )
    if errors:
        raise ValidationError(errors)
    info = files.sniff(content)
    if info.format == "xlsx":
        if sheet and sheet not in info.sheets:
            raise ValidationError(
                {
                    "sheet": ValidationError(
                        _("The workbook has no sheet “%(sheet)s”.") % {"sheet": sheet}, code="sheet_missing"
                    )
                }
            )
        sheet = sheet or info.sheets[0]
    table = files.read_table(content, info, sheet=sheet)
    rows = sum(1 for _row in table.rows)  # also proves every row readable: no formula, no merged cell, in limits
    job = ImportJob.objects.create(
        entity=entity,
        source=source,
        file_name=(file_name or "")[:255],
        file_format=info.format,
        file_size=len(content),
        file_sha256=hashlib.sha256(content).hexdigest(),
        encoding=info.encoding,
        delimiter=info.delimiter,
        sheet=sheet,
        headers=table.headers,
        row_count=rows,
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
        created_at=clock.now(),
    )
    ImportFile.objects.create(job=job, content=content)
    audit.record(
        actor=acting_user,
        action="imports.job_created",
        obj=job,
        after={"entity": entity, "source": source, "file": job.file_name, "rows": rows, "sha256": job.file_sha256},
    )
    return job


def validate_mapping(entity: str, mapping: dict, headers: list[str]) -> dict:
    """The mapping with empty entries dropped; a ``ValidationError`` naming each problem: a field we do not know
    (``mapping_field_unknown``), a column the file does not have (``mapping_column_missing``), a required field left
    unmapped (``mapping_required``, on the field's name)."""
    known = set(field_names(entity))
    clean = {k: str(v).strip() for k, v in (mapping or {}).items() if v not in (None, "") and str(v).strip()}
    errors: dict[str, ValidationError] = {}
    present = {h.strip().lower() for h in headers}
    # A column is named by its header: of two columns named alike, the run would read one whichever was chosen.
    repeated = {h for h, n in Counter(h.strip().lower() for h in headers).items() if n > 1}
    for name, column in clean.items():
        if name not in known:
            errors[name] = ValidationError(
                _("Unknown field “%(field)s”.") % {"field": name}, code="mapping_field_unknown"
            )
        elif column.lower() in repeated:
            errors[name] = ValidationError(
                _("Several columns of the file have the same name “%(column)s”: rename them in the file to map one.")
                % {"column": column},
                code="mapping_column_ambiguous",
            )
        elif column.lower() not in present:
            errors[name] = ValidationError(
                _("The file has no column “%(column)s” (for %(field)s).")
                % {"column": column, "field": label_of(entity, name)},
                code="mapping_column_missing",
            )
    for group in REQUIRED[entity]:
        if not any(all(name in clean for name in option) for option in group):
            first = group[0]
            labels = " / ".join(" + ".join(label_of(entity, n) for n in option) for option in group)
            errors.setdefault(
                first[0],
                ValidationError(
                    _("Map a column to %(fields)s: it is required.") % {"fields": labels}, code="mapping_required"
                ),
            )
    if errors:
        raise ValidationError(errors)
    return clean


@transaction.atomic
def do_save_profile(
    *, name: str, entity: str, mapping: dict, options: dict | None = None, acting_user
) -> ImportProfile:
    """Save (or replace) the named mapping for files of ``entity``. The mapping is checked for known fields only:
    required fields are checked against a file, when a job uses it."""
    _check(acting_user)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": ValidationError(_("Name the profile."), code="required")})
    if entity not in Entity.values:
        raise ValidationError({"entity": ValidationError(_("Choose what the file holds."), code="entity_invalid")})
    unknown = sorted(set(mapping or {}) - set(field_names(entity)))
    if unknown:
        raise ValidationError(
            {
                "mapping": ValidationError(
                    _("Unknown field “%(field)s”.") % {"field": unknown[0]}, code="mapping_field_unknown"
                )
            }
        )
    moment = clock.now()
    profile, created = ImportProfile.objects.update_or_create(
        entity=entity,
        name=name,
        defaults={"mapping": mapping, "options": options or {}, "updated_at": moment},
        create_defaults={
            "mapping": mapping,
            "options": options or {},
            "created_at": moment,
            "updated_at": moment,
            "created_by": acting_user if getattr(acting_user, "pk", None) else None,
        },
    )
    audit.record(
        actor=acting_user,
        action="imports.profile_saved",
        obj=profile,
        after={"name": name, "entity": entity, "mapping": mapping, "created": created},
    )
    return profile


@transaction.atomic
def do_configure_job(
    job: ImportJob,
    *,
    mapping: dict,
    acting_user,
    options: dict | None = None,
    profile: ImportProfile | None = None,
    cutover_date: dt.date | None = None,
    duplicate_default: str = DuplicateDecision.SKIP,
    pilot: dict | None = None,
    default_branch: Branch | None = None,
) -> ImportJob:
    """Keep the checked mapping and the run's settings on the job (status ``mapped``).

    ``cutover_date``: the last day the old system has charged for; imported subscriptions are billed from the next
    day. Required for subscriber files (``cutover_required``). ``pilot``: ``{"branches": [names], "nas": [names],
    "old_ids": [...], "accounts": [...]}`` — only matching rows are imported; the rest by a later job of the same
    source. ``default_branch``: the branch of rows whose file names none."""
    _check(acting_user)
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if is_busy(job):
        raise ValidationError(_("The job is running: wait for it to finish."), code="job_running")
    clean = validate_mapping(job.entity, mapping, job.headers)
    errors = {}
    if job.entity == Entity.SUBSCRIBERS and cutover_date is None:
        errors["cutover_date"] = ValidationError(
            _("Say through which day the old system has charged."), code="cutover_required"
        )
    elif cutover_date is not None and abs((cutover_date - clock.today()).days) > CUTOVER_MAX_DAYS:
        # A typo («31.05.16» for «31.05.26») would have the billing run catch up years of fees on every account.
        errors["cutover_date"] = ValidationError(
            _("The cut-over date must be within a year of today."), code="cutover_out_of_range"
        )
    if duplicate_default not in DuplicateDecision.values:
        errors["duplicate_default"] = ValidationError(_("Choose what to do with duplicates."), code="invalid")
    pilot = {k: [str(v).strip() for v in values if str(v).strip()] for k, values in (pilot or {}).items() if values}
    if set(pilot) - {"branches", "nas", "old_ids", "accounts"}:
        errors["pilot"] = ValidationError(_("Unknown pilot filter."), code="pilot_invalid")
    if errors:
        raise ValidationError(errors)
    job.mapping, job.options, job.profile = clean, options or {}, profile
    job.cutover_date, job.duplicate_default, job.pilot = cutover_date, duplicate_default, pilot
    job.default_branch = default_branch
    job.status = JobStatus.MAPPED
    job.save(
        update_fields=[
            "mapping",
            "options",
            "profile",
            "cutover_date",
            "duplicate_default",
            "pilot",
            "default_branch",
            "status",
        ]
    )
    audit.record(
        actor=acting_user,
        action="imports.job_configured",
        obj=job,
        after={
            "mapping": clean,
            "cutover_date": cutover_date,
            "duplicate_default": duplicate_default,
            "pilot": pilot,
            "branch": default_branch.pk if default_branch else None,
        },
    )
    return job


@transaction.atomic
def do_decide_duplicates(job: ImportJob, decisions: dict[int, str], *, acting_user) -> int:
    """Set the decision of the job's duplicate groups ``{group id: merge|skip|import|""}`` ("" = the job's
    default); returns how many changed. The next run (dry or real) follows them."""
    _check(acting_user)
    changed = 0
    for group in DuplicateGroup.objects.select_for_update().filter(job=job, pk__in=list(decisions)):
        decision = decisions[group.pk] or ""
        if decision and decision not in DuplicateDecision.values:
            raise ValidationError({str(group.pk): ValidationError(_("Unknown decision."), code="invalid")})
        if group.decision != decision:
            group.decision = decision
            group.save(update_fields=["decision"])
            changed += 1
    audit.record(actor=acting_user, action="imports.duplicates_decided", obj=job, after={"decisions": decisions})
    return changed


@transaction.atomic
def do_start_run(job: ImportJob, *, dry_run: bool, acting_user) -> ImportJob:
    """Queue a dry run or the real run of a configured job for the worker (``tasks.run_import``). Refused while the
    job is not configured (``job_not_mapped``) or already queued or running (``job_running``)."""
    from .tasks import run_import

    _check(acting_user)
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    _refuse_unready(job)
    job.status, job.dry_run, job.rows_done, job.error = JobStatus.QUEUED, dry_run, 0, ""
    job.save(update_fields=["status", "dry_run", "rows_done", "error"])
    audit.record(actor=acting_user, action="imports.run_queued", obj=job, after={"dry_run": dry_run})
    user_id = acting_user.pk if getattr(acting_user, "pk", None) else None
    transaction.on_commit(partial(run_import.enqueue, job_id=job.pk, dry_run=dry_run, user_id=user_id))
    return job


def _refuse_unready(job: ImportJob) -> None:
    # A run that died without a word (its heartbeat past the deadline) holds nothing: the job may run again.
    if is_busy(job):
        raise ValidationError(_("The job is running: wait for it to finish."), code="job_running")
    if job.status == JobStatus.UPLOADED or not job.mapping:
        raise ValidationError(_("Map the columns first."), code="job_not_mapped")


def run_job(
    job: ImportJob, *, dry_run: bool, acting_user, progress: Callable[[int, int], None] | None = None
) -> ImportJob:
    """Run the job now, in this process: a dry run (everything the real run would write, written and rolled back,
    so its report is what the real run will do) or the real run. ``progress(done, total)`` is called after each
    chunk; the job row's ``rows_done`` is updated too. Returns the job with its report."""
    from .engine import run

    return run(job, dry_run=dry_run, acting_user=acting_user, progress=progress)
