"""The console's import wizard under ``/staff/imports/``: the jobs, then per job one page a step (file, columns,
options, dry run, reconciliation, import, result). Each step is saved as it is sent and the job's status says where it
stands, so ``/staff/imports/<id>/`` takes a returning administrator (or another one) to that step.

Administrators only (``Perm.IMPORT_RUN``), and only those without a branch limit: a file writes subscribers into
whatever branches it names, which a branch-limited user could not otherwise touch.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.fields.json import KT
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from abonent.core.forms import apply_action_errors
from abonent.core.listing import export_response, keyset_page
from abonent.staff.permissions import Perm, allowed_branch_ids, require_perm

from . import actions, selectors
from . import wizard_actions as wizard
from .forms import MappingForm, OptionsForm, UploadForm, check_mappable
from .models import Entity, ImportJob, JobStatus
from .wizard_selectors import (
    Step,
    columns_from_mapping,
    current_step,
    imported_subscribers,
    issue_columns,
    issues_of,
    met_groups,
    raw_value,
    report_view,
    required_groups,
    settings_fingerprint,
    step_states,
    step_url,
)

RUNNING = (JobStatus.QUEUED, JobStatus.RUNNING)
# A job that imported is the record of what its file, mapping and options did: its settings no longer change (a
# corrected file is a new job), so its report and quarantine are never overwritten by a second run.
CLOSED = (*RUNNING, JobStatus.DONE)
# Groups shown for a decision each; a file with more sets the default and decides the rest in a later job.
MAX_GROUPS_SHOWN = 200
PROBLEMS_PAGE = 50


def import_view(view):
    """``Perm.IMPORT_RUN`` (403 without it, the view does not run), then no branch limit."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if allowed_branch_ids(request.user) is not None:
            raise PermissionDenied(
                _(
                    "An import writes into every branch its file names: only an administrator without a branch "
                    "limit may run one."
                )
            )
        return view(request, *args, **kwargs)

    return require_perm(Perm.IMPORT_RUN)(wrapped)


def _render(request, job: ImportJob | None, step: Step, template: str, context: dict, *, status: int = 200):
    context = {"job": job, "step": step, "steps": step_states(job, step), **context}
    return render(request, template, context, status=status)


def _to_current(job: ImportJob):
    return redirect(step_url(job, current_step(job)))


@require_GET
@import_view
def jobs(request):
    # The counts read out of the reports by the database: the list never loads the reports themselves.
    listed = (
        selectors.list_jobs()
        .select_related("created_by")
        .annotate(
            run_new=KT("report__rows__new"),
            run_quarantined=KT("report__rows__quarantined"),
            dry_new=KT("dry_run_report__rows__new"),
            dry_quarantined=KT("dry_run_report__rows__quarantined"),
        )
    )
    page = keyset_page(
        listed,
        ordering=("-created_at", "-id"),
        cursor=request.GET.get("cursor"),
    )
    return render(request, "imports/jobs.html", {"page": page, "query_string": ""})


@require_GET
@import_view
def job(request, pk: int):
    """Resume: wherever the job stands."""
    return _to_current(selectors.get_job(pk))


@require_http_methods(["GET", "POST"])
@import_view
def upload(request):
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        upload = data["file"]
        try:
            with transaction.atomic():  # a file the mapping form could not carry leaves no job behind
                job = actions.do_create_import_job(
                    entity=data["entity"],
                    file_name=upload.name,
                    content=upload.read(),
                    source=data["source"],
                    sheet=data["sheet"].strip(),
                    acting_user=request.user,
                )
                check_mappable(job.headers)
        except ValidationError as exc:
            apply_action_errors(form, exc)
            form.mark_invalid()
        else:
            return redirect("imports:mapping", pk=job.pk)
    return _render(
        request, None, Step.UPLOAD, "imports/upload.html", {"form": form}, status=422 if form.errors else 200
    )


