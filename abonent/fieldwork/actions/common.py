"""What the field-work actions share: permission checks of "either of", the installer check, lock deadlines."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core.deadlines import db_deadline
from abonent.staff.permissions import Perm, allowed_branch_ids, check_perm, has_perm

# A booking or a close waits at most this long for the row another one holds, then fails with a clear 503-like error
# instead of hanging a phone's request.
LOCK_SECONDS = 5
STATEMENT_SECONDS = 20


def deadline() -> None:
    if transaction.get_connection().in_atomic_block:
        db_deadline(lock=LOCK_SECONDS, statement=STATEMENT_SECONDS, unless_set=True)


def check_any(user, *perms: Perm) -> None:
    """Pass when ``user`` holds one of ``perms``; otherwise refuse naming the first."""
    if any(has_perm(user, perm) for perm in perms):
        return
    check_perm(user, perms[0])


def check_installer(installer, branch_id: int | None = None, field: str = "installer") -> None:
    """``installer`` is an active person who works jobs (``job.work``), allowed in the job's branch if one is given."""
    if (
        installer is None
        or not installer.is_active
        or installer.is_service_account
        or not has_perm(installer, Perm.JOB_WORK)
    ):
        raise ValidationError({field: ValidationError(_("Choose an active installer."), code="installer_invalid")})
    ids = allowed_branch_ids(installer)
    if branch_id is not None and ids is not None and branch_id not in ids:
        raise ValidationError(
            {field: ValidationError(_("This installer does not work in the job's branch."), code="installer_branch")}
        )
