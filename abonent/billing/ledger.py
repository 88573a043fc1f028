"""Posting to the double-entry ledger: the only code that writes transactions and postings.

``post`` is idempotent by the transaction's key and refuses the same key with other content. Every
transaction's legs go in one INSERT statement: on PostgreSQL a statement trigger checks they sum to zero,
that the transactions and accounts they name exist, and moves the cached balances of subscriber accounts
(migrations 0002 and 0004); on SQLite the sum is checked here and row triggers check the references and move
the balances. The billing run writes its fees itself, set-based, as batch transactions (``engine``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from abonent.core import clock
from abonent.core.money import quantize

from .models import AccountKind, LedgerAccount, LedgerTransaction, Posting, TransactionKind

# Keys of the billing run's batch transactions (``fees:<period start>:<transaction id>``): many charges each.
BATCH_KEY_PREFIX = "fees:"


class LedgerError(Exception):
    """A transaction that must not be written (unbalanced, zero legs, a conflicting retry)."""


class IdempotencyConflict(LedgerError):
    """The key was used before for a transaction with other content."""


SYSTEM_ACCOUNTS = {
    "promised": (AccountKind.PROMISED, gettext_lazy("Promised-payment credit")),
    "adjustments": (AccountKind.ADJUSTMENT, gettext_lazy("Manual adjustments")),
    "suspense": (AccountKind.SUSPENSE, gettext_lazy("Suspense")),
    "promised_fees": (AccountKind.REVENUE, gettext_lazy("Revenue: promised payment fees")),
    # The other side of the balances brought from the old billing (TransactionKind.OPENING_BALANCE): its sum is
    # minus what the old system said the subscribers held, the figure the migration is reconciled against.
    "opening_balances": (AccountKind.ADJUSTMENT, gettext_lazy("Opening balances from the old billing")),
}


def cash_account(channel: str) -> LedgerAccount:
    """Money received through a payment channel (cash desk, bank, terminal, gateway)."""
    account, _created = LedgerAccount.objects.get_or_create(
        code=f"cash:{channel}",
        defaults={"kind": AccountKind.CASH, "name": _("Payments") + f": {channel}", "created_at": clock.now()},
    )
    return account


def clearing_account(provider: str) -> LedgerAccount:
    """Money an online gateway has taken for us and not yet settled to the bank account (YooKassa, T-Bank)."""
    account, _created = LedgerAccount.objects.get_or_create(
        code=f"clearing:{provider}",
        defaults={
            "kind": AccountKind.CLEARING,
            "name": _("Gateway clearing") + f": {provider}",
            "created_at": clock.now(),
        },
    )
    return account


def subscriber_account(subscriber_id: int, *, lock: bool = False) -> LedgerAccount:
    """The subscriber's personal ledger account, created on first use. ``lock`` takes its row lock, which
    every check-then-post on a balance (promised payment, freeze) must hold until commit."""
    account = LedgerAccount.objects.filter(subscriber_id=subscriber_id)
    if lock:
        account = account.select_for_update()
    found = account.first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            LedgerAccount.objects.create(
                kind=AccountKind.SUBSCRIBER,
                code=f"subscriber:{subscriber_id}",
                name=f"subscriber {subscriber_id}",
                subscriber_id=subscriber_id,
                created_at=clock.now(),
            )
    except IntegrityError:
        pass  # created concurrently
    return account.get()


def system_account(code: str) -> LedgerAccount:
    kind, name = SYSTEM_ACCOUNTS[code]
    account, _created = LedgerAccount.objects.get_or_create(
        code=code, defaults={"kind": kind, "name": str(name), "created_at": clock.now()}
    )
    return account


def revenue_account(service) -> LedgerAccount:
    account, _created = LedgerAccount.objects.get_or_create(
        code=f"revenue:{service.code}",
        defaults={
            "kind": AccountKind.REVENUE,
            "name": _("Revenue") + f": {service.name}",
            "service": service,
            "created_at": clock.now(),
        },
    )
    return account


def usage_revenue_account(service) -> LedgerAccount:
    """Revenue from traffic over the included volume of ``service``'s plans (billing/rating): an account of its
    own beside the service's fee revenue, so traffic income is reported apart."""
    account, _created = LedgerAccount.objects.get_or_create(
        code=f"revenue:usage:{service.code}",
        defaults={
            "kind": AccountKind.REVENUE,
            "name": _("Revenue: traffic") + f": {service.name}",
            "service": service,
            "created_at": clock.now(),
        },
    )
    return account


