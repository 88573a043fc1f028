"""Accounts brought over from the old billing in bulk (the imports app calls these; docs/imports.md).

What a migration must not do with money, and how it is kept from it:

- **Opening balances** are ledger transactions of their own kind (``TransactionKind.OPENING_BALANCE``), keyed
  ``opening:<source>:<old id>`` (unique: a second run posts nothing), against the ``opening_balances`` system account.
  Payment history is not posted at all: the opening balance already contains it.
- **No charging for the past**: the old system has charged through ``cutover`` (inclusive), so each subscription's
  charging cursor (``next_charge_on``) starts the day after; the billing run charges from there, prorating a period
  that begins mid-way exactly as it does for an activation on that day.
- **A changed balance on re-import** is posted as a further opening transaction only while the account has seen
  nothing else (no fee, payment or adjustment): afterwards the difference is the operator's to adjust by hand.

Set-based (COPY on PostgreSQL): 100,000 accounts are one statement per table per chunk, and the postings of a chunk
one statement, so the ledger's statement trigger checks every transaction's zero sum and moves each balance once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from abonent.catalog.models import Plan
from abonent.core import audit, clock, events
from abonent.core.bulk_load import BulkWriter, reserve_ids
from abonent.core.money import quantize

from .. import ledger
from ..models import (
    AccountKind,
    LedgerAccount,
    LedgerTransaction,
    Posting,
    PriceOverride,
    Subscription,
    SubscriptionEvent,
    TransactionKind,
)

OPENING_KEY = "opening:{source}:{old_id}"
# The key of an old id (or source) with a colon in it: "1001:1" spelled plainly would be the first correction
# (``<key>:1``) of old id "1001". Plain ids keep the keys already issued.
HASHED_OPENING_PREFIX = "opening-h:"


@dataclass
class ImportedAccount:
    """A subscriber's money and plan as the old system had them."""

    subscriber_id: int
    old_id: str
    opening_balance: Decimal
    credit_limit: Decimal = Decimal("0.00")
    plan: Plan | None = None  # None: no subscription (a closed account)
    monthly_fee: Decimal | None = None  # an individual price, when it differs from the plan's
    started_on: dt.date | None = None


def opening_key(source: str, old_id: str) -> str:
    if ":" in source or ":" in old_id:
        digest = hashlib.sha256(json.dumps([source, old_id], ensure_ascii=False).encode()).hexdigest()
        return HASHED_OPENING_PREFIX + digest
    return OPENING_KEY.format(source=source, old_id=old_id)


