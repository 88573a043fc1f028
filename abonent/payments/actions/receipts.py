"""Fiscal receipts: queued when a payment or refund is recorded, sent and polled by the worker, retried.

- ``do_queue_payment_receipt`` / ``do_queue_refund_receipt`` run in the ``payments.payment_received`` and
  ``payments.refund_created`` event handlers; the partial unique constraints (one income receipt per payment,
  one return receipt per refund) make a repeated event harmless.
- ``do_advance_receipt`` moves one receipt on: claims it under a row lock (so two workers never send it twice
  at once) and pushes its next attempt out by the backoff *before* asking the provider, so a crash mid-call is
  retried later, with the same ``external_id`` (the provider answers a repeat with the first document).
  Timeouts, 5xx and "wait" answers back off 1, 2, 5, 10, 30, then every 60 minutes; a refusal of the document
  or of our settings fails the receipt, visible to staff, until ``do_retry_receipt``.
- ``do_handle_payment_cancelled``: a payment cancelled before its receipt could have reached the provider gets
  none; after that, a return-of-income receipt follows once the income receipt is done.
- ``do_receipt_callback``: the provider's callback only says *which* receipt to look at; the report is fetched
  from the provider again, so a forged callback changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events
from abonent.staff.permissions import Perm, check_perm

from .. import fiscal
from ..fiscal.content import build_document, to_json, vat_code_for
from ..fiscal.policy import receipt_needed
from ..models import (
    FiscalReceipt,
    Payment,
    PaymentStatus,
    ReceiptOperation,
    ReceiptStatus,
    Refund,
    RefundStatus,
)

logger = logging.getLogger(__name__)

BACKOFF_MINUTES = (1, 2, 5, 10, 30, 60)
# A return receipt waits for its income receipt (or a gateway's refund) without counting attempts.
WAIT_FOR_ORIGIN = dt.timedelta(minutes=1)


def backoff(attempts: int) -> dt.timedelta:
    """The pause after the ``attempts``-th attempt (1-based)."""
    return dt.timedelta(minutes=BACKOFF_MINUTES[min(max(attempts, 1), len(BACKOFF_MINUTES)) - 1])


def external_id_for(receipt: FiscalReceipt) -> str:
    prefix = (settings.ABONENT_FISCAL_ID_PREFIX or "")[:32]
    if receipt.operation == ReceiptOperation.SELL:
        base = f"{prefix}pay-{receipt.payment_id}"
    elif receipt.refund_id:
        base = f"{prefix}ref-{receipt.refund_id}"
    else:
        base = f"{prefix}cnl-{receipt.payment_id}"
    return base if receipt.generation == 1 else f"{base}-{receipt.generation}"


def _create(**fields) -> tuple[FiscalReceipt, bool]:
    """Insert a receipt once; a repeated event finds the first (the unique constraints decide, not a lookup)."""
    receipt = FiscalReceipt(created_at=clock.now(), **fields)
    receipt.external_id = external_id_for(receipt)
    try:
        with transaction.atomic():
            receipt.save(force_insert=True)
    except IntegrityError:
        first = FiscalReceipt.objects.filter(
            payment=receipt.payment, operation=receipt.operation, refund=receipt.refund
        ).first() or FiscalReceipt.objects.get(external_id=receipt.external_id)
        return first, False
    return receipt, True


def _provider_code() -> str:
    return (settings.ABONENT_FISCAL_PROVIDER or "none").strip().lower()


def do_queue_payment_receipt(payment_id: int) -> FiscalReceipt | None:
    """The income receipt of a payment just taken in: queued, or recorded as not required (and why)."""
    payment = Payment.objects.select_related("subscriber").filter(pk=payment_id).first()
    if payment is None or payment.status not in (PaymentStatus.CREDITED, PaymentStatus.SUSPENSE):
        return None
    needed, why = receipt_needed(payment)
    status, vat, error = ReceiptStatus.QUEUED, "", ""
    try:
        issuing = fiscal.provider().issues_receipts
    except fiscal.FiscalError as exc:
        issuing, status, error = True, ReceiptStatus.FAILED, str(exc)
    if not issuing:
        needed, why = False, _("No cash register is configured.")
    if not needed:
        status = ReceiptStatus.NOT_REQUIRED
    elif status == ReceiptStatus.QUEUED:
        try:
            vat = vat_code_for(timezone.localdate(payment.received_at))
        except fiscal.FiscalError as exc:
            status, error = ReceiptStatus.FAILED, str(exc)
    receipt, _created = _create(
        payment=payment,
        operation=ReceiptOperation.SELL,
        provider=_provider_code(),
        status=status,
        status_reason=why[:500],
        last_error=error[:1000],
        amount=payment.amount,
        vat=vat,
        next_attempt_at=clock.now() if status == ReceiptStatus.QUEUED else None,
    )
    return receipt


def do_queue_refund_receipt(refund_id: int) -> FiscalReceipt | None:
    """The return receipt of a refund: due only when its payment's income receipt was (or will be) issued."""
    refund = Refund.objects.select_related("payment").filter(pk=refund_id).first()
    if refund is None:
        return None
    origin = FiscalReceipt.objects.filter(payment_id=refund.payment_id, operation=ReceiptOperation.SELL).first()
    return _queue_return(refund.payment, origin, amount=refund.amount, refund=refund)


