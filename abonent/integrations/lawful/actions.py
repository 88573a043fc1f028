"""Every write of the lawful-interception export: a request, its generation in the worker, a download, the purge.

Each action checks ``Perm.LAWFUL_EXPORT`` (the worker's and the purge's act for the request's officer or the
system), validates everything before writing (one ``ValidationError`` with a code per field), writes an audit row
and waits on the database no longer than its deadline. The audit rows (``lawful.*``) name no subscriber, so they
never show on a subscriber's card, and the console's audit viewers do not show them (``audit.seal_actions``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import time
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.core.deadlines import db_deadline
from abonent.core.files import make_private_directory, private_file_writer
from abonent.staff.permissions import Perm, check_perm

from .formats import NOT_BUILT, ExportTooSlow, Package, get_exporter
from .formats.base import format_choices
from .models import BasisKind, ExportRequest, ExportStatus
from .selection import Criteria, Selection, build_criteria

logger = logging.getLogger(__name__)

DEFAULT_FORMAT = "vas-experts-sorm3"
# The web request's own writes are a row or two; a queue of vacuum or a lock must not hold a page for long.
REQUEST_DEADLINE = {"lock": 3, "statement": 10}
# A generation's reads: each chunk of a streamed query is one statement.
STATEMENT_SECONDS = 300
MAX_BASIS_AGE = dt.timedelta(days=365 * 3 + 1)


def storage_dir() -> Path:
    return Path(settings.ABONENT_LAWFUL_DIR)


def file_path(request: ExportRequest) -> Path:
    """The request's file, refused if its stored name would lead out of the storage directory."""
    root = storage_dir().resolve()
    path = (root / request.file_name).resolve()
    if not request.file_name or root not in path.parents:
        raise SuspiciousFileOperation(request.file_name)
    return path


@transaction.atomic
def do_request_export(
    *,
    acting_user,
    basis_kind: str,
    basis_number: str,
    basis_date: dt.date | None,
    period_start: dt.datetime | None,
    period_end: dt.datetime | None,
    accounts="",
    logins="",
    phones="",
    ips="",
    ip_at: dt.datetime | None = None,
    macs="",
    everyone: bool = False,
    format: str = DEFAULT_FORMAT,
    enqueue: bool = True,
) -> ExportRequest:
    """Record a request and queue its export for the worker. Nothing is written unless everything is valid: the
    legal basis (kind, number, date), the criteria and the period (``selection.build_criteria``), the format."""
    check_perm(acting_user, Perm.LAWFUL_EXPORT)
    db_deadline(**REQUEST_DEADLINE)
    errors: dict[str, list[ValidationError]] = {}
    basis_number = (basis_number or "").strip()
    if basis_kind not in BasisKind.values:
        errors["basis_kind"] = [ValidationError(_("Say what document the request rests on."), code="required")]
    if not basis_number:
        errors["basis_number"] = [ValidationError(_("Give the document's number."), code="required")]
    elif len(basis_number) > 100:
        errors["basis_number"] = [ValidationError(_("At most 100 characters."), code="max_length")]
    today = clock.today()
    if basis_date is None:
        errors["basis_date"] = [ValidationError(_("Give the document's date."), code="required")]
    elif basis_date > today:
        errors["basis_date"] = [ValidationError(_("The document cannot be dated in the future."), code="future")]
    elif basis_date < today - MAX_BASIS_AGE:
        errors["basis_date"] = [ValidationError(_("The document is more than three years old."), code="too_old")]
    if format not in dict(format_choices()):
        message = (
            _("The %(format)s format is not built yet.") % {"format": NOT_BUILT[format]}
            if format in NOT_BUILT
            else _("Unknown export format.")
        )
        errors["format"] = [ValidationError(message, code="invalid")]
    try:
        criteria = build_criteria(
            period_start=period_start,
            period_end=period_end,
            accounts=accounts,
            logins=logins,
            phones=phones,
            ips=ips,
            ip_at=ip_at,
            macs=macs,
            everyone=everyone,
        )
    except ValidationError as exc:
        for field, field_errors in exc.error_dict.items():
            errors.setdefault(field, []).extend(field_errors)
    if errors:
        raise ValidationError(errors)
    request = ExportRequest.objects.create(
        requested_by=acting_user,
        created_at=clock.now(),
        format=format,
        basis_kind=basis_kind,
        basis_number=basis_number,
        basis_date=basis_date,
        criteria=criteria.as_json(),
        period_start=criteria.period_start,
        period_end=criteria.period_end,
    )
    audit.record(actor=acting_user, action="lawful.export_requested", obj=request, after=_described(request))
    if enqueue:
        from .tasks import generate_lawful_export

        transaction.on_commit(partial(generate_lawful_export.enqueue, request_id=request.pk))
    return request