def do_import_accounts(
    items: list[ImportedAccount], *, source: str, cutover: dt.date, acting_user, reason: str
) -> None:
    """Ledger accounts (with credit limits), subscriptions billed from ``cutover + 1 day``, individual prices and
    opening balances for freshly imported subscribers, inside the caller's transaction (one chunk)."""
    if not items:
        return
    pg = connection.vendor == "postgresql"
    moment = clock.now()
    stamp = moment if pg else moment.isoformat()
    first_day = cutover + dt.timedelta(days=1)
    opening_account = ledger.system_account("opening_balances")
    account_ids = reserve_ids(LedgerAccount, len(items))
    with_plan = [i for i in items if i.plan is not None]
    subscription_ids = iter(reserve_ids(Subscription, len(with_plan)))
    event_ids = iter(reserve_ids(SubscriptionEvent, len(with_plan)))
    priced = [i for i in with_plan if i.monthly_fee is not None]
    override_ids = iter(reserve_ids(PriceOverride, len(priced)))
    with_balance = [i for i in items if quantize(i.opening_balance) != 0]
    tx_ids = iter(reserve_ids(LedgerTransaction, len(with_balance)))
    actor_id = getattr(acting_user, "pk", None)
    memo = (_("Opening balance from the old billing (%(source)s)") % {"source": source})[:500]
    individual_price = _("Individual price from the old billing")

    accounts, subscriptions, sub_events, overrides, transactions, postings = [], [], [], [], [], []
    for item, account_id in zip(items, account_ids, strict=True):
        accounts.append(
            (
                account_id,
                AccountKind.SUBSCRIBER,
                f"subscriber:{item.subscriber_id}",
                f"subscriber {item.subscriber_id}",
                item.subscriber_id,
                None,
                "0.00",
                str(quantize(item.credit_limit)),
                stamp,
            )
        )
        if item.plan is not None:
            sid = next(subscription_ids)
            started = min(item.started_on or first_day, first_day)
            subscriptions.append(
                (
                    sid,
                    item.subscriber_id,
                    item.plan.pk,
                    item.plan.service_id,
                    "active",
                    _day(started, pg),
                    None,
                    first_day.day,
                    _day(first_day, pg),
                    0,
                    None,
                    None,
                    stamp,
                )
            )
            sub_events.append(
                (next(event_ids), sid, "activated", stamp, None, item.plan.pk, actor_id, reason[:500], stamp)
            )
            if item.monthly_fee is not None:
                overrides.append(
                    (
                        next(override_ids),
                        sid,
                        None,
                        item.plan.pk,
                        str(quantize(item.monthly_fee)),
                        None,
                        _day(first_day, pg),
                        None,
                        individual_price,
                        actor_id,
                        stamp,
                    )
                )
        amount = quantize(item.opening_balance)
        if amount != 0:
            tx_id = next(tx_ids)
            legs = [(account_id, amount), (opening_account.pk, -amount)]
            transactions.append(
                (
                    tx_id,
                    opening_key(source, item.old_id),
                    ledger.request_hash(TransactionKind.OPENING_BALANCE, cutover, legs),
                    TransactionKind.OPENING_BALANCE,
                    _day(cutover, pg),
                    stamp,
                    None,
                    item.subscriber_id,
                    actor_id,
                    memo,
                    2,
                )
            )
            postings.append((tx_id, account_id, str(amount)))
            postings.append((tx_id, opening_account.pk, str(-amount)))
    writer = BulkWriter()
    writer.write(
        "billing_ledgeraccount",
        ["id", "kind", "code", "name", "subscriber_id", "service_id", "balance", "credit_limit", "created_at"],
        accounts,
    )
    writer.write(
        "billing_subscription",
        [
            "id",
            "subscriber_id",
            "plan_id",
            "service_id",
            "status",
            "started_on",
            "ended_on",
            "anchor_day",
            "next_charge_on",
            "charge_cycle",
            "pending_plan_id",
            "pending_plan_from",
            "created_at",
        ],
        subscriptions,
    )
    writer.write(
        "billing_subscriptionevent",
        [
            "id",
            "subscription_id",
            "kind",
            "effective_at",
            "from_plan_id",
            "to_plan_id",
            "acting_user_id",
            "reason",
            "created_at",
        ],
        sub_events,
    )
    writer.write(
        "billing_priceoverride",
        [
            "id",
            "subscription_id",
            "group_id",
            "plan_id",
            "monthly_fee",
            "daily_fee",
            "valid_from",
            "valid_until",
            "reason",
            "set_by_id",
            "created_at",
        ],
        overrides,
    )
    writer.write(
        "billing_ledgertransaction",
        [
            "id",
            "idempotency_key",
            "request_hash",
            "kind",
            "effective_date",
            "created_at",
            "reverses_id",
            "subscriber_id",
            "acting_user_id",
            "memo",
            "legs",
        ],
        transactions,
    )
    # All the chunk's legs in one statement: the ledger's statement trigger checks each transaction sums to zero.
    writer.write("billing_posting", ["transaction_id", "account_id", "amount"], postings)
    writer.close()
    events.emit("billing.accounts_imported", subscriber_ids=[i.subscriber_id for i in items])


