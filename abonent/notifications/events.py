"""Other apps' events turned into messages, each with a stable key, so a replayed event queues nothing twice.

- the payments ``PaymentNotice`` outbox, drained every minute by ``drain_payment_notices`` (``jobs``), which marks
  each notice delivered in the same transaction as its messages:
  - ``payment_received`` (written with the payment: by the intake, an assignment from suspense, and the terminal
    fast path's SQL function) → PAYMENT_RECEIVED (``payment:<payment id>``): the amount, the balance right after it,
    when it was paid, and the fiscal receipt's check link. The receipt is issued a little after the payment, so a
    notice whose receipt is still pending stays in the outbox (undelivered) for ``RECEIPT_WAIT`` at most; the drain
    after the receipt is done sends it with the link, and one after the wait without (never held back for it).
    ``payments.receipt_done`` / ``receipt_failed`` drain that one notice at once, so the message need not wait
    for the next minute;
  - autopay reminder and outcome, a method unlinked → ``paynotice:<notice id>``.
- ``subscription.plan_changed`` (a change made now) and billing's ``plans_switched`` signal (a scheduled change a
  billing run put in force, inside the run's chunk transaction) → PLAN_CHANGED (``plan:<subscription>:<plan>:<date>``).

Nothing here runs in a payment's request: ``payments.payment_received`` has no handler in this app (the outbox row
commits with the payment, and the drain reads the rest set-based, per chunk).

This app is a sink (the package docstring): billing and payments rows are read inside the handlers, never
imported at module level, and billing's signal is connected from ``apps.ready`` (``connect_billing``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from abonent.catalog.models import Plan
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core import clock
from abonent.core.events import on

from .models import Event
from .queueing import Notice, notify, notify_many

logger = logging.getLogger(__name__)

# How long a payment's notice waits in the outbox for its fiscal receipt (usually issued within seconds).
RECEIPT_WAIT = dt.timedelta(minutes=2)
# PaymentNotice kinds (payments.models.NoticeKind) → events; a kind not listed stays undelivered until it is.
NOTICE_EVENTS = {
    "autopay_reminder": Event.AUTOPAY_REMINDER,
    "autopay_succeeded": Event.AUTOPAY_SUCCEEDED,
    "autopay_declined": Event.AUTOPAY_DECLINED,
    "autopay_retry_scheduled": Event.AUTOPAY_RETRY_SCHEDULED,
    "autopay_stopped": Event.AUTOPAY_STOPPED,
    "method_unlinked": Event.METHOD_UNLINKED,
    "payment_received": Event.PAYMENT_RECEIVED,
}
PAYMENT_RECEIVED = "payment_received"
NOTICE_CHUNK = 500


def _date(value) -> str:
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            return value
    return value.strftime("%d.%m.%Y") if isinstance(value, dt.date) else ""


def _moment(value: dt.datetime) -> str:
    return timezone.localtime(value).strftime("%d.%m.%Y %H:%M")


def _money(value) -> str:
    return f"{Decimal(value):.2f}"


# Payments


def _receipt_link(receipt) -> str:
    if receipt is None:
        return ""
    try:
        return receipt.check_url
    except Exception:  # a malformed check URL setting must not lose the payment's message
        logger.exception("receipt %s: no check link", receipt.pk)
        return ""


def _check_links_on() -> bool:
    return bool((settings.ABONENT_FISCAL_CHECK_URL or "").strip())


def _receipt_pending(receipt) -> bool:
    """Whether a link may still come: the receipt queued or sent (or not recorded yet: the receipt queue's handler
    runs just after the payment commits), and check links configured at all."""
    from abonent.payments.models import ReceiptStatus

    return _check_links_on() and (receipt is None or receipt.status in (ReceiptStatus.QUEUED, ReceiptStatus.SENT))


def _received_contexts(payment_ids: list[int]) -> dict[int, tuple[int, dict, object]]:
    """payment id → (subscriber id, values, its income receipt or None), for the credited payments among
    ``payment_ids`` (cancelled, back in suspense or gone: left out). Five queries whatever the count."""
    from abonent.billing.models import LedgerAccount, Posting
    from abonent.payments.models import FiscalReceipt, Payment, PaymentStatus, ReceiptOperation

    payments = list(
        Payment.objects.filter(pk__in=payment_ids, status=PaymentStatus.CREDITED, subscriber__isnull=False).only(
            "pk", "subscriber_id", "amount", "received_at", "transaction_id", "assign_transaction_id"
        )
    )
    if not payments:
        return {}
    accounts = {
        subscriber_id: (pk, balance)
        for subscriber_id, pk, balance in LedgerAccount.objects.filter(
            subscriber_id__in={p.subscriber_id for p in payments}
        ).values_list("subscriber_id", "pk", "balance")
    }

    def crediting(payment) -> int:
        # The transaction that put the money on the subscriber's account: an assignment's, for one from suspense.
        return payment.assign_transaction_id or payment.transaction_id

    # The balance right after each payment: today's less what was posted to its account after it (a few rows, by
    # the (account, transaction) index), so a notice drained late still tells the balance the payment made.
    since: dict[int, int] = {}
    for payment in payments:
        if payment.subscriber_id in accounts:
            account_id = accounts[payment.subscriber_id][0]
            since[account_id] = min(since.get(account_id, crediting(payment)), crediting(payment))
    later: dict[int, list[tuple[int, Decimal]]] = {}
    if since:
        condition = Q()
        for account_id, transaction_id in since.items():
            condition |= Q(account_id=account_id, transaction_id__gt=transaction_id)
        for account_id, transaction_id, amount in Posting.objects.filter(condition).values_list(
            "account_id", "transaction_id", "amount"
        ):
            later.setdefault(account_id, []).append((transaction_id, amount))
    receipts: dict[int, object] = {}
    for receipt in FiscalReceipt.objects.filter(
        payment_id__in=[p.pk for p in payments], operation=ReceiptOperation.SELL
    ).order_by("id"):
        receipts.setdefault(receipt.payment_id, receipt)

    found = {}
    for payment in payments:
        balance = ""
        if payment.subscriber_id in accounts:
            account_id, current = accounts[payment.subscriber_id]
            after = sum((amount for tx, amount in later.get(account_id, ()) if tx > crediting(payment)), Decimal(0))
            balance = _money(current - after)
        receipt = receipts.get(payment.pk)
        values = {
            "amount": _money(payment.amount),
            "balance": balance,
            "paid_at": _moment(payment.received_at),
            "receipt_link": _receipt_link(receipt),
        }
        found[payment.pk] = (payment.subscriber_id, values, receipt)
    return found


def _payment_id(notice) -> int | None:
    try:
        return int(notice.payload.get("payment_id"))
    except (TypeError, ValueError, AttributeError):
        return None


def _notice_context(payload: dict) -> dict:
    values = dict(payload)
    for name in ("due_on", "next_try_on"):
        if name in values:
            values[name] = _date(values[name])
    if values.get("amount") not in (None, ""):
        with contextlib.suppress(ArithmeticError):
            values["amount"] = _money(values["amount"])
    return values


def _messages_of(rows: list, now: dt.datetime) -> tuple[list[Notice], list[int]]:
    """(the messages to queue, the notices they deliver) of a chunk; a payment's notice whose receipt link may
    still come within ``RECEIPT_WAIT`` is neither (left for a later drain)."""
    received = [row for row in rows if row.kind == PAYMENT_RECEIVED]
    contexts = _received_contexts([pid for pid in map(_payment_id, received) if pid is not None])
    notices, done = [], []
    for row in rows:
        if row.kind != PAYMENT_RECEIVED:
            notices.append(
                Notice(row.subscriber_id, NOTICE_EVENTS[row.kind], f"paynotice:{row.pk}", _notice_context(row.payload))
            )
        else:
            payment_id = _payment_id(row)
            found = contexts.get(payment_id)
            if found is not None:
                subscriber_id, values, receipt = found
                if not values["receipt_link"] and _receipt_pending(receipt) and now - row.created_at < RECEIPT_WAIT:
                    continue
                # The payment's own key (not the notice's): the messages the per-request handler queued before
                # this outbox existed are the same rows.
                notices.append(Notice(subscriber_id, Event.PAYMENT_RECEIVED, f"payment:{payment_id}", values))
            # else cancelled, back in suspense, gone: nothing to tell, the notice is done.
        done.append(row.pk)
    return notices, done


def _drain(notices, *, chunk: int) -> int:
    from abonent.payments.actions.autopay import do_mark_notices_delivered

    drained = 0
    after = None  # (created_at, id) of the last notice looked at: one left waiting is not taken again this run
    while True:
        with transaction.atomic():
            pending = notices.select_for_update(skip_locked=True).filter(
                delivered_at__isnull=True, kind__in=list(NOTICE_EVENTS)
            )
            if after is not None:
                pending = pending.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], pk__gt=after[1]))
            rows = list(pending.order_by("created_at", "id")[:chunk])
            if not rows:
                return drained
            after = (rows[-1].created_at, rows[-1].pk)
            messages, done = _messages_of(rows, clock.now())
            notify_many(messages)
            do_mark_notices_delivered(done)
        drained += len(done)


def drain_payment_notices(*, chunk: int = NOTICE_CHUNK) -> int:
    """Every undelivered ``PaymentNotice`` into messages, a chunk per transaction, each marked delivered in the
    transaction that queued its messages: a crash leaves a chunk whole or undone, and a rerun finds nothing to do.
    Workers running it at once take different rows (SKIP LOCKED). A payment's notice waiting for its receipt
    stays undelivered (module docstring). Returns notices delivered."""
    from abonent.payments.models import PaymentNotice

    return _drain(PaymentNotice.objects.all(), chunk=chunk)


@on("payments.receipt_done")
@on("payments.receipt_failed")
def receipt_settled(*, event: str, receipt_id: int, **_payload) -> None:
    """A payment's receipt is done (its link can go in) or failed (no link will come): the payment's notice, if
    still waiting, is drained now rather than at the next minute. Runs in the receipt worker, not in a payment's
    request; if it fails, the minute's drain sends the message all the same."""
    from abonent.payments.models import FiscalReceipt, PaymentNotice, ReceiptOperation

    payment_id = (
        FiscalReceipt.objects.filter(pk=receipt_id, operation=ReceiptOperation.SELL)
        .values_list("payment_id", flat=True)
        .first()
    )
    if payment_id is not None:
        _drain(PaymentNotice.objects.filter(dedup_key=f"payment:{payment_id}"), chunk=1)