def _described(request: ExportRequest) -> dict:
    return {
        "format": request.format,
        "basis_kind": request.basis_kind,
        "basis_number": request.basis_number,
        "basis_date": request.basis_date,
        "criteria": request.criteria,
        "period_start": request.period_start,
        "period_end": request.period_end,
    }


def _claim(request_id: int) -> ExportRequest | None:
    """Queued → running, once: a task run twice (a worker's retry) finds it taken and does nothing."""
    with transaction.atomic():
        db_deadline(**REQUEST_DEADLINE)
        request = ExportRequest.objects.select_for_update().select_related("requested_by").filter(pk=request_id).first()
        if request is None or request.status != ExportStatus.QUEUED:
            return None
        request.status, request.started_at = ExportStatus.RUNNING, clock.now()
        request.save(update_fields=["status", "started_at"])
        return request


def do_generate_export(request_id: int) -> ExportRequest | None:
    """Write the request's ZIP (the worker's task, or ``abonent lawful export`` inline), then mark it ready for
    ``ABONENT_LAWFUL_FILE_HOURS`` or failed. The officer's permission and branch limits are those of now: a login
    disabled or moved to another role since the request gets no file."""
    request = _claim(request_id)
    if request is None:
        return None
    officer = request.requested_by
    generated_at = clock.now()
    relative = f"{generated_at:%Y/%m}/request-{request.pk}-{generated_at:%Y%m%d%H%M%S}.zip"
    path = storage_dir() / relative
    try:
        check_perm(officer, Perm.LAWFUL_EXPORT)
        make_private_directory(path.parent)
        counts, sha256, size = _write(request, path, generated_at)
    except Exception as exc:
        reason = _failure(exc)
        logger.warning("lawful export %s failed: %s", request.pk, reason, exc_info=not isinstance(exc, ExportTooSlow))
        with transaction.atomic():
            request.status, request.finished_at, request.error = ExportStatus.FAILED, clock.now(), reason[:500]
            request.save(update_fields=["status", "finished_at", "error"])
            audit.record(actor=officer, action="lawful.export_failed", obj=request, after={"error": request.error})
        return request
    try:
        _mark_done(request, officer, relative, counts, sha256, size)
    except BaseException:
        # The file is whole but no row names it (the database hung or restarted at the last step): a ZIP of
        # passports that nothing would ever purge. The request stays running; the purge fails it later.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return request


def _mark_done(request: ExportRequest, officer, relative: str, counts: dict, sha256: str, size: int) -> None:
    with transaction.atomic():
        finished = clock.now()
        request.status, request.finished_at = ExportStatus.DONE, finished
        request.expires_at = finished + dt.timedelta(hours=settings.ABONENT_LAWFUL_FILE_HOURS)
        request.file_name, request.file_sha256, request.file_size, request.row_counts = relative, sha256, size, counts
        request.save(
            update_fields=["status", "finished_at", "expires_at", "file_name", "file_sha256", "file_size", "row_counts"]
        )
        audit.record(
            actor=officer,
            action="lawful.export_generated",
            obj=request,
            after={
                **_described(request),
                "rows": counts,
                "sha256": sha256,
                "bytes": size,
                "expires_at": request.expires_at,
            },
        )


def _failure(exc: Exception) -> str:
    if isinstance(exc, ExportTooSlow):
        return _("The export ran past its deadline of %(seconds)d s: narrow the request.") % {
            "seconds": settings.ABONENT_LAWFUL_DEADLINE_SECONDS
        }
    from django.core.exceptions import PermissionDenied

    from abonent.core.deadlines import is_deadline

    if isinstance(exc, PermissionDenied):
        return _("The officer no longer holds the right to export.")
    if is_deadline(exc):
        return _("The database did not answer in time: try again later or narrow the request.")
    return _("The export failed (%(error)s).") % {"error": type(exc).__name__}


def _write(request: ExportRequest, path: Path, generated_at: dt.datetime) -> tuple[dict[str, int], str, int]:
    """The ZIP, streamed to a private temporary file and renamed into place whole; its rows counted per file and
    its SHA-256. On PostgreSQL every file is read from one snapshot (REPEATABLE READ, read only): the payments and
    sessions agree with the subscribers even while accounting writes on."""
    criteria = Criteria.from_json(request.criteria, period_start=request.period_start, period_end=request.period_end)
    selection = Selection(criteria=criteria, user=request.requested_by)
    exporter = get_exporter(request.format)
    deadline = time.monotonic() + settings.ABONENT_LAWFUL_DEADLINE_SECONDS
    with private_file_writer(path) as fh, transaction.atomic():
        if connection.vendor == "postgresql" and not _nested():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        db_deadline(lock=5, statement=STATEMENT_SECONDS)
        package = Package(fh, deadline=deadline, generated_at=generated_at)
        try:
            exporter.write(selection, package)
        except BaseException:
            package.abandon()
            raise
        package.close(_manifest(request, exporter, generated_at))
        counts = package.row_counts
        fh.flush()
        fh.seek(0)
        digest = hashlib.sha256()
        size = 0
        for block in iter(partial(fh.read, 1 << 20), b""):
            digest.update(block)
            size += len(block)
    return counts, digest.hexdigest(), size