def _queue_return(payment: Payment, origin: FiscalReceipt | None, *, amount, refund: Refund | None):
    if origin is None or origin.status == ReceiptStatus.NOT_REQUIRED:
        status, why = ReceiptStatus.NOT_REQUIRED, _("The payment had no receipt.")
    else:
        status, why = ReceiptStatus.QUEUED, ""
    receipt, _created = _create(
        payment=payment,
        refund=refund,
        operation=ReceiptOperation.SELL_REFUND,
        provider=origin.provider if origin else _provider_code(),
        status=status,
        status_reason=why,
        amount=amount,
        # A return repeats the income receipt's VAT: the advance was taken at that rate.
        vat=origin.vat if origin else "",
        next_attempt_at=clock.now() if status == ReceiptStatus.QUEUED else None,
    )
    return receipt


@transaction.atomic
def do_handle_payment_cancelled(payment_id: int) -> FiscalReceipt | None:
    """A payment cancelled as a mistake: no receipt if none can have gone out yet, else a return receipt."""
    origin = (
        FiscalReceipt.objects.select_for_update().filter(payment_id=payment_id, operation=ReceiptOperation.SELL).first()
    )
    if origin is None:
        return None
    payment = Payment.objects.get(pk=payment_id)
    if payment.status != PaymentStatus.CANCELLED:
        # An assignment from suspense undone: the money is still ours (back in suspense), its receipt stands.
        return origin
    # Dropped only when no document of ours can be at the provider: never sent, or every send refused for sure
    # (validation, our settings, or its report said fail). A timeout, a crash mid-call, ATOL's "exists already"
    # without a uuid leave ``maybe_sent``: a return receipt follows once the income receipt is settled.
    if origin.status in (ReceiptStatus.QUEUED, ReceiptStatus.FAILED) and not origin.maybe_sent:
        before = origin.status
        origin.status = ReceiptStatus.NOT_REQUIRED
        origin.status_reason = _("The payment was cancelled before its receipt went out.")
        origin.next_attempt_at = None
        origin.save(update_fields=["status", "status_reason", "next_attempt_at"])
        audit.record(
            actor=None,
            action="payments.receipt_dropped",
            obj=origin.payment,
            subscriber_id=origin.payment.subscriber_id,
            before={"receipt": before},
            after={"receipt": origin.status},
        )
        return origin
    if origin.status == ReceiptStatus.NOT_REQUIRED:
        return origin
    return _queue_return(payment, origin, amount=payment.amount - payment.refunded_amount, refund=None)


# Sending and polling.


# A payment's income receipt row is made by an after-commit handler; one that failed (the database gone for a
# moment, the process stopped between the commit and the handler) leaves the payment without one. The minute job
# looks for such payments recorded between SWEEP_AFTER and ABONENT_FISCAL_SWEEP_HOURS ago (not older: payments
# taken before receipts were turned on are not fiscalized after the fact).
SWEEP_AFTER = dt.timedelta(minutes=2)