# Plan changes


def _plan_values(plan_id: int, effective_on: dt.date) -> dict:
    plan = Plan.objects.filter(pk=plan_id).values_list("name", flat=True).first() or ""
    try:
        fee = _money(price_on(plan_id, effective_on).monthly_fee)
    except NoPriceError:
        fee = ""
    return {"plan": plan, "monthly_fee": fee, "effective_on": _date(effective_on)}


@on("subscription.plan_changed")
def plan_changed(*, event: str, subscription_id: int, subscriber_id: int, to_plan_id: int, **_payload) -> None:
    """A plan changed now (staff, the portal, the API): in force today."""
    today = clock.today()
    notify(
        subscriber_id,
        Event.PLAN_CHANGED,
        key=f"plan:{subscription_id}:{to_plan_id}:{today.isoformat()}",
        context=_plan_values(to_plan_id, today),
    )


def plans_switched(sender, *, switched, **_kwargs) -> None:
    """Scheduled plan changes a billing run put in force, in its chunk transaction: the messages commit with the
    switch (a retried chunk writes them again, a rerun finds their keys)."""
    values: dict[tuple[int, dt.date], dict] = {}
    notices = []
    for switch in switched:
        key = (switch.to_plan_id, switch.effective_on)
        if key not in values:
            values[key] = _plan_values(*key)
        notices.append(
            Notice(
                switch.subscriber_id,
                Event.PLAN_CHANGED,
                f"plan:{switch.subscription_id}:{switch.to_plan_id}:{switch.effective_on.isoformat()}",
                values[key],
            )
        )
    notify_many(notices)


def connect_billing() -> None:
    """Listen to billing's run (imported here, not at module level: this app is a sink)."""
    from abonent.billing.engine import plans_switched as signal

    signal.connect(plans_switched, dispatch_uid="notifications.plans_switched")
