"""Reads of the console's import wizard: which step a job stands at (so leaving and coming back resumes there), what
the dry run's figures were computed from (the real run refuses other settings), the report laid out for the page,
the row problems as an export, and the subscribers a job imported."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from abonent.core.listing import Column
from abonent.staff.permissions import scope_to_branches
from abonent.subscribers.models import Subscriber

from .fields import FIELDS, REQUIRED, label_of
from .models import DuplicateGroup, Entity, ImportedRecord, ImportIssue, ImportJob, JobStatus


class Step(StrEnum):
    UPLOAD = "upload"
    MAPPING = "mapping"
    OPTIONS = "options"
    DRY_RUN = "dry_run"
    REPORT = "report"
    RUN = "run"
    RESULT = "result"


STEP_LABELS = {
    Step.UPLOAD: _("File"),
    Step.MAPPING: _("Columns"),
    Step.OPTIONS: _("Options"),
    Step.DRY_RUN: _("Dry run"),
    Step.REPORT: _("Reconciliation"),
    Step.RUN: _("Import"),
    Step.RESULT: _("Result"),
}
ORDER = list(Step)

ROW_LABELS = {
    "read": _("Rows read"),
    "outside_pilot": _("Outside the pilot"),
    "new": _("New"),
    "updated": _("Updated"),
    "unchanged": _("Unchanged"),
    "merged": _("Merged into another"),
    "skipped_duplicates": _("Skipped as duplicates"),
    "quarantined": _("Quarantined"),
}
ENTITY_LABELS = {
    "subscribers": _("Subscribers"),
    "contracts": _("Contracts"),
    "addresses": _("Addresses"),
    "contacts": _("Contacts"),
    "subscriptions": _("Subscriptions"),
    "logins": _("Logins"),
    "equipment": _("Equipment"),
    "opening_balances": _("Opening balances"),
}


def current_step(job: ImportJob) -> Step:
    """Where the job stands: the step a returning administrator is taken to."""
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return Step.DRY_RUN if job.dry_run else Step.RUN
    if job.status == JobStatus.DONE:
        return Step.RESULT
    if job.status == JobStatus.DRY_RUN_DONE:
        return Step.REPORT
    if job.status == JobStatus.FAILED:
        return Step.DRY_RUN if job.dry_run else Step.RUN
    if job.status == JobStatus.MAPPED or job.mapping:
        return Step.OPTIONS
    return Step.MAPPING


def step_url(job: ImportJob, step: Step) -> str:
    name = {
        Step.MAPPING: "mapping",
        Step.OPTIONS: "options",
        Step.DRY_RUN: "progress",
        Step.RUN: "progress",
        Step.REPORT: "report",
        Step.RESULT: "result",
    }[step]
    return reverse(f"imports:{name}", args=[job.pk])


@dataclass(frozen=True)
class StepState:
    step: Step
    label: str
    url: str
    current: bool
    done: bool
    reachable: bool


def step_states(job: ImportJob | None, shown: Step) -> list[StepState]:
    """The wizard's side list: every step, the one shown, those behind the job (done) and those it may go back to.
    A running job may be watched but not changed, so only its progress is reachable then."""
    at = current_step(job) if job is not None else Step.UPLOAD
    running = job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    # A finished import's settings are closed (views.CLOSED): its columns and options are not offered again.
    closed = (Step.MAPPING, Step.OPTIONS) if job is not None and job.status == JobStatus.DONE else ()
    states = []
    for step in ORDER:
        done = ORDER.index(step) < ORDER.index(at) or (step == Step.RESULT and at == Step.RESULT)
        if job is None or step == Step.UPLOAD:
            reachable, url = step == Step.UPLOAD and job is None, reverse("imports:upload")
        else:
            reachable = (step == at) or (not running and step not in closed and ORDER.index(step) < ORDER.index(at))
            url = step_url(job, step)
        states.append(StepState(step, str(STEP_LABELS[step]), url, step == shown, done, reachable))
    return states


# --- the mapping step -------------------------------------------------------------------------------------------


def required_groups(entity: str) -> list[dict]:
    """Each requirement of a mapping, readable: ``{"text": "Full name / Last name + First name", "fields": [...]}``;
    the step marks the required fields and ticks the groups the current mapping meets."""
    groups = []
    for group in REQUIRED[entity]:
        text = " / ".join(" + ".join(label_of(entity, name) for name in option) for option in group)
        groups.append({"text": text, "options": group, "fields": sorted({n for option in group for n in option})})
    return groups


def required_fields(entity: str) -> set[str]:
    return {name for group in REQUIRED[entity] for option in group for name in option}


def field_choices(entity: str) -> list[tuple[str, str]]:
    required = required_fields(entity)
    return [(f.name, f"{f.label} *" if f.name in required else str(f.label)) for f in FIELDS[entity]]


def columns_from_mapping(mapping: dict, headers: list[str]) -> dict[int, list[str]]:
    """``{our field: header}`` turned round to ``{column index: [our fields]}`` (one column may fill two fields: the
    old id is often the old account number too), headers matched as the engine does (trimmed, any case); a field
    whose header the file lacks is left out."""
    index: dict[str, int] = {}
    for position, header in enumerate(headers):
        index.setdefault(header.strip().lower(), position)
    found: dict[int, list[str]] = {}
    for name, header in (mapping or {}).items():
        position = index.get(str(header).strip().lower())
        if position is not None:
            found.setdefault(position, []).append(name)
    return found


def met_groups(entity: str, mapping: dict) -> list[bool]:
    return [any(all(n in mapping for n in option) for option in group) for group in REQUIRED[entity]]


# --- the dry run and the real run ------------------------------------------------------------------------------


def settings_fingerprint(job: ImportJob) -> str:
    """What the last dry run's figures rest on: the file, the mapping and options, the duplicate decisions and the
    dry run's report itself. The confirm screen carries it; the real run starts only while it is unchanged, so an
    administrator never imports on figures that another one (or a reconfiguration) has made stale."""
    decisions = sorted(DuplicateGroup.objects.filter(job=job).values_list("kind", "key", "decision"))
    payload = [
        job.file_sha256,
        job.sheet,
        job.mapping,
        job.options,
        job.cutover_date,
        job.pilot,
        job.duplicate_default,
        job.default_branch_id,
        decisions,
        job.dry_run_report,
    ]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def decisions_match_dry_run(job: ImportJob) -> bool:
    """Whether the duplicate groups' decisions are those the dry run followed (the report lists them)."""
    reported = {(d["kind"], d["key"]): d["decision"] for d in (job.dry_run_report or {}).get("duplicates", [])}
    for kind, key, decision in DuplicateGroup.objects.filter(job=job).values_list("kind", "key", "decision"):
        if (kind, key) in reported and reported[(kind, key)] != (decision or job.duplicate_default):
            return False
    return True