def queue_missing_receipts(limit: int = 200) -> int:
    """Queue the income receipt of recent payments that have none. Returns how many were queued."""
    now = clock.now()
    missing = (
        Payment.objects.filter(
            status__in=[PaymentStatus.CREDITED, PaymentStatus.SUSPENSE],
            created_at__lte=now - SWEEP_AFTER,
            created_at__gte=now - dt.timedelta(hours=settings.ABONENT_FISCAL_SWEEP_HOURS),
        )
        .exclude(pk__in=FiscalReceipt.objects.filter(operation=ReceiptOperation.SELL).values("payment_id"))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    queued = 0
    for payment_id in list(missing):
        try:
            if do_queue_payment_receipt(payment_id) is not None:
                queued += 1
                logger.warning("payment %s had no receipt: queued by the sweep", payment_id)
        except Exception:
            logger.exception("payment %s: its missing receipt could not be queued", payment_id)
    return queued


def due_receipt_ids(limit: int = 200) -> list[int]:
    return list(
        FiscalReceipt.objects.filter(
            status__in=[ReceiptStatus.QUEUED, ReceiptStatus.SENT], next_attempt_at__lte=clock.now()
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def process_due_receipts(limit: int = 200, *, budget_seconds: float = 50.0) -> dict:
    """The worker's minute: every receipt due is sent or polled once, until ``budget_seconds`` are spent (a slow
    provider must not pile runs up; what is left is due again next minute). Counts by the status each ends in."""
    counts: dict[str, int] = {}
    started = time.monotonic()
    swept = queue_missing_receipts()
    if swept:
        counts["swept"] = swept
    for pk in due_receipt_ids(limit):
        if time.monotonic() - started > budget_seconds:
            break
        try:
            receipt = do_advance_receipt(pk)
        except Exception:
            logger.exception("fiscal receipt %s could not be advanced", pk)
            continue
        if receipt is not None:
            counts[receipt.status] = counts.get(receipt.status, 0) + 1
    return counts


def do_advance_receipt(receipt_id: int) -> FiscalReceipt | None:
    """Send a queued receipt or poll a sent one, once, if it is due and no other worker holds it."""
    claimed = _claim(receipt_id)
    if claimed is None:
        return None
    receipt, step = claimed
    if step == "send":
        try:
            uuid = fiscal.get(receipt.provider).send(
                operation=receipt.operation,
                external_id=receipt.external_id,
                document=receipt.request,
                moment=receipt.created_at,
            )
        except fiscal.FiscalError as exc:
            return _record_error(receipt, exc, sent_before=getattr(receipt, "sent_before", True))
        return _record_sent(receipt, uuid)
    if step == "poll":
        try:
            report = fiscal.get(receipt.provider).get_report(receipt.uuid)
        except fiscal.FiscalError as exc:
            return _record_error(receipt, exc)
        return do_apply_report(receipt, report)
    return receipt


@transaction.atomic
def _claim(receipt_id: int):
    """Lock the receipt, check it is still due and ready, and push its next attempt out (the lease)."""
    receipt = (
        FiscalReceipt.objects.select_for_update(skip_locked=True)
        .filter(pk=receipt_id, status__in=[ReceiptStatus.QUEUED, ReceiptStatus.SENT], next_attempt_at__lte=clock.now())
        .first()
    )
    if receipt is None:
        return None
    now = clock.now()
    if receipt.status == ReceiptStatus.QUEUED:
        waiting = _origin_not_ready(receipt)
        if waiting is not None:
            return (receipt, "wait") if waiting else (receipt, "dropped")
        if not receipt.request:
            try:
                receipt.request = _document(receipt)
            except fiscal.FiscalError as exc:
                _fail(receipt, str(exc))
                return receipt, "failed"
        step = "send"
        # Before the call: a crash or a lost answer from here on may leave the document at the provider.
        receipt.sent_before = receipt.maybe_sent
        receipt.maybe_sent = True
    else:
        step = "poll"
    receipt.attempts += 1
    receipt.next_attempt_at = now + backoff(receipt.attempts)
    receipt.save(update_fields=["attempts", "next_attempt_at", "request", "maybe_sent"])
    return receipt, step


def _origin_not_ready(receipt: FiscalReceipt) -> bool | None:
    """For a return receipt: None when it may go out; True when it must wait (its income receipt is not done,
    a gateway's refund not confirmed: postponed); False when it is not needed after all (marked so here)."""
    if receipt.operation != ReceiptOperation.SELL_REFUND:
        return None
    if receipt.refund_id:
        refund_status = Refund.objects.filter(pk=receipt.refund_id).values_list("status", flat=True).first()
        if refund_status == RefundStatus.FAILED:
            _not_required(receipt, _("The refund failed: no money went back."))
            return False
        if refund_status == RefundStatus.PENDING:
            _postpone(receipt)
            return True
    origin = FiscalReceipt.objects.filter(payment_id=receipt.payment_id, operation=ReceiptOperation.SELL).first()
    if origin is None or origin.status == ReceiptStatus.NOT_REQUIRED:
        _not_required(receipt, _("The payment had no receipt."))
        return False
    if origin.status == ReceiptStatus.FAILED and not receipt.refund_id and not origin.maybe_sent:
        # A cancelled payment whose income receipt was refused: nothing was fiscalized, nothing to return.
        _not_required(receipt, _("The payment was cancelled before its receipt went out."))
        return False
    if origin.status != ReceiptStatus.DONE:
        _postpone(receipt)
        return True
    if not receipt.vat:
        receipt.vat = origin.vat
        receipt.save(update_fields=["vat"])
    return None


def _postpone(receipt: FiscalReceipt) -> None:
    receipt.next_attempt_at = clock.now() + WAIT_FOR_ORIGIN
    receipt.save(update_fields=["next_attempt_at"])


def _not_required(receipt: FiscalReceipt, why: str) -> None:
    receipt.status = ReceiptStatus.NOT_REQUIRED
    receipt.status_reason = why[:500]
    receipt.next_attempt_at = None
    receipt.save(update_fields=["status", "status_reason", "next_attempt_at"])


def _document(receipt: FiscalReceipt) -> dict:
    payment = Payment.objects.select_related("subscriber").get(pk=receipt.payment_id)
    vat = receipt.vat or vat_code_for(timezone.localdate(payment.received_at))
    if vat != receipt.vat:
        receipt.vat = vat
        receipt.save(update_fields=["vat"])
    # Stored as the JSON it is sent as: a retry sends exactly this again.
    return json.loads(to_json(build_document(payment, amount=receipt.amount, vat=vat)))


def _fail(receipt: FiscalReceipt, error: str) -> None:
    receipt.status = ReceiptStatus.FAILED
    receipt.last_error = error[:1000]
    receipt.next_attempt_at = None
    receipt.save(update_fields=["status", "last_error", "next_attempt_at", "request"])
    audit.record(
        actor=None,
        action="payments.receipt_failed",
        obj=receipt.payment,
        subscriber_id=receipt.payment.subscriber_id,
        after={"receipt": receipt.external_id, "error": receipt.last_error},
    )
    events.emit("payments.receipt_failed", receipt_id=receipt.pk)


# A send refused with these codes created no document at the provider (our settings, the document's content).
REFUSED_FOR_SURE = {"settings", "document", "operation"}


@transaction.atomic
def _record_error(receipt: FiscalReceipt, exc: fiscal.FiscalError, *, sent_before: bool = True) -> FiscalReceipt:
    receipt = FiscalReceipt.objects.select_for_update().get(pk=receipt.pk)
    if receipt.status not in (ReceiptStatus.QUEUED, ReceiptStatus.SENT):
        return receipt
    if receipt.status == ReceiptStatus.QUEUED and not exc.retryable and exc.code in REFUSED_FOR_SURE:
        # This send was refused for sure: the document may be at the provider only if an earlier one got there.
        receipt.maybe_sent = sent_before
        receipt.save(update_fields=["maybe_sent"])
    if exc.retryable or receipt.status == ReceiptStatus.SENT:
        # A sent document exists at the provider whatever the error: keep asking (next_attempt_at is set).
        receipt.last_error = str(exc)[:1000]
        receipt.save(update_fields=["last_error"])
        return receipt
    _fail(receipt, str(exc))
    return receipt


@transaction.atomic
def _record_sent(receipt: FiscalReceipt, uuid: str) -> FiscalReceipt:
    receipt = FiscalReceipt.objects.select_for_update().get(pk=receipt.pk)
    if receipt.status != ReceiptStatus.QUEUED:
        return receipt
    receipt.status = ReceiptStatus.SENT
    receipt.uuid = uuid[:64]
    receipt.sent_at = clock.now()
    receipt.attempts = 0  # polling backs off afresh
    receipt.next_attempt_at = clock.now() + backoff(1)
    receipt.last_error = ""
    receipt.save(update_fields=["status", "uuid", "sent_at", "attempts", "next_attempt_at", "last_error"])
    return receipt


@transaction.atomic
def do_apply_report(receipt: FiscalReceipt, report: fiscal.FiscalReport) -> FiscalReceipt:
    """Store what the provider's report says: done (with the fiscal attributes), failed, or still waiting."""
    receipt = FiscalReceipt.objects.select_for_update().get(pk=receipt.pk)
    if receipt.status != ReceiptStatus.SENT or (report.uuid and report.uuid != receipt.uuid):
        return receipt
    if report.status == "wait":
        return receipt
    if report.status == "fail":
        receipt.report = report.raw
        receipt.maybe_sent = False  # the cash register refused it: nothing was fiscalized
        _fail(receipt, report.error or _("The cash register refused the receipt."))
        receipt.save(update_fields=["report", "maybe_sent"])
        return receipt
    if report.total is not None and report.total != receipt.amount:
        # Not our document: another installation (or a restored backup) holds our id at the provider with its own
        # total. Never "done" with someone else's fiscal attributes; staff retry it under a new id.
        receipt.report = report.raw
        receipt.maybe_sent = False  # our id was taken: our own document never got in
        _fail(
            receipt,
            _("The provider's document under our id is for %(theirs)s, not %(ours)s: not ours.")
            % {"theirs": report.total, "ours": receipt.amount},
        )
        receipt.save(update_fields=["report", "maybe_sent"])
        return receipt
    receipt.status = ReceiptStatus.DONE
    receipt.done_at = clock.now()
    receipt.next_attempt_at = None
    receipt.last_error = ""
    for name in (
        "fn_number",
        "fiscal_receipt_number",
        "fiscal_document_number",
        "fiscal_document_attribute",
        "ecr_registration_number",
        "shift_number",
        "receipt_datetime",
        "ofd_url",
    ):
        setattr(receipt, name, getattr(report, name))
    receipt.fiscal_total = report.total
    receipt.report = report.raw
    receipt.save()
    events.emit("payments.receipt_done", receipt_id=receipt.pk)
    return receipt


def do_receipt_callback(uuid: str) -> FiscalReceipt | None:
    """The provider says the document ``uuid`` changed: fetch its report from the provider and apply that."""
    receipt = FiscalReceipt.objects.filter(uuid=uuid).first()
    if receipt is None:
        return None
    if receipt.status != ReceiptStatus.SENT:
        return receipt
    report = fiscal.get(receipt.provider).get_report(receipt.uuid)
    return do_apply_report(receipt, report)


@transaction.atomic
def do_retry_receipt(receipt: FiscalReceipt, *, acting_user) -> FiscalReceipt:
    """Queue a failed receipt again after its cause was fixed, rebuilt from the current settings. A document the
    provider had accepted (and then failed) holds its id there, so the retry goes out under a new one."""
    check_perm(acting_user, Perm.PAYMENT_SETTINGS)
    receipt = FiscalReceipt.objects.select_for_update().get(pk=receipt.pk)
    if receipt.status != ReceiptStatus.FAILED:
        raise ValidationError(_("Only a failed receipt can be sent again."), code="receipt_not_failed")
    if receipt.operation == ReceiptOperation.SELL and receipt.payment.status == PaymentStatus.CANCELLED:
        raise ValidationError(_("The payment was cancelled: it needs no receipt."), code="payment_cancelled")
    before = {"status": receipt.status, "error": receipt.last_error, "external_id": receipt.external_id}
    if receipt.operation == ReceiptOperation.SELL:
        receipt.provider = _provider_code()  # the provider may be what was fixed
    if receipt.uuid:
        receipt.generation += 1
        receipt.external_id = external_id_for(receipt)
        receipt.uuid = ""
    receipt.status = ReceiptStatus.QUEUED
    # ``attempts`` and ``maybe_sent`` are kept: the earlier attempts may have reached the provider.
    receipt.next_attempt_at = clock.now()
    receipt.request = {}
    if receipt.operation == ReceiptOperation.SELL:
        receipt.vat = ""  # recomputed from the current VAT settings
    receipt.save()
    audit.record(
        actor=acting_user,
        action="payments.receipt_retried",
        obj=receipt.payment,
        subscriber_id=receipt.payment.subscriber_id,
        before=before,
        after={"status": receipt.status, "external_id": receipt.external_id},
    )
    return receipt
