"""Reads for the portal's Pay section: the amount to suggest, a checkout as the subscriber sees it, receipts, and
the statement of account for any dates. Every function takes the signed-in subscriber and reads only their rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Prefetch, Q, Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from abonent.billing.calculations import add_months
from abonent.billing.ledger import BATCH_KEY_PREFIX
from abonent.billing.models import Charge, LedgerAccount, LedgerTransaction, Posting, TransactionKind
from abonent.billing.selectors import charge_description, get_balance
from abonent.core import clock
from abonent.core.money import ZERO, format_money, quantize
from abonent.payments import gateways
from abonent.payments.models import (
    Checkout,
    FiscalReceipt,
    Payment,
    ReceiptOperation,
    ReceiptStatus,
)
from abonent.payments.selectors import decode_cursor, encode_cursor
from abonent.payments.selectors.autopay import fees_between

PROVIDER = "yookassa"
# The longest statement one request may ask for: a page (and a CSV) of at most about three years of lines.
STATEMENT_MAX_DAYS = 3 * 366
RECEIPTS_PAGE = 30


def online_payments_available() -> bool:
    """Whether the gateway is configured (the pay form is offered only then)."""
    return PROVIDER in gateways.registered()


def online_payment_max() -> Decimal:
    return quantize(settings.ABONENT_ONLINE_PAYMENT_MAX)


# --- The suggested amount ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """What to pay so that the balance covers the fees of the coming month: ``amount`` in whole roubles (0 when the
    balance already covers them). ``fees`` are the charges due from today until ``until`` (exclusive), ``balance``
    today's balance, ``promised`` the open promised payment that the next payment repays (it is in the balance,
    but it is not the subscriber's money)."""

    amount: Decimal
    fees: Decimal
    balance: Decimal
    promised: Decimal
    until: dt.date
    next_charge_on: dt.date | None


def suggested_amount(subscriber) -> Suggestion:
    """The fees the billing run will charge from today to the same day next month (a monthly plan's next fee, a
    daily plan's days; ``payments.selectors.autopay.fees_between``, which autopay's "cover" uses too), less the
    balance net of an open promised payment; a debt adds itself. Rounded up to whole roubles, never below zero.
    The credit limit is not counted: the suggestion keeps the balance itself above zero."""
    today = clock.today()
    until = add_months(today, 1)
    fees = fees_between(subscriber.pk, today, until)
    due = sum((amount for _day, amount in fees), ZERO)
    balance = get_balance(subscriber)
    short = due - (balance.balance - balance.promised)
    amount = short.to_integral_value(rounding=ROUND_CEILING) if short > 0 else ZERO
    return Suggestion(
        amount=quantize(amount),
        fees=quantize(due),
        balance=balance.balance,
        promised=balance.promised,
        until=until,
        next_charge_on=fees[0][0] if fees else None,
    )


# --- A checkout as the subscriber sees it ------------------------------------------------------------------------

# YooKassa's cancellation reasons (https://yookassa.ru/developers/payment-acceptance/after-the-payment/declined-payments)
# and our own failure codes, in the subscriber's words. Anything else: the generic sentence.
FAILURE_REASONS = {
    "insufficient_funds": gettext_lazy("There was not enough money on the card or account."),
    "card_expired": gettext_lazy("The card has expired."),
    "invalid_card_number": gettext_lazy("The card number is wrong."),
    "invalid_csc": gettext_lazy("The security code (CVC) is wrong."),
    "3d_secure_failed": gettext_lazy("The bank's confirmation (3-D Secure) did not succeed."),
    "call_issuer": gettext_lazy("The bank declined the payment: please call your bank."),
    "fraud_suspected": gettext_lazy("The bank declined the payment: please call your bank."),
    "issuer_unavailable": gettext_lazy("Your bank did not answer. Please try again a little later."),
    "payment_method_limit_exceeded": gettext_lazy("A limit of the card or account was reached."),
    "payment_method_restricted": gettext_lazy("Payments with this card or account are restricted by the bank."),
    "country_forbidden": gettext_lazy("Cards issued in this country are not accepted."),
    "expired_on_confirmation": gettext_lazy("The payment was not confirmed in time."),
    "canceled_by_merchant": gettext_lazy("The payment was cancelled."),
    "canceled": gettext_lazy("The payment was cancelled."),
    "create_unconfirmed": gettext_lazy("The payment service never confirmed the payment."),
}


def recent_checkouts(subscriber, limit: int = 5) -> list[Checkout]:
    return list(Checkout.objects.filter(subscriber_id=subscriber.pk).order_by("-created_at", "-id")[:limit])


def decline_reason(code: str) -> str:
    """A gateway's decline code in the subscriber's words, or empty when it has none we know."""
    known = FAILURE_REASONS.get(code)
    return str(known) if known else ""


