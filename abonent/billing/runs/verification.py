"""The ledger's verification (``ledger.verify``) with its result kept: by the daily job, ``abonent ledger verify``
and the console's "verify now", which only queues it for the worker (a full read of the ledger is no work for a
web request)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from functools import partial

from django.contrib.auth import get_user_model
from django.db import transaction

from abonent.core import audit, clock
from abonent.staff.permissions import Perm, check_perm

from .models import LedgerVerification, VerificationSource

logger = logging.getLogger(__name__)

Status = LedgerVerification.Status
# Problems kept word for word on the record; the count is always exact.
FIRST_PROBLEMS = 20
# A verification queued or running for longer than this is taken for lost (the worker died): another may be asked for.
STALE_AFTER = dt.timedelta(hours=2)


def verify_and_record(
    *, source: str, verification_id: int | None = None, requested_by=None
) -> tuple[LedgerVerification | None, list[str]]:
    """Verify the ledger and record the result; ``verification_id`` is a request queued from the console. Returns
    the record and every problem found (the record keeps the first ``FIRST_PROBLEMS``)."""
    from ..ledger import verify

    now = clock.now()
    # Requests the worker never finished (it died) are marked, so no page shows them queued or running for good.
    LedgerVerification.objects.filter(
        status__in=[Status.QUEUED, Status.RUNNING], created_at__lt=now - STALE_AFTER
    ).exclude(pk=verification_id).update(status=Status.INTERRUPTED)
    with transaction.atomic():
        row = None
        if verification_id is not None:
            # Locked and skipped when another worker holds it: a request is verified by one worker only.
            row = (
                LedgerVerification.objects.select_for_update(skip_locked=True)
                .filter(pk=verification_id, status=Status.QUEUED)
                .first()
            )
            if row is None:
                logger.info("ledger verification %s: not queued any more, nothing to do", verification_id)
                return LedgerVerification.objects.filter(pk=verification_id).first(), []
        if row is None:
            row = LedgerVerification(source=source, requested_by=requested_by, created_at=now)
        row.status, row.started_at = Status.RUNNING, now
        row.save()
    started = time.monotonic()
    try:
        problems = verify()
    except Exception as exc:
        row.status, row.error = Status.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
        row.finished_at, row.seconds = clock.now(), round(time.monotonic() - started, 3)
        row.save(update_fields=["status", "error", "finished_at", "seconds"])
        raise
    row.status = Status.PROBLEMS if problems else Status.OK
    row.problems = len(problems)
    row.first_problems = problems[:FIRST_PROBLEMS]
    row.finished_at, row.seconds = clock.now(), round(time.monotonic() - started, 3)
    row.save(update_fields=["status", "problems", "first_problems", "finished_at", "seconds"])
    log = logger.error if problems else logger.info
    log("ledger verification %s: %d problem(s) in %.1fs", row.pk, len(problems), row.seconds)
    return row, problems


def pending_verification() -> LedgerVerification | None:
    """A verification queued or running now (younger than ``STALE_AFTER``), if any."""
    return (
        LedgerVerification.objects.filter(
            status__in=[Status.QUEUED, Status.RUNNING], created_at__gte=clock.now() - STALE_AFTER
        )
        .order_by("-created_at", "-id")
        .first()
    )


@transaction.atomic
def do_request_ledger_verification(*, acting_user) -> tuple[LedgerVerification, bool]:
    """Queue a verification for the worker; returns it and whether it is new. One already queued or running is
    returned instead of a second: a double click verifies the ledger once."""
    from ..tasks import verify_ledger

    check_perm(acting_user, Perm.LEDGER_VERIFY)
    # The requests are serialised on the author's row, so two concurrent posts of one person see each other.
    get_user_model().objects.select_for_update().filter(pk=acting_user.pk).values_list("pk", flat=True).first()
    pending = pending_verification()
    if pending is not None:
        return pending, False
    row = LedgerVerification.objects.create(
        status=Status.QUEUED, source=VerificationSource.CONSOLE, requested_by=acting_user, created_at=clock.now()
    )
    audit.record(actor=acting_user, action="billing.ledger_verification_requested", obj=row)
    transaction.on_commit(partial(verify_ledger.enqueue, verification_id=row.pk))
    return row, True