def _openings(subscriber_id: int, source: str, old_id: str) -> list[LedgerTransaction]:
    """The opening transactions one old account has put on its subscriber's account: the first
    (``opening_key``) and its corrections (``<key>:<n>``). Found through the subscriber's transactions (an index),
    never by a prefix of the key: a ``LIKE 'prefix%'`` cannot use the key's index under a linguistic collation, and
    scanned every opening transaction of the installation per re-imported row."""
    key = opening_key(source, old_id)
    found = LedgerTransaction.objects.filter(subscriber_id=subscriber_id, kind=TransactionKind.OPENING_BALANCE)
    return [
        tx
        for tx in found.prefetch_related("postings__account")
        if tx.idempotency_key == key or corrected_key(tx.idempotency_key) == key
    ]


def corrected_key(candidate: str) -> str | None:
    """The opening key a correction ``<key>:<n>`` corrects (``do_adjust_opening_balance``), else ``None``. Callers
    match the key itself first: a first opening's key also ends in ``:<digits>`` when the old id is a number."""
    base, sep, number = candidate.rpartition(":")
    return base if sep and number.isdigit() else None


def opening_balance_of(subscriber_id: int, source: str, old_id: str) -> Decimal:
    """What the opening transactions of one old account have put on the subscriber's account so far."""
    return sum(
        (
            p.amount
            for tx in _openings(subscriber_id, source, old_id)
            for p in tx.postings.all()
            if p.account.kind == AccountKind.SUBSCRIBER
        ),
        Decimal("0.00"),
    )


def opening_correction_refusal(account_id: int, difference: Decimal) -> ValidationError | None:
    """Why a re-import may not post ``difference`` on the account (``None``: it may). Read-only, so the import's dry
    run asks it too and reports exactly what ``do_adjust_opening_balance`` will refuse."""
    # By the account's postings: the billing run's batched fee transactions name no subscriber.
    other = Posting.objects.filter(account_id=account_id).exclude(transaction__kind=TransactionKind.OPENING_BALANCE)
    if not other.exists():
        return None
    return ValidationError(
        {
            "balance": ValidationError(
                _(
                    "The balance differs from the old system's by %(amount)s and the account has moved since: "
                    "adjust it by hand."
                )
                % {"amount": difference},
                code="balance_differs",
            )
        }
    )


@transaction.atomic
def do_adjust_opening_balance(subscriber, *, source: str, old_id: str, balance: Decimal, cutover: dt.date, acting_user):
    """A re-imported account whose old balance changed: post the difference as a further opening transaction, but
    only while the account has no other ledger activity. After a fee, payment or adjustment the difference is no
    longer the old system's alone: refused (``balance_differs``) for the operator to adjust by hand."""
    account = ledger.subscriber_account(subscriber.pk, lock=True)
    already = opening_balance_of(subscriber.pk, source, old_id)
    difference = quantize(balance) - already
    if difference == 0:
        return None
    refusal = opening_correction_refusal(account.pk, difference)
    if refusal is not None:
        raise refusal
    count = sum(
        1 for tx in _openings(subscriber.pk, source, old_id) if tx.idempotency_key != opening_key(source, old_id)
    )
    tx, _created = ledger.post(
        key=f"{opening_key(source, old_id)}:{count + 1}",
        kind=TransactionKind.OPENING_BALANCE,
        effective_date=cutover,
        legs=[(account.pk, difference), (ledger.system_account("opening_balances").pk, -difference)],
        subscriber_id=subscriber.pk,
        acting_user=acting_user if getattr(acting_user, "pk", None) else None,
        memo=_("Opening balance corrected by a re-import (%(source)s)") % {"source": source},
    )
    audit.record(
        actor=acting_user,
        action="billing.opening_balance_corrected",
        obj=tx,
        subscriber_id=subscriber.pk,
        before={"balance": already},
        after={"balance": quantize(balance)},
    )
    events.emit("billing.balance_changed", subscriber_id=subscriber.pk)
    return tx


def _day(value: dt.date | None, pg: bool):
    if value is None:
        return None
    return value if pg else value.isoformat()
