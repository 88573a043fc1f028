"""Reads of the run records and verifications, for the finance pages (abonent/reports)."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.http import Http404

from abonent.staff.permissions import scope_to_branches

from .models import BillingRunRecord, LedgerVerification, ParkedSubscription, ParkReason
from .verification import pending_verification

__all__ = ["pending_verification"]


def run_records() -> QuerySet[BillingRunRecord]:
    return BillingRunRecord.objects.all()


def get_run_record(pk: int) -> BillingRunRecord:
    record = BillingRunRecord.objects.filter(pk=pk).first()
    if record is None:
        raise Http404("no such billing run")
    return record


def parked_reasons(record: BillingRunRecord) -> list[dict]:
    """How many subscriptions the run parked for each reason (all of them: the run is the whole ISP's)."""
    rows = record.parked_subscriptions.order_by("reason").values("reason").annotate(count=Count("id"))
    return [{**row, "label": ParkReason(row["reason"]).label} for row in rows]


def parked_of(record: BillingRunRecord, user) -> QuerySet[ParkedSubscription]:
    """The run's parked subscriptions whose subscriber ``user`` sees, with the subscriber and plan to show."""
    qs = record.parked_subscriptions.select_related("subscription__subscriber", "subscription__plan")
    return scope_to_branches(qs, user, "subscription__subscriber__branch")


def verifications() -> QuerySet[LedgerVerification]:
    return LedgerVerification.objects.select_related("requested_by")


def latest_verification() -> LedgerVerification | None:
    """The last verification that came to a result (ok, problems or failed)."""
    done = [LedgerVerification.Status.OK, LedgerVerification.Status.PROBLEMS, LedgerVerification.Status.FAILED]
    return verifications().filter(status__in=done).order_by("-finished_at", "-id").first()