def failure_reason(checkout: Checkout) -> str:
    """Why a failed checkout was not paid, for the subscriber (never the gateway's raw text)."""
    known = FAILURE_REASONS.get(checkout.failure_code)
    return str(known) if known else _("The payment was declined.")


def checkout_ref(key: str) -> str:
    """The last part of a portal checkout's key (``portal:<subscriber>:<ref>``): the gateway's return address
    carries it, since the checkout's id is not known before the checkout is created."""
    return key.rsplit(":", 1)[-1]


def checkout_key(subscriber, ref: str) -> str:
    """Scoped to the subscriber: one subscriber's form key or Idempotency-Key never finds another's checkout."""
    return f"portal:{subscriber.pk}:{ref}"


def needs_sync(checkout: Checkout, *, every_seconds: int = 5) -> bool:
    """Whether the status page should ask the gateway now: the checkout is pending, and it was not asked in the
    last few seconds (the page polls; the gateway is not asked on every poll of every open tab)."""
    if checkout.status != "pending":
        return False
    return checkout.synced_at is None or clock.now() - checkout.synced_at >= dt.timedelta(seconds=every_seconds)


def safe_link(url: str) -> str:
    """A link from the gateway to show or redirect to: only http(s) (never ``javascript:``)."""
    return url if url.lower().startswith(("https://", "http://")) else ""


# --- Receipts ----------------------------------------------------------------------------------------------------


@dataclass
class ReceiptsPage:
    payments: list[Payment]
    next_cursor: str | None


def _receipts_prefetch() -> Prefetch:
    return Prefetch(
        "receipts",
        queryset=FiscalReceipt.objects.select_related("refund").order_by("operation", "created_at", "id"),
    )