def _mapping_errors(form: MappingForm, exc: ValidationError) -> None:
    """The action's refusals on the select of the column concerned, else on the form (a required field left
    unmapped has no select to mark: the message names it)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.error_dict.items():
        target = "save_profile_as" if name == "name" else form.select_name(name)
        form.add_error(target, errors)
    form.mark_invalid()


@require_http_methods(["GET", "POST"])
@import_view
def mapping(request, pk: int):
    job = selectors.get_job(pk)
    if job.status in CLOSED:
        return _to_current(job)
    profiles = selectors.list_profiles(job.entity)
    chosen = (request.POST.get("profile") if request.method == "POST" else request.GET.get("profile")) or ""
    loaded = selectors.load_profile(chosen, job.entity) if chosen else None
    if chosen and loaded is None:
        messages.warning(request, _("No profile “%(name)s” for this kind of file.") % {"name": chosen})
        chosen = ""
    start = loaded["mapping"] if loaded else job.mapping
    initial = {}
    for position, names in columns_from_mapping(start, job.headers).items():
        initial |= dict(zip((f"col_{position}", f"col_{position}_also"), names, strict=False))
    form = MappingForm(request.POST or None, entity=job.entity, headers=job.headers, initial=initial)
    if request.method == "POST" and form.is_valid():
        chosen_mapping = form.cleaned_data["mapping"]
        options = loaded["options"] if loaded else None
        try:
            with transaction.atomic():
                profile = loaded.get("profile") if loaded else None
                if name := form.cleaned_data["save_profile_as"].strip():
                    profile = actions.do_save_profile(
                        name=name,
                        entity=job.entity,
                        mapping=chosen_mapping,
                        options=options if options is not None else job.options,
                        acting_user=request.user,
                    )
                wizard.do_save_mapping(
                    job, mapping=chosen_mapping, profile=profile, options=options, acting_user=request.user
                )
        except ValidationError as exc:
            _mapping_errors(form, exc)
        else:
            return redirect("imports:options", pk=job.pk)
    try:
        preview = selectors.preview(job)
    except ValidationError as exc:
        preview = None
        form.add_error(None, exc)
    current = form.cleaned_data.get("mapping", {}) if form.is_bound and hasattr(form, "cleaned_data") else start
    context = {
        "form": form,
        "preview": preview,
        # Each first row's values under the columns that have a select (a header-less column has none).
        "preview_rows": [
            (number, [values[p] if p < len(values) else "" for p, _name in form.column_fields])
            for number, values in (preview.rows if preview else [])
        ],
        "profiles": profiles,
        "chosen": chosen,
        "columns": [(form[name], form[f"{name}_also"]) for _position, name in form.column_fields],
        "required": list(zip(required_groups(job.entity), met_groups(job.entity, current or {}), strict=True)),
    }
    return _render(request, job, Step.MAPPING, "imports/mapping.html", context, status=422 if form.errors else 200)


def _options_initial(job: ImportJob, groups) -> dict:
    pilot = job.pilot or {}
    initial = {
        "cutover_date": job.cutover_date,
        "default_branch": job.default_branch_id,
        "duplicate_default": job.duplicate_default,
        "pilot_branches": pilot.get("branches", []),
        "pilot_nas": ", ".join(pilot.get("nas", [])),
        "pilot_old_ids": "\n".join(pilot.get("old_ids", []) or pilot.get("accounts", [])),
    }
    initial |= {f"dup_{g.pk}": g.decision for g in groups}
    return initial


@require_http_methods(["GET", "POST"])
@import_view
def options(request, pk: int):
    """The run's settings and the duplicate decisions, saved together, and the dry run started: figures are always
    those of the settings on the page."""
    job = selectors.get_job(pk)
    if job.status in CLOSED:
        return _to_current(job)
    if not job.mapping:
        return redirect("imports:mapping", pk=job.pk)
    groups = list(selectors.duplicate_groups(job)[:MAX_GROUPS_SHOWN])
    form = OptionsForm(request.POST or None, initial=_options_initial(job, groups), groups=groups)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                wizard.lock_open_job(job)
                actions.do_configure_job(
                    job,
                    mapping=job.mapping,
                    options=job.options,
                    profile=job.profile,
                    cutover_date=data["cutover_date"],
                    duplicate_default=data["duplicate_default"],
                    pilot=form.pilot(),
                    default_branch=data["default_branch"],
                    acting_user=request.user,
                )
                if groups:
                    actions.do_decide_duplicates(job, form.decisions(), acting_user=request.user)
                job, started = wizard.do_start_wizard_run(job, dry_run=True, acting_user=request.user)
        except ValidationError as exc:
            apply_action_errors(form, exc, {"pilot": "pilot_old_ids"})
            form.mark_invalid()
        else:
            if not started:
                messages.info(request, _("The dry run was started already; it runs once."))
            return redirect("imports:progress", pk=job.pk)
    context = {
        "form": form,
        "groups": form.group_fields(),
        "more_groups": selectors.duplicate_groups(job).count() - len(groups),
        "needs_cutover": job.entity == Entity.SUBSCRIBERS,
    }
    return _render(request, job, Step.OPTIONS, "imports/options.html", context, status=422 if form.errors else 200)


@require_GET
@import_view
def progress(request, pk: int):
    """The run's progress bar. The page polls itself through htmx every second and, once the run is over, is sent
    on to the report (``HX-Redirect``); without JavaScript it reloads itself (``<noscript>`` refresh) and the
    finished run redirects."""
    job = selectors.get_job(pk)
    step = Step.DRY_RUN if job.dry_run else Step.RUN
    if job.status not in RUNNING and job.status != JobStatus.FAILED:
        target = step_url(job, current_step(job))
        if request.headers.get("HX-Request"):
            return HttpResponse(status=200, headers={"HX-Redirect": target})
        return redirect(target)
    context = {"working": job.status in RUNNING, "failed": job.status == JobStatus.FAILED}
    return _render(request, job, step, "imports/progress.html", context)


def _problems(request, job: ImportJob, *, dry_run: bool):
    page = keyset_page(
        issues_of(job, dry_run=dry_run),
        ordering=("row_number", "id"),
        cursor=request.GET.get("cursor"),
        size=PROBLEMS_PAGE,
    )
    for issue in page:
        issue.raw_value = raw_value(issue, job.mapping)
    return page


@require_GET
@import_view
def report(request, pk: int):
    """The dry run's reconciliation report and every problem row."""
    job = selectors.get_job(pk)
    if job.status in RUNNING or not job.dry_run_report:
        return _to_current(job)
    context = {
        "report": report_view(job.dry_run_report),
        "problems": _problems(request, job, dry_run=True),
        "run": "dry",
        "may_run": job.status == JobStatus.DRY_RUN_DONE,
        "query_string": "run=dry",
    }
    return _render(request, job, Step.REPORT, "imports/report.html", context)


