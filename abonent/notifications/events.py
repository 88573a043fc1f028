"""Other apps' events turned into messages, each with a stable key, so a replayed event queues nothing twice.

- ``payments.payment_received`` → PAYMENT_RECEIVED (``payment:<id>``): the amount, the balance right after it,
  when it was paid, and the fiscal receipt's check link. The receipt is issued a little after the payment, so while
  it is pending the message waits ``RECEIPT_WAIT`` and ``payments.receipt_done`` puts the link into it; a receipt
  later than that, or failed, leaves the message as it was (sent without the link, never held back for it).
- the payments ``PaymentNotice`` outbox (autopay reminder and outcome, a method unlinked) → ``paynotice:<id>``,
  drained every minute by ``drain_payment_notices`` (``jobs``), which marks each notice delivered in the same
  transaction as its messages.
- ``subscription.plan_changed`` (a change made now) and billing's ``plans_switched`` signal (a scheduled change a
  billing run put in force, inside the run's chunk transaction) → PLAN_CHANGED (``plan:<subscription>:<plan>:<date>``).

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
from django.db.models import Sum
from django.utils import timezone

from abonent.catalog.models import Plan
from abonent.catalog.selectors import NoPriceError, price_on
from abonent.core import clock
from abonent.core.events import on

from .models import Event, Message, MessageStatus
from .queueing import Notice, notify, notify_many, render_for, subscriber_values

logger = logging.getLogger(__name__)

# How long a payment's message waits for its fiscal receipt (usually issued within seconds).
RECEIPT_WAIT = dt.timedelta(minutes=2)
# PaymentNotice kinds (payments.models.NoticeKind) → events; a kind not listed stays undelivered until it is.
NOTICE_EVENTS = {
    "autopay_reminder": Event.AUTOPAY_REMINDER,
    "autopay_succeeded": Event.AUTOPAY_SUCCEEDED,
    "autopay_declined": Event.AUTOPAY_DECLINED,
    "autopay_retry_scheduled": Event.AUTOPAY_RETRY_SCHEDULED,
    "autopay_stopped": Event.AUTOPAY_STOPPED,
    "method_unlinked": Event.METHOD_UNLINKED,
}
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


def _payment_context(payment_id: int) -> tuple[int, dict, object] | None:
    """(subscriber id, values, the income receipt or None) of a credited payment; None for any other."""
    from abonent.billing.models import LedgerAccount, Posting
    from abonent.payments.models import FiscalReceipt, Payment, PaymentStatus, ReceiptOperation

    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or payment.status != PaymentStatus.CREDITED or payment.subscriber_id is None:
        return None
    account = LedgerAccount.objects.filter(subscriber_id=payment.subscriber_id).values("pk", "balance").first()
    balance = ""
    if account is not None:
        # The balance right after this payment: today's less what was posted after it (a few rows, by the
        # (account, transaction) index), so a replay or the receipt's update says the same.
        later = Posting.objects.filter(account_id=account["pk"], transaction_id__gt=payment.transaction_id).aggregate(
            s=Sum("amount")
        )["s"] or Decimal(0)
        balance = _money(account["balance"] - later)
    receipt = (
        FiscalReceipt.objects.filter(payment_id=payment.pk, operation=ReceiptOperation.SELL).order_by("id").first()
    )
    values = {
        "amount": _money(payment.amount),
        "balance": balance,
        "paid_at": _moment(payment.received_at),
        "receipt_link": _receipt_link(receipt),
    }
    return payment.subscriber_id, values, receipt


def _receipt_link(receipt) -> str:
    if receipt is None:
        return ""
    try:
        return receipt.check_url
    except Exception:  # a malformed check URL setting must not lose the payment's message
        logger.exception("receipt %s: no check link", receipt.pk)
        return ""


def _receipt_pending(receipt) -> bool:
    from abonent.payments.models import ReceiptStatus

    return (
        receipt is not None
        and receipt.status in (ReceiptStatus.QUEUED, ReceiptStatus.SENT)
        and bool((settings.ABONENT_FISCAL_CHECK_URL or "").strip())
    )


@on("payments.payment_received")
def payment_received(*, event: str, payment_id: int, **_payload) -> None:
    found = _payment_context(payment_id)
    if found is None:
        return  # suspense (no subscriber yet: told when assigned, which emits this again), cancelled, gone
    subscriber_id, values, receipt = found
    not_before = clock.now() + RECEIPT_WAIT if _receipt_pending(receipt) else None
    notify_many([Notice(subscriber_id, Event.PAYMENT_RECEIVED, f"payment:{payment_id}", values, not_before=not_before)])


@on("payments.receipt_done")
def receipt_done(*, event: str, receipt_id: int, **_payload) -> None:
    """The check link into the payment's messages still waiting; released now."""
    from abonent.payments.models import FiscalReceipt, ReceiptOperation

    receipt = FiscalReceipt.objects.filter(pk=receipt_id, operation=ReceiptOperation.SELL).first()
    if receipt is None or receipt.payment_id is None:
        return
    found = _payment_context(receipt.payment_id)
    if found is None or not found[1]["receipt_link"]:
        return
    link_values, now = found[1], clock.now()
    with transaction.atomic():
        waiting = (
            Message.objects.select_for_update(of=("self",))
            .select_related("subscriber")
            .filter(
                dedup_key__startswith=f"payment:{receipt.payment_id}:",
                event=Event.PAYMENT_RECEIVED,
                status=MessageStatus.QUEUED,
                attempts=0,
            )
        )
        for message in waiting:
            values = {**subscriber_values(message.subscriber), **link_values}
            subject, message.body = render_for(message.event, message.channel, message.language, values)
            message.subject = subject[:200]
            if message.next_attempt_at <= now + RECEIPT_WAIT:
                message.next_attempt_at = now  # held only for the link; one held by quiet hours keeps its time
            message.save(update_fields=["subject", "body", "next_attempt_at"])