def _money(value) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class ReportView:
    """A reconciliation report (``reports.build_report``'s dict) laid out for the page: labelled rows, the balances
    as Decimals, and whether the old and new totals agree to the kopeck."""

    raw: dict
    rows: list[tuple[str, str, int]]
    entities: list[tuple[str, str, int, int]]
    balances: dict | None
    balances_agree: bool
    problems: list[tuple[str, int]]

    @property
    def empty(self) -> bool:
        return not self.raw


def report_view(report: dict) -> ReportView:
    report = report or {}
    rows = [(key, str(ROW_LABELS.get(key, key)), n) for key, n in (report.get("rows") or {}).items()]
    entities = [
        (key, str(ENTITY_LABELS.get(key, key)), v.get("in_file", 0), v.get("imported", 0))
        for key, v in (report.get("entities") or {}).items()
    ]
    balances = None
    if report.get("balances"):
        b = report["balances"]
        balances = {k: _money(b.get(k)) for k in ("old_total", "new_total", "difference")}
    agree = balances is None or balances["difference"] == Decimal("0")
    return ReportView(
        raw=report,
        rows=rows,
        entities=entities,
        balances=balances,
        balances_agree=agree,
        problems=sorted((report.get("problems") or {}).items()),
    )


# --- row problems and what was imported ------------------------------------------------------------------------


def issues_of(job: ImportJob, *, dry_run: bool) -> QuerySet[ImportIssue]:
    return ImportIssue.objects.filter(job=job, dry_run=dry_run)


def raw_value(issue: ImportIssue, mapping: dict) -> str:
    """What the file held for the problem: the mapped column's value when the problem names a field, else the whole
    row as ``header: value`` pairs."""
    raw = issue.raw or {}
    header = (mapping or {}).get(issue.field) if issue.field else None
    if header is not None:
        for name, value in raw.items():
            if name.strip().lower() == header.strip().lower():
                return str(value)
    return "; ".join(f"{name}: {value}" for name, value in raw.items() if value not in ("", None))


def issue_columns(job: ImportJob) -> list[Column]:
    """The quarantine as a sheet the operator fixes and loads again: the problem first, then the row as it was in
    the file, under the file's own headers."""
    columns = [
        Column(_("Row"), lambda i: i.row_number),
        Column(_("Old id"), lambda i: i.old_id),
        Column(_("Field"), lambda i: i.field),
        Column(_("Code"), lambda i: i.code),
        Column(_("Problem"), lambda i: i.message),
        Column(_("Imported with a warning"), lambda i: i.is_warning),
    ]
    for header in job.headers:
        if header:
            columns.append(Column(header, lambda i, h=header: (i.raw or {}).get(h, "")))
    return columns


def imported_subscribers(job: ImportJob, user) -> QuerySet[Subscriber]:
    """The subscribers this job created or updated (its ``ImportedRecord`` rows), within the user's branches."""
    ids = ImportedRecord.objects.filter(job=job, entity=Entity.SUBSCRIBERS).values("object_id")
    return scope_to_branches(Subscriber.objects.filter(pk__in=ids), user).select_related("branch")