def _nested() -> bool:
    """Whether the transaction opened just now sits inside another (a test's, a caller's): then it is a savepoint
    and its isolation level is the outer one's."""
    return len(connection.atomic_blocks) > 1


def _manifest(request: ExportRequest, exporter, generated_at: dt.datetime) -> dict:
    return {
        "format": exporter.name,
        "format_title": str(exporter.title),
        "format_version": exporter.version,
        "request_id": request.pk,
        "legal_basis": {
            "kind": request.basis_kind,
            "number": request.basis_number,
            "date": request.basis_date.isoformat(),
        },
        "criteria": request.criteria,
        "period": {"from": request.period_start.isoformat(), "to": request.period_end.isoformat()},
        "generated_at": generated_at.astimezone(dt.UTC).isoformat(),
        "time_zone": "UTC",
        "encoding": "UTF-8",
        "delimiter": ";",
        "requested_by": request.requested_by.get_username(),
    }


def do_download_export(request: ExportRequest, *, acting_user):
    """The request's file for its officer, checked against the SHA-256 recorded when it was made, and the download
    audited. Anyone else, or a file gone or past its time: ``LookupError`` (the view answers 404 or 410)."""
    check_perm(acting_user, Perm.LAWFUL_EXPORT)
    if request.requested_by_id != acting_user.pk:
        raise LookupError("not yours")
    if request.status != ExportStatus.DONE or request.expires_at <= clock.now():
        raise FileNotFoundError(request.file_name)
    path = file_path(request)
    # One open file is checked and served: a path opened again could be another file by then (replaced), or none
    # (purged) after the download was audited.
    fh = path.open("rb")
    try:
        digest = hashlib.sha256()
        for block in iter(partial(fh.read, 1 << 20), b""):
            digest.update(block)
        if digest.hexdigest() != request.file_sha256:
            logger.error("lawful export %s: %s differs from its recorded SHA-256; not served", request.pk, path)
            raise FileNotFoundError(request.file_name)
        fh.seek(0)
        with transaction.atomic():
            db_deadline(**REQUEST_DEADLINE)
            audit.record(
                actor=acting_user,
                action="lawful.export_downloaded",
                obj=request,
                after={"sha256": request.file_sha256, "bytes": request.file_size},
            )
    except BaseException:
        fh.close()
        raise
    return fh


def do_purge_expired_exports() -> int:
    """Delete the files past their time and mark their requests expired; fail the generations a worker left
    running past twice their deadline (a killed worker), removing any temporary file. Returns the files deleted."""
    now = clock.now()
    deleted = 0
    due = ExportRequest.objects.filter(status=ExportStatus.DONE, expires_at__lte=now).values_list("pk", flat=True)
    for pk in list(due[:1000]):
        with transaction.atomic():
            db_deadline(**REQUEST_DEADLINE)
            request = ExportRequest.objects.select_for_update().filter(pk=pk, status=ExportStatus.DONE).first()
            if request is None:
                continue
            with contextlib.suppress(FileNotFoundError):
                file_path(request).unlink()
            deleted += 1
            name = request.file_name
            request.status, request.file_name = ExportStatus.EXPIRED, ""
            request.save(update_fields=["status", "file_name"])
            audit.record(actor=None, action="lawful.export_expired", obj=request, before={"file_name": name})
    stale_before = now - dt.timedelta(seconds=2 * settings.ABONENT_LAWFUL_DEADLINE_SECONDS)
    with transaction.atomic():
        db_deadline(**REQUEST_DEADLINE)
        stale = list(
            ExportRequest.objects.select_for_update().filter(status=ExportStatus.RUNNING, started_at__lt=stale_before)
        )
        for request in stale:
            request.status, request.finished_at = ExportStatus.FAILED, now
            request.error = _("The worker stopped while preparing the export: request it again.")
            request.save(update_fields=["status", "finished_at", "error"])
            audit.record(actor=None, action="lawful.export_failed", obj=request, after={"error": request.error})
    for request in stale:
        # Its temporary file, or its whole ZIP if the worker died between the rename and the commit.
        leftovers = [
            *storage_dir().glob(f"*/*/.request-{request.pk}-*.tmp"),
            *storage_dir().glob(f"*/*/request-{request.pk}-*.zip"),
        ]
        for leftover in leftovers:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return deleted
