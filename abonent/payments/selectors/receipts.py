"""Reads of payments for views, the API and tasks."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from abonent.staff.permissions import allowed_branch_ids

from ..models import FiscalReceipt, Payment, ReceiptStatus

RECEIPTS_NOT_DONE = (ReceiptStatus.QUEUED, ReceiptStatus.SENT, ReceiptStatus.FAILED)


def receipts_of_payment(payment: Payment) -> list[FiscalReceipt]:
    """A payment's receipts: the income receipt first, then return receipts, oldest first."""
    return list(
        FiscalReceipt.objects.filter(payment=payment).select_related("refund").order_by("operation", "created_at", "id")
    )


def receipts_not_done(user, *, status: str = "") -> QuerySet[FiscalReceipt]:
    """Receipts staff should watch (queued, sent and not yet reported, failed), failed first, for ``user``'s
    branches; a payment of an unknown account (in suspense) belongs to no branch and is shown to everyone."""
    wanted = [status] if status in RECEIPTS_NOT_DONE else list(RECEIPTS_NOT_DONE)
    queryset = FiscalReceipt.objects.filter(status__in=wanted).select_related("payment", "payment__subscriber")
    branches = allowed_branch_ids(user)
    if branches is not None:
        queryset = queryset.filter(Q(payment__subscriber__branch__in=branches) | Q(payment__subscriber__isnull=True))
    return queryset.order_by("status", "created_at", "id")
