from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from abonent.billing import ledger
from abonent.billing.models import LedgerAccount, LedgerTransaction, Posting


@pytest.fixture
def accounts(subscriber):
    account = ledger.subscriber_account(subscriber.pk)
    return account, ledger.system_account("adjustments")


def post(accounts, key="k1", amount="100.00", **kw):
    account, other = accounts
    return ledger.post(
        key=key,
        kind="adjustment",
        effective_date=__import__("datetime").date(2026, 11, 1),
        legs=[(account.pk, Decimal(amount)), (other.pk, -Decimal(amount))],
        **kw,
    )


def test_posting_moves_the_cached_balance_of_the_subscriber_account_only(accounts):
    account, other = accounts
    post(accounts)
    account.refresh_from_db()
    other.refresh_from_db()
    assert account.balance == Decimal("100.00")
    assert other.balance == Decimal("0.00")  # no hot row on system accounts
    assert ledger.verify() == []


def test_same_key_same_content_is_a_no_op_and_other_content_is_an_error(accounts):
    first, created = post(accounts)
    again, created_again = post(accounts)
    assert created and not created_again and again.pk == first.pk
    with pytest.raises(ledger.IdempotencyConflict):
        post(accounts, amount="99.00")
    assert Posting.objects.count() == 2


@pytest.mark.parametrize("legs", [[(1, "10.00")], [(1, "10.00"), (2, "-9.99")], [(1, "0.00"), (2, "0.00")]])
def test_unbalanced_or_empty_transactions_are_refused(accounts, legs):
    account, other = accounts
    ids = {1: account.pk, 2: other.pk}
    with pytest.raises(ledger.LedgerError):
        ledger.post(
            key="bad",
            kind="adjustment",
            effective_date=__import__("datetime").date(2026, 11, 1),
            legs=[(ids[a], Decimal(m)) for a, m in legs],
        )
    assert LedgerTransaction.objects.count() == 0


def test_reversal_restores_the_balance_and_happens_once(accounts, admin):
    account, _other = accounts
    tx, _ = post(accounts)
    ledger.reverse(tx, memo="ошибка", acting_user=admin)
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerTransaction.objects.create(
            idempotency_key="x",
            request_hash="x",
            kind="reversal",
            effective_date=tx.effective_date,
            created_at=tx.created_at,
            reverses=tx,
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE billing_posting SET amount = amount + 1",
        "DELETE FROM billing_posting",
        "UPDATE billing_ledgertransaction SET memo = 'edited'",
        "DELETE FROM billing_ledgertransaction",
    ],
)
def test_the_database_refuses_edits_of_the_ledger(accounts, statement):
    post(accounts)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert Posting.objects.count() == 2


def test_the_database_refuses_a_hand_edited_balance(accounts):
    account, _ = accounts
    post(accounts)
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerAccount.objects.filter(pk=account.pk).update(balance=Decimal("1000000.00"))


def test_the_database_refuses_a_leg_added_to_a_written_transaction(accounts):
    # PostgreSQL: the statement would not balance, and the transaction is sealed; SQLite: sealed.
    account, other = accounts
    tx, _ = post(accounts)
    with pytest.raises(DatabaseError), transaction.atomic():
        Posting.objects.create(transaction=tx, account=account, amount=Decimal("5.00"))
    # Balanced legs appended later are refused too: a written transaction is sealed.
    with pytest.raises(DatabaseError), transaction.atomic():
        Posting.objects.bulk_create(
            [
                Posting(transaction=tx, account=account, amount=Decimal("5.00")),
                Posting(transaction=tx, account=other, amount=Decimal("-5.00")),
            ]
        )
    assert Posting.objects.filter(transaction=tx).count() == 2
    assert ledger.verify() == []


def test_verify_reports_drift(accounts):
    account, _ = accounts
    post(accounts)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # What a careless superuser could do: bypass every trigger for the session.
            cursor.execute("SET session_replication_role = replica")
        else:  # rolled back with the test's transaction
            cursor.execute("DROP TRIGGER billing_account_balance_guard")
        cursor.execute("UPDATE billing_ledgeraccount SET balance = 5 WHERE id = %s", [account.pk])
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    problems = ledger.verify()
    assert len(problems) == 1 and "cached balance 5" in problems[0]


def test_truncating_the_ledger_is_refused_unless_the_session_opts_in(accounts):
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    post(accounts)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("RESET abonent.allow_ledger_truncate")
        cursor.execute("TRUNCATE billing_posting CASCADE")
    with connection.cursor() as cursor:
        cursor.execute("SET abonent.allow_ledger_truncate = 'on'")
    assert Posting.objects.count() == 2