def payments_with_receipts(subscriber, *, cursor: str = "", limit: int = RECEIPTS_PAGE) -> ReceiptsPage:
    """The subscriber's payments newest first, each with its receipts (``payment.receipts.all()``), ``limit`` at
    a time. A cursor that is not one this gave raises ``ValidationError`` (``cursor_invalid``)."""
    queryset = Payment.objects.filter(subscriber_id=subscriber.pk).order_by("-received_at", "-id")
    if cursor:
        at, pk = decode_cursor(cursor)
        queryset = queryset.filter(Q(received_at__lt=at) | Q(received_at=at, pk__lt=pk))
    rows = list(queryset.prefetch_related(_receipts_prefetch())[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return ReceiptsPage(rows, encode_cursor(rows[-1]) if more and rows else None)


def payment_receipts(payment: Payment) -> list[FiscalReceipt]:
    return list(payment.receipts.select_related("refund").order_by("operation", "created_at", "id"))


def receipt_state(receipts) -> str:
    """The income receipt's state in the subscriber's words: ``registered`` (done, fiscal data known), ``pending``
    (queued, sent, or held up for staff to fix), ``not_required``, or ``none`` (no receipt row)."""
    sells = [r for r in receipts if r.operation == ReceiptOperation.SELL]
    if not sells:
        return "none"
    status = sells[0].status
    if status == ReceiptStatus.DONE:
        return "registered"
    if status == ReceiptStatus.NOT_REQUIRED:
        return "not_required"
    return "pending"


RECEIPT_STATES = {
    "registered": gettext_lazy("Registered"),
    "pending": gettext_lazy("Being registered"),
    "not_required": gettext_lazy("Not required"),
    "none": gettext_lazy("No receipt"),
}


def fns_site_url(receipt: FiscalReceipt) -> str:
    """The FNS site printed on the receipt (tag 1060), as a link when it is a bare host name."""
    site = (receipt.ofd_url or "").strip()
    if not site or " " in site:
        return ""
    return safe_link(site) or f"https://{site}"


# --- The statement of account ------------------------------------------------------------------------------------


@dataclass
class StatementLine:
    posting_id: int
    transaction_id: int
    date: dt.date
    recorded_at: dt.datetime
    kind: str
    kind_label: str
    description: str
    amount: Decimal
    balance_after: Decimal
    reversed: bool


@dataclass
class Statement:
    start: dt.date
    end: dt.date
    opening: Decimal
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def credits(self) -> Decimal:
        """What came in: payments, credits, reversed charges (every positive line)."""
        return sum((line.amount for line in self.lines if line.amount > 0), ZERO)

    @property
    def debits(self) -> Decimal:
        """What went out, as a negative sum: charges, refunds, reversed payments."""
        return sum((line.amount for line in self.lines if line.amount < 0), ZERO)

    @property
    def closing(self) -> Decimal:
        return self.opening + self.credits + self.debits


def check_period(start: dt.date, end: dt.date) -> None:
    """A statement's dates: in order, and at most ``STATEMENT_MAX_DAYS`` apart (``ValidationError`` on ``to``)."""
    if start > end:
        raise ValidationError(
            {"to": ValidationError(_("The start date is after the end date."), code="dates_reversed")}
        )
    if end - start > dt.timedelta(days=STATEMENT_MAX_DAYS):
        raise ValidationError(
            {
                "to": ValidationError(
                    _("A statement covers at most three years: choose a shorter period."), code="period_too_long"
                )
            }
        )


def statement(subscriber, start: dt.date, end: dt.date) -> Statement:
    """The subscriber's account from ``start`` to ``end`` (both included, by the ledger's accounting date): the
    balance before ``start``, every posting on the subscriber's account in between in the ledger's order
    (date, then recording), each with the balance after it. Set-based: one sum, one list, and one query each for
    the descriptions of batch fees and of payments. ``opening + Σ amounts = closing`` by construction."""
    account_id = LedgerAccount.objects.filter(subscriber_id=subscriber.pk).values_list("pk", flat=True).first()
    if account_id is None:
        return Statement(start, end, ZERO)
    postings = Posting.objects.filter(account_id=account_id)
    opening = postings.filter(transaction__effective_date__lt=start).aggregate(s=Sum("amount"))["s"] or ZERO
    rows = list(
        postings.filter(transaction__effective_date__gte=start, transaction__effective_date__lte=end)
        .annotate(reversed=Exists(LedgerTransaction.objects.filter(reverses_id=OuterRef("transaction_id"))))
        .select_related("transaction")
        .order_by("transaction__effective_date", "transaction_id", "id")
    )
    descriptions = _descriptions(subscriber, [p.transaction for p in rows])
    labels = dict(TransactionKind.choices)
    result = Statement(start, end, opening)
    running = opening
    for posting in rows:
        tx = posting.transaction
        running += posting.amount
        result.lines.append(
            StatementLine(
                posting_id=posting.pk,
                transaction_id=tx.pk,
                date=tx.effective_date,
                recorded_at=tx.created_at,
                kind=tx.kind,
                kind_label=str(labels.get(tx.kind, tx.kind)),
                description=descriptions.get(tx.pk, tx.memo),
                amount=posting.amount,
                balance_after=running,
                reversed=posting.reversed,
            )
        )
    return result


def _descriptions(subscriber, transactions: list[LedgerTransaction]) -> dict[int, str]:
    """What a line was for where the transaction's memo does not say: a billing run's batch (its memo is the
    run's) by the subscriber's charges in it; a payment by how it was paid."""
    described: dict[int, list[str]] = {}
    batches = [tx.pk for tx in transactions if tx.idempotency_key.startswith(BATCH_KEY_PREFIX)]
    if batches:
        charges = (
            Charge.objects.filter(transaction_id__in=batches, subscription__subscriber_id=subscriber.pk)
            .select_related("price__plan")
            .order_by("period_start", "id")
        )
        for charge in charges:
            described.setdefault(charge.transaction_id, []).append(charge_description(charge))
    paid = [tx.pk for tx in transactions if tx.kind == TransactionKind.PAYMENT]
    if paid:
        payments = Payment.objects.filter(
            Q(transaction_id__in=paid) | Q(assign_transaction_id__in=paid), subscriber_id=subscriber.pk
        )
        for payment in payments:
            how = payment.get_method_display()
            for tx_id in (payment.transaction_id, payment.assign_transaction_id):
                if tx_id in paid:
                    described.setdefault(tx_id, []).append(str(how))
    return {pk: "; ".join(parts) for pk, parts in described.items()}


# --- The consent wordings (shown, and stored verbatim with what they consent to) ----------------------------------


def save_consent_text(subscriber) -> str:
    """What the subscriber agrees to by ticking "save this card for autopay" (YooKassa requires the shop to obtain
    and keep it: the debits' schedule and amount, and how to stop them). Passed verbatim as the checkout's
    ``consent_text``; the saved method keeps it."""
    return _(
        "I agree that %(brand)s keeps this bank card with its payment service and may debit it without asking me "
        "each time, to pay for services on account %(account)s: only when I turn autopay on, on the schedule and "
        "up to the amount I set there, and never more than %(max)s at once. I can unlink the card or turn autopay "
        "off at any time under Pay → Autopay in my account."
    ) % {
        "brand": settings.ABONENT_PORTAL_BRAND,
        "account": subscriber.account_number,
        "max": format_money(settings.ABONENT_AUTOPAY_MAX_AMOUNT),
    }


def autopay_consent_text(subscriber) -> str:
    """What the subscriber agrees to by turning autopay on (stored in the audit log with the settings chosen)."""
    return _(
        "I agree that the chosen card or account is debited automatically, without asking me each time, to pay for "
        "services on account %(account)s: when these settings say and the amount they say, never more than %(max)s "
        "at once, until I turn autopay off or unlink the card on this page."
    ) % {"account": subscriber.account_number, "max": format_money(settings.ABONENT_AUTOPAY_MAX_AMOUNT)}