@on("payments.receipt_failed")
def receipt_failed(*, event: str, receipt_id: int, **_payload) -> None:
    """No link will come: the payment's messages go now."""
    from abonent.payments.models import FiscalReceipt

    payment_id = FiscalReceipt.objects.filter(pk=receipt_id).values_list("payment_id", flat=True).first()
    if payment_id is None:
        return
    now = clock.now()
    Message.objects.filter(
        dedup_key__startswith=f"payment:{payment_id}:",
        status=MessageStatus.QUEUED,
        attempts=0,
        next_attempt_at__gt=now,
        next_attempt_at__lte=now + RECEIPT_WAIT,
    ).update(next_attempt_at=now)


def _notice_context(payload: dict) -> dict:
    values = dict(payload)
    for name in ("due_on", "next_try_on"):
        if name in values:
            values[name] = _date(values[name])
    if values.get("amount") not in (None, ""):
        with contextlib.suppress(ArithmeticError):
            values["amount"] = _money(values["amount"])
    return values


def drain_payment_notices(*, chunk: int = NOTICE_CHUNK) -> int:
    """Every undelivered ``PaymentNotice`` into messages (``paynotice:<id>``), a chunk per transaction, each marked
    delivered in the transaction that queued its messages: a crash leaves a chunk whole or undone, and a rerun
    finds nothing to do. Workers running it at once take different rows (SKIP LOCKED). Returns notices drained."""
    from abonent.payments.actions.autopay import do_mark_notices_delivered
    from abonent.payments.models import PaymentNotice

    drained = 0
    while True:
        with transaction.atomic():
            rows = list(
                PaymentNotice.objects.select_for_update(skip_locked=True)
                .filter(delivered_at__isnull=True, kind__in=list(NOTICE_EVENTS))
                .order_by("created_at", "id")[:chunk]
            )
            if not rows:
                return drained
            notify_many(
                Notice(row.subscriber_id, NOTICE_EVENTS[row.kind], f"paynotice:{row.pk}", _notice_context(row.payload))
                for row in rows
            )
            do_mark_notices_delivered([row.pk for row in rows])
        drained += len(rows)


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