@require_http_methods(["GET", "POST"])
@import_view
def confirm(request, pk: int):
    """The real run: the dry run's figures again, and "Import" sent with their fingerprint. A double submit, a
    reload or a second administrator starts nothing more (``do_start_wizard_run``); changed settings are refused."""
    job = selectors.get_job(pk)
    error, status = "", 200
    if request.method == "POST":
        try:
            job, started = wizard.do_start_wizard_run(
                job, dry_run=False, fingerprint=request.POST.get("fingerprint", ""), acting_user=request.user
            )
        except ValidationError as exc:
            job = selectors.get_job(pk)
            error, status = " ".join(exc.messages), 409
        else:
            if not started:
                messages.info(request, _("The import was started already; it runs once."))
            return redirect("imports:progress", pk=job.pk)
    elif job.status != JobStatus.DRY_RUN_DONE:
        return _to_current(job)
    context = {
        "report": report_view(job.dry_run_report),
        "fingerprint": settings_fingerprint(job),
        "may_run": job.status == JobStatus.DRY_RUN_DONE,
        "error": error,
        "quarantined": issues_of(job, dry_run=True).filter(is_warning=False).count(),
    }
    return _render(request, job, Step.RUN, "imports/confirm.html", context, status=status)


@require_GET
@import_view
def result(request, pk: int):
    job = selectors.get_job(pk)
    if job.status in RUNNING or not job.report:
        return _to_current(job)
    context = {
        "report": report_view(job.report),
        "problems": _problems(request, job, dry_run=False),
        "run": "real",
        "imported": imported_subscribers(job, request.user).count() if job.entity == Entity.SUBSCRIBERS else None,
        "query_string": "run=real",
    }
    return _render(request, job, Step.RESULT, "imports/result.html", context)


@require_GET
@import_view
def problems_export(request, pk: int):
    """The row problems of the dry run (``run=dry``) or the real run (``run=real``) as CSV or XLSX, with each row as
    the file had it: the quarantine, ready to fix and load again."""
    job = selectors.get_job(pk)
    dry_run = request.GET.get("run") != "real"
    rows = issues_of(job, dry_run=dry_run).order_by("row_number", "id").iterator(chunk_size=1000)
    name = f"import-{job.pk}-{'dry-run' if dry_run else 'run'}-problems"
    return export_response(request.GET.get("format", ""), name, issue_columns(job), rows)


@require_GET
@import_view
def subscribers(request, pk: int):
    job = selectors.get_job(pk)
    page = keyset_page(imported_subscribers(job, request.user), ordering=("id",), cursor=request.GET.get("cursor"))
    return _render(request, job, Step.RESULT, "imports/subscribers.html", {"page": page, "query_string": ""})