def request_hash(kind: str, effective_date: dt.date | None, legs: list[tuple[int, Decimal]]) -> str:
    day = effective_date.isoformat() if effective_date else "-"
    body = "|".join([kind, day, *[f"{a}:{m}" for a, m in sorted(legs)]])
    return hashlib.sha256(body.encode()).hexdigest()


def normalise_legs(legs: list[tuple[int, Decimal]]) -> list[tuple[int, Decimal]]:
    merged: dict[int, Decimal] = {}
    for account_id, amount in legs:
        merged[account_id] = merged.get(account_id, Decimal("0")) + quantize(amount)
    result = [(a, m) for a, m in merged.items() if m != 0]
    if len(result) < 2:
        raise LedgerError("a transaction needs at least two non-zero legs")
    if sum(m for _a, m in result) != 0:
        raise LedgerError(f"unbalanced transaction: legs sum to {sum(m for _a, m in result)}")
    return result


def post(
    *,
    key: str,
    kind: str,
    effective_date: dt.date,
    legs: list[tuple[int, Decimal]],
    subscriber_id: int | None = None,
    acting_user=None,
    memo: str = "",
    reverses: LedgerTransaction | None = None,
    date_in_hash: bool = True,
) -> tuple[LedgerTransaction, bool]:
    """Write one balanced transaction, or return the one already written under ``key``.

    Returns ``(transaction, created)``. Must run inside the caller's atomic block, so the ledger entry
    commits with the business record it belongs to. ``date_in_hash=False`` when the date was not given by the
    caller but defaulted to today: a gateway's retry after midnight is the same payment, not a conflict.
    """
    legs = normalise_legs(legs)
    digest = request_hash(kind, effective_date if date_in_hash else None, legs)
    tx = LedgerTransaction(
        idempotency_key=key,
        request_hash=digest,
        kind=kind,
        effective_date=effective_date,
        created_at=clock.now(),
        subscriber_id=subscriber_id,
        acting_user=acting_user,
        memo=memo[:500],
        reverses=reverses,
        legs=len(legs),
    )
    try:
        with transaction.atomic():
            tx.save(force_insert=True)
            Posting.objects.bulk_create([Posting(transaction=tx, account_id=a, amount=m) for a, m in legs])
    except IntegrityError:
        existing = LedgerTransaction.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        if existing.request_hash != digest:
            raise IdempotencyConflict(f"key {key} was used for a different transaction") from None
        return existing, False
    return tx, True


def reverse(
    original: LedgerTransaction, *, memo: str, acting_user=None, effective_date: dt.date | None = None
) -> LedgerTransaction:
    """Undo a transaction by posting its mirror image; the original stays as it was."""
    legs = [(p.account_id, -p.amount) for p in original.postings.all()]
    tx, _created = post(
        key=f"reversal:{original.pk}",
        kind=TransactionKind.REVERSAL,
        effective_date=effective_date or clock.today(),
        legs=legs,
        subscriber_id=original.subscriber_id,
        acting_user=acting_user,
        memo=memo,
        reverses=original,
    )
    return tx


def is_batch(tx: LedgerTransaction) -> bool:
    """Whether ``tx`` is a billing run's batch of fees (postings summed over many charges)."""
    return tx.idempotency_key.startswith(BATCH_KEY_PREFIX)


