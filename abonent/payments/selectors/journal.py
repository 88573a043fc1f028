"""Reads of payments for the console: the journal with its totals, a payment's card, the suspense queue, open
conflicts, the cash desk's suggested amount and the cash report.

Branch limits: ``payments.visible_payments`` (a payment of no subscriber, in suspense, is the whole ISP's).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from abonent.billing import selectors as billing
from abonent.billing.models import LedgerTransaction, Posting, SubscriptionStatus
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core import clock
from abonent.core.money import quantize
from abonent.staff.permissions import allowed_branch_ids

from ..models import CashDay, Payment, PaymentConflict, PaymentStatus, Refund, RefundStatus
from .dates import clamp_day
from .payments import visible_payments

ZERO = Decimal("0.00")


def day_bounds(first: dt.date, last: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
    """``[start of first, start of the day after last)`` in the operator's time zone."""
    # Clamped (selectors.dates): the day after 9999-12-31 does not exist, and no payment lies outside anyway.
    first, last = clamp_day(first), clamp_day(last or first)
    start = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min))
    return start, end


@dataclass(frozen=True)
class JournalFilters:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    channel: str = ""
    method: str = ""
    status: str = ""
    cashier_id: int | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    query: str = ""  # an account number, a payer's name, a payment id


def journal(user, filters: JournalFilters) -> QuerySet[Payment]:
    """The payments the user may see matching ``filters``, newest first."""
    qs = visible_payments(user)
    if filters.date_from:
        qs = qs.filter(received_at__gte=day_bounds(filters.date_from)[0])
    if filters.date_to:
        qs = qs.filter(received_at__lt=day_bounds(filters.date_to)[1])
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.method:
        qs = qs.filter(method=filters.method)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.cashier_id:
        qs = qs.filter(taken_by_id=filters.cashier_id)
    if filters.amount_min is not None:
        qs = qs.filter(amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        qs = qs.filter(amount__lte=filters.amount_max)
    text = filters.query.strip()
    if text:
        qs = qs.filter(
            Q(account_ref=text)
            | Q(subscriber__account_number=text)
            | Q(subscriber__legacy_account=text)
            | Q(external_id=text)
            | Q(payer__icontains=text)
            | Q(subscriber__display_name__icontains=text)
        )
    return qs.order_by("-received_at", "-id")


@dataclass
class JournalTotals:
    count: int
    total: Decimal
    # Credited and not cancelled, less what was refunded: what the set brought in.
    credited: Decimal
    by_channel: list[dict] = field(default_factory=list)


def journal_totals(qs: QuerySet[Payment]) -> JournalTotals:
    qs = qs.order_by()
    sums = qs.aggregate(
        count=Count("id"),
        total=Sum("amount"),
        credited=Sum("amount", filter=Q(status=PaymentStatus.CREDITED)),
        refunded=Sum("refunded_amount", filter=Q(status=PaymentStatus.CREDITED)),
    )
    by_channel = [
        {**row, "total": quantize(row["total"])}
        for row in qs.values("channel").annotate(count=Count("id"), total=Sum("amount")).order_by("channel")
    ]
    # SQLite sums decimals without their places: every sum is brought back to kopecks.
    return JournalTotals(
        count=sums["count"],
        total=quantize(sums["total"] or ZERO),
        credited=quantize((sums["credited"] or ZERO) - (sums["refunded"] or ZERO)),
        by_channel=by_channel,
    )


def channels_in_use() -> list[str]:
    return list(Payment.objects.order_by("channel").values_list("channel", flat=True).distinct())


def suspense_queue(user) -> QuerySet[Payment]:
    return visible_payments(user).filter(status=PaymentStatus.SUSPENSE).order_by("-received_at", "-id")


def visible_conflicts(user) -> QuerySet[PaymentConflict]:
    ids = allowed_branch_ids(user)
    qs = PaymentConflict.objects.select_related("payment", "payment__subscriber")
    return qs if ids is None else qs.filter(payment__subscriber__branch_id__in=ids)


def open_conflicts(user) -> QuerySet[PaymentConflict]:
    return visible_conflicts(user).filter(resolved_at__isnull=True).order_by("-last_at", "-id")


def get_conflict(user, pk: int) -> PaymentConflict:
    conflict = visible_conflicts(user).filter(pk=pk).first()
    if conflict is None:
        raise Http404
    return conflict


def subscriber_payments(subscriber, *, limit: int = 10) -> list[Payment]:
    return list(Payment.objects.filter(subscriber_id=subscriber.pk).select_related("taken_by")[:limit])


@dataclass(frozen=True)
class TransactionLine:
    transaction: LedgerTransaction
    role: str  # "payment", "assignment", "cancellation", "refund", "refund reversal"
    postings: list[Posting]


def payment_transactions(payment: Payment) -> list[TransactionLine]:
    """Every ledger transaction of the payment (its intake, an assignment, a cancellation, refunds), with legs."""
    roles: list[tuple[int, str]] = [(payment.transaction_id, "payment")]
    if payment.assign_transaction_id:
        roles.append((payment.assign_transaction_id, "assignment"))
    if payment.cancel_transaction_id:
        roles.append((payment.cancel_transaction_id, "cancellation"))
    for refund in payment.refunds.all():
        if refund.transaction_id:
            roles.append((refund.transaction_id, "refund"))
        if refund.reversal_transaction_id:
            roles.append((refund.reversal_transaction_id, "refund_reversal"))
    # A cancelled assignment is reversed by a transaction that names it: shown too.
    ids = [pk for pk, _role in roles]
    reversals = LedgerTransaction.objects.filter(reverses_id__in=ids).exclude(pk__in=ids)
    roles += [(tx.pk, "reversal") for tx in reversals]
    txs = LedgerTransaction.objects.in_bulk([pk for pk, _role in roles])
    postings: dict[int, list[Posting]] = {}
    for posting in Posting.objects.filter(transaction_id__in=txs).select_related("account").order_by("id"):
        postings.setdefault(posting.transaction_id, []).append(posting)
    return [TransactionLine(txs[pk], role, postings.get(pk, [])) for pk, role in roles if pk in txs]


def suggested_amount(subscriber) -> Decimal:
    """What brings the balance to the next month's fees: the monthly fees of the subscriber's active plans at the
    start of next month, less a positive balance (never below zero)."""
    today = clock.today()
    next_month = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    fees = ZERO
    for subscription in billing.current_subscriptions(subscriber).filter(status=SubscriptionStatus.ACTIVE):
        plan = subscription.pending_plan if subscription.pending_plan_id else subscription.plan
        try:
            fees += price_on(plan, next_month).monthly_fee
        except NoPriceError:
            continue
    balance = billing.get_balance(subscriber).balance
    return max(fees - balance, ZERO)


@dataclass(frozen=True)
class CashTotals:
    payments_count: int
    payments_total: Decimal
    cancelled_count: int
    cancelled_total: Decimal
    refunds_total: Decimal
    by_method: dict[str, Decimal]

    @property
    def net_total(self) -> Decimal:
        return self.payments_total - self.cancelled_total - self.refunds_total


def cashier_payments(cashier_id: int, day: dt.date) -> QuerySet[Payment]:
    start, end = day_bounds(day)
    return (
        Payment.objects.filter(taken_by_id=cashier_id, received_at__gte=start, received_at__lt=end)
        .select_related("subscriber")
        .order_by("received_at", "id")
    )


def cashier_refunds(cashier_id: int, day: dt.date) -> QuerySet[Refund]:
    """Refunds of cash payments the cashier paid out (recorded) that day."""
    start, end = day_bounds(day)
    return (
        Refund.objects.filter(
            created_by_id=cashier_id,
            created_at__gte=start,
            created_at__lt=end,
            payment__channel="cash",
            status=RefundStatus.SUCCEEDED,
        )
        .select_related("payment", "payment__subscriber")
        .order_by("created_at", "id")
    )


def cash_day_totals(cashier_id: int, day: dt.date) -> CashTotals:
    payments = cashier_payments(cashier_id, day).order_by()
    sums = payments.aggregate(
        count=Count("id"),
        total=Sum("amount"),
        cancelled_count=Count("id", filter=Q(status=PaymentStatus.CANCELLED)),
        cancelled=Sum("amount", filter=Q(status=PaymentStatus.CANCELLED)),
    )
    by_method = {
        row["method"]: quantize(row["total"])
        for row in payments.exclude(status=PaymentStatus.CANCELLED)
        .values("method")
        .annotate(total=Sum("amount"))
        .order_by("method")
    }
    refunds = cashier_refunds(cashier_id, day).order_by().aggregate(total=Sum("amount"))["total"]
    return CashTotals(
        payments_count=sums["count"],
        payments_total=quantize(sums["total"] or ZERO),
        cancelled_count=sums["cancelled_count"],
        cancelled_total=quantize(sums["cancelled"] or ZERO),
        refunds_total=quantize(refunds or ZERO),
        by_method=by_method,
    )


def cash_day(cashier_id: int, day: dt.date) -> CashDay | None:
    return CashDay.objects.filter(cashier_id=cashier_id, date=day).first()


def cash_days(user, *, all_cashiers: bool, limit: int = 100) -> list[CashDay]:
    qs = CashDay.objects.select_related("cashier")
    if not all_cashiers:
        qs = qs.filter(cashier_id=user.pk)
    return list(qs.order_by("-date", "cashier__username")[:limit])