def verify() -> list[str]:
    """Every invariant of the ledger checked over the whole database; returns the problems found: transactions
    that do not balance, cached balances, references, and charges reconciled with their postings.

    Postings and charges have no per-row foreign keys (ADR 0010), so the references the triggers check on
    insert are checked here too. (Folding those checks into the balance passes with FULL JOINs was slower on
    PostgreSQL 15, which cannot run a hash full join in parallel, and quadratic on SQLite.)
    """
    problems = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id, t.idempotency_key, COALESCE(SUM(p.amount), 0), COUNT(p.id) FROM billing_ledgertransaction t "
            "LEFT JOIN billing_posting p ON p.transaction_id = t.id GROUP BY t.id, t.idempotency_key "
            "HAVING COUNT(p.id) < 2 OR ABS(COALESCE(SUM(p.amount), 0)) >= 0.005"
        )
        for tx_id, key, total, count in cursor.fetchall():
            problems.append(f"transaction {tx_id} ({key}): {count} postings summing to {total}")
        cursor.execute(
            "SELECT a.id, a.code, a.balance, COALESCE(s.total, 0) FROM billing_ledgeraccount a "
            "LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM billing_posting GROUP BY account_id) s "
            "ON s.account_id = a.id WHERE a.kind = 'subscriber' AND ABS(a.balance - COALESCE(s.total, 0)) >= 0.005"
        )
        for account_id, code, balance, total in cursor.fetchall():
            problems.append(f"account {account_id} ({code}): cached balance {balance} but postings sum to {total}")
        cursor.execute("SELECT ABS(COALESCE(SUM(amount), 0)) >= 0.005 FROM billing_posting")
        if cursor.fetchone()[0]:
            problems.append("all postings together do not sum to zero")
        cursor.execute(
            "SELECT p.id, p.transaction_id, p.account_id FROM billing_posting p "
            "LEFT JOIN billing_ledgertransaction t ON t.id = p.transaction_id "
            "LEFT JOIN billing_ledgeraccount a ON a.id = p.account_id WHERE t.id IS NULL OR a.id IS NULL LIMIT 100"
        )
        for posting_id, tx_id, account_id in cursor.fetchall():
            problems.append(f"posting {posting_id}: transaction {tx_id} or account {account_id} does not exist")
        cursor.execute(
            "SELECT c.id, c.transaction_id, c.subscription_id FROM billing_charge c "
            "LEFT JOIN billing_ledgertransaction t ON t.id = c.transaction_id "
            "LEFT JOIN billing_subscription s ON s.id = c.subscription_id WHERE t.id IS NULL OR s.id IS NULL LIMIT 100"
        )
        for charge_id, tx_id, subscription_id in cursor.fetchall():
            problems.append(f"charge {charge_id}: transaction {tx_id} or subscription {subscription_id} does not exist")
        problems += _unreconciled_charges(cursor)
    return problems


def _unreconciled_charges(cursor) -> list[str]:
    """Charges are the sub-ledger of the transactions that carry them (a billing run's batch carries thousands):
    in every such transaction each subscriber's posting must equal minus the sum of that subscriber's charges,
    and no subscriber may have a posting there without charges. A charge edited, deleted or written without its
    posting (or a posting without its charge) shows here.

    On PostgreSQL the comparison runs per transaction first, on three sums of each side: the amounts, the amounts
    weighted by the subscriber's id, and weighted by another function of it. Every pair matching makes the three
    match; a pair that differs leaves them equal only if the differences cancel under two independent weightings
    at once, which no edit does by accident. Those are hash aggregates over the whole table, parallel, a few
    seconds a million charges; the pair-by-pair comparison (a join of millions of pairs, many times slower) then
    runs only on the transactions whose sums differ, to say which subscriber. SQLite installations are small:
    there it compares the pairs directly.
    """
    suspects = None
    if connection.vendor == "postgresql":
        with transaction.atomic():
            cursor.execute("SET LOCAL enable_nestloop = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute(RECONCILE_BY_TRANSACTION)
            suspects = [tx_id for (tx_id,) in cursor.fetchall()]
        if not suspects:
            return []
    return _unreconciled_pairs(cursor, suspects)


# Per transaction with charges: minus the charges' sums against the subscriber postings' sums (see above).
_WEIGHT = "(({id} * 7919) % 1000003)"
RECONCILE_BY_TRANSACTION = f"""
WITH c AS (
    SELECT ch.transaction_id, -SUM(ch.amount) AS total, -SUM(ch.amount * s.subscriber_id) AS w1,
           -SUM(ch.amount * {_WEIGHT.format(id="s.subscriber_id")}) AS w2
    FROM billing_charge ch JOIN billing_subscription s ON s.id = ch.subscription_id
    GROUP BY ch.transaction_id
), p AS (
    SELECT p.transaction_id, SUM(p.amount) AS total, SUM(p.amount * a.subscriber_id) AS w1,
           SUM(p.amount * {_WEIGHT.format(id="a.subscriber_id")}) AS w2
    FROM billing_posting p JOIN billing_ledgeraccount a ON a.id = p.account_id
    WHERE a.kind = 'subscriber'
    GROUP BY p.transaction_id
)
SELECT c.transaction_id FROM c LEFT JOIN p ON p.transaction_id = c.transaction_id
WHERE p.total IS DISTINCT FROM c.total OR p.w1 IS DISTINCT FROM c.w1 OR p.w2 IS DISTINCT FROM c.w2
LIMIT 100
"""


def _unreconciled_pairs(cursor, transaction_ids: list[int] | None) -> list[str]:
    """The pair-by-pair comparison, over ``transaction_ids`` or (``None``) every transaction with charges."""
    problems = []
    only_charges = only_postings = ""
    params: list = []
    if transaction_ids is not None:
        marks = ", ".join(["%s"] * len(transaction_ids))
        only_charges = f"WHERE ch.transaction_id IN ({marks}) "
        only_postings = f"AND p.transaction_id IN ({marks}) "
        params = list(transaction_ids)
    cursor.execute(
        # Both keys of the posting come out of the subquery, so the join is on the pair: joined on the transaction
        # alone (the account coming from another table), a batch of 10,000 fees was compared 10,000 × 10,000 times.
        "SELECT c.transaction_id, c.subscriber_id, c.total, p.amount "
        "FROM (SELECT ch.transaction_id, a.id AS account_id, s.subscriber_id, -SUM(ch.amount) AS total "
        "      FROM billing_charge ch JOIN billing_subscription s ON s.id = ch.subscription_id "
        "      JOIN billing_ledgeraccount a ON a.subscriber_id = s.subscriber_id "
        f"      {only_charges}GROUP BY ch.transaction_id, a.id, s.subscriber_id) c "
        "LEFT JOIN billing_posting p ON p.transaction_id = c.transaction_id AND p.account_id = c.account_id "
        "WHERE p.amount IS NULL OR ABS(p.amount - c.total) >= 0.005 LIMIT 100",
        params,
    )
    for tx_id, subscriber_id, total, posted in cursor.fetchall():
        posted = _money(posted) if posted is not None else None  # SQLite sums in floats
        problems.append(
            f"transaction {tx_id}: subscriber {subscriber_id}'s charges sum to {-_money(total)} "
            f"but the posting is {posted}"
        )
    cursor.execute(
        "SELECT p.transaction_id, a.subscriber_id, p.amount FROM billing_posting p "
        "JOIN billing_ledgeraccount a ON a.id = p.account_id AND a.kind = 'subscriber' "
        f"WHERE p.transaction_id IN (SELECT transaction_id FROM billing_charge) {only_postings}AND NOT EXISTS ("
        "  SELECT 1 FROM billing_charge ch JOIN billing_subscription s ON s.id = ch.subscription_id "
        "  WHERE ch.transaction_id = p.transaction_id AND s.subscriber_id = a.subscriber_id) LIMIT 100",
        params,
    )
    for tx_id, subscriber_id, posted in cursor.fetchall():
        problems.append(
            f"transaction {tx_id}: subscriber {subscriber_id} has a posting of {_money(posted)} but no charges"
        )
    return problems


def _money(value) -> Decimal:
    return quantize(Decimal(str(value)))
