"""The billing run's batch transactions and the ledger's references checked by triggers (ADR 0010).

Postings and charges carry no per-row foreign keys: the database's triggers check what they name on insert and
refuse to delete what they name. A billing run posts each chunk's fees as one transaction per period start, the
charges keeping each fee's detail; one charge can still be reversed on its own.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, OperationalError, connection, transaction

from abonent.billing import actions, engine, ledger, selectors
from abonent.billing.models import Charge, LedgerAccount, LedgerTransaction, Posting, Subscription
from abonent.billing.testing import balance, run_on
from abonent.catalog import actions as catalog
from abonent.core import clock

D = Decimal
DEC_1 = dt.date(2026, 12, 1)


@pytest.fixture
def tv(admin):
    return catalog.do_create_service(code="tv", name="ТВ", kind="iptv", acting_user=admin)


@pytest.fixture
def population(make_plan, make_subscriber, admin, tv, on):
    """Three subscribers activated on November 1st: two on internet plans, one on TV (another revenue account)."""
    plans = [make_plan("home", "650.00"), make_plan("fast", "900.00"), make_plan("tv-basic", "300.00", service=tv)]
    subscriptions = []
    with on(dt.date(2026, 11, 1)):
        for n, plan in enumerate(plans):
            subscriber = make_subscriber(phone=f"+7916000000{n}")
            subscriptions.append(actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin))
    return subscriptions


def sql(statement: str, params=()) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, list(params))


# --- batches -----------------------------------------------------------------------------------------------


def test_a_run_posts_one_balanced_transaction_with_a_posting_per_account(population):
    result = run_on(DEC_1)

    assert result.charges == 3
    charges = list(Charge.objects.filter(period_start=DEC_1).order_by("subscription_id"))
    assert [c.amount for c in charges] == [D("650.00"), D("900.00"), D("300.00")]
    assert len({c.transaction_id for c in charges}) == 1  # one batch for the chunk's one period start
    batch = charges[0].transaction
    assert ledger.is_batch(batch) and batch.kind == "fee" and batch.effective_date == DEC_1
    postings = {(p.account.code, p.amount) for p in Posting.objects.filter(transaction=batch).select_related("account")}
    accounts = [ledger.subscriber_account(s.subscriber_id).code for s in population]
    assert postings == {
        (accounts[0], D("-650.00")),
        (accounts[1], D("-900.00")),
        (accounts[2], D("-300.00")),
        ("revenue:internet", D("1550.00")),
        ("revenue:tv", D("300.00")),
    }
    assert sum(amount for _code, amount in postings) == 0
    assert [balance(s.subscriber) for s in population] == [D("-1300.00"), D("-1800.00"), D("-600.00")]
    assert ledger.verify() == []


def test_a_rerun_writes_no_transaction(population):
    run_on(DEC_1)
    before = (LedgerTransaction.objects.count(), Posting.objects.count(), Charge.objects.count())

    again = run_on(DEC_1)

    assert again.charges == 0
    assert (LedgerTransaction.objects.count(), Posting.objects.count(), Charge.objects.count()) == before


def test_a_stale_cursor_charges_nothing_twice_and_leaves_no_empty_batch(population):
    run_on(DEC_1)
    before = (LedgerTransaction.objects.count(), Posting.objects.count())
    # A cursor wound back (as a lost update could leave it): the charges' unique period stops the double charge.
    Subscription.objects.filter(pk=population[0].pk).update(next_charge_on=DEC_1)

    again = run_on(DEC_1)

    assert again.charges == 0
    assert (LedgerTransaction.objects.count(), Posting.objects.count()) == before
    assert Charge.objects.filter(subscription=population[0], period_start=DEC_1).count() == 1
    assert ledger.verify() == []


def test_catching_up_posts_one_batch_per_period_start(make_plan, subscriber, admin, on):
    plan = make_plan("daily", "310.00", charge_mode="daily")
    with on(dt.date(2026, 12, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)

    run_on(dt.date(2026, 12, 4))  # the 2nd, 3rd and 4th, 10.00 each

    fees = Charge.objects.filter(subscription=subscription, kind="fee").order_by("period_start")
    assert [(c.period_start.day, c.amount, c.transaction.effective_date.day) for c in fees] == [
        (1, D("10.00"), 1),
        (2, D("10.00"), 2),
        (3, D("10.00"), 3),
        (4, D("10.00"), 4),
    ]
    assert balance(subscriber) == D("-40.00")
    assert ledger.verify() == []


def test_the_card_shows_what_each_fee_of_a_batch_was_for(population):
    run_on(DEC_1)

    lines = selectors.ledger_lines(population[1].subscriber)

    assert [(line.kind, line.memo, line.amount, line.running_balance) for line in lines] == [
        ("fee", "fast 01.12.2026–31.12.2026", D("-900.00"), D("-1800.00")),
        ("fee", "fast 01.11.2026–30.11.2026", D("-900.00"), D("-900.00")),
    ]


# --- reversing one charge of a batch ------------------------------------------------------------------------


def test_one_charge_of_a_batch_is_reversed_on_its_own_once(population, admin):
    run_on(DEC_1)
    charge = Charge.objects.get(subscription=population[1], period_start=DEC_1)
    batch_postings = list(Posting.objects.filter(transaction=charge.transaction).values_list("id", "amount"))

    with clock.travel_to(dt.date(2027, 1, 2)):  # December served: all of it can be given back
        reversal = actions.do_reverse_charge(charge, reason="billed by mistake", acting_user=admin)
        with pytest.raises(ValidationError) as again:
            actions.do_reverse_charge(charge, reason="billed by mistake", acting_user=admin)

    assert again.value.code == "already_reversed"
    assert (reversal.kind, reversal.amount, reversal.reverses_id) == ("reversal", D("-900.00"), charge.pk)
    tx = reversal.transaction
    assert tx.kind == "reversal" and tx.subscriber_id == population[1].subscriber_id
    assert sorted((p.account.code, p.amount) for p in tx.postings.select_related("account")) == [
        ("revenue:internet", D("-900.00")),
        (ledger.subscriber_account(population[1].subscriber_id).code, D("900.00")),
    ]
    # Only this subscriber's balance moves; the batch itself is untouched.
    assert [balance(s.subscriber) for s in population] == [D("-1300.00"), D("-900.00"), D("-600.00")]
    assert list(Posting.objects.filter(transaction=charge.transaction).values_list("id", "amount")) == batch_postings
    assert ledger.verify() == []


def test_a_charge_with_a_transaction_of_its_own_is_reversed_whole(make_plan, subscriber, admin, on):
    plan = make_plan("with-activation", "500.00", activation_fee=D("99.00"))
    with on(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        activation = Charge.objects.get(subscription=subscription, kind="activation")

        reversal = actions.do_reverse_charge(activation, reason="waived", acting_user=admin)

    assert (reversal.reverses_id, reversal.amount) == (activation.pk, D("-99.00"))
    assert balance(subscriber) == D("-500.00")
    assert ledger.verify() == []


# --- the deadlock retry ---------------------------------------------------------------------------------------


class _Deadlock(Exception):
    sqlstate = "40P01"


# SQLite has one writer and never deadlocks; and the flush after a test outside a transaction empties the
# ledger with DELETE, which its append-only triggers refuse (PostgreSQL's TRUNCATE may opt in).
@pytest.mark.skipif(connection.vendor != "postgresql", reason="deadlocks and their SQLSTATEs are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_chunk_aborted_by_a_deadlock_is_retried_whole_and_charged_once(population, monkeypatch):
    write = engine.BillingRun._charge_locked
    attempts = []

    def deadlocking_once(self, ids, bounds):
        outcome = write(self, ids, bounds)  # everything of the chunk written, not yet committed
        attempts.append(bounds)
        if len(attempts) == 1:
            raise OperationalError("deadlock detected") from _Deadlock()
        return outcome

    monkeypatch.setattr(engine.BillingRun, "_charge_locked", deadlocking_once)

    with clock.travel_to(DEC_1):
        result = engine.BillingRun(DEC_1, chunk_size=2, workers=1).run()

    first, second = sorted(s.pk for s in population)[:2], sorted(s.pk for s in population)[2:]
    assert attempts == [(first[0], first[1]), (first[0], first[1]), (second[0], second[0])]
    assert result.charges == 3 and result.amount == D("1850.00")
    assert Charge.objects.filter(period_start=DEC_1).count() == 3
    assert [balance(s.subscriber) for s in population] == [D("-1300.00"), D("-1800.00"), D("-600.00")]
    assert not Subscription.objects.filter(next_charge_on__lte=DEC_1).exists()
    assert ledger.verify() == []


# --- references checked by the database -------------------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="parallel chunk workers run on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_two_workers_charge_every_chunk_once(population):
    with clock.travel_to(DEC_1):
        result = engine.BillingRun(DEC_1, chunk_size=1, workers=2).run()
        again = engine.BillingRun(DEC_1, chunk_size=1, workers=2).run()

    assert result.workers == 2 and result.chunks == 3
    assert result.charges == 3 and result.amount == D("1850.00")
    assert again.charges == 0
    assert [balance(s.subscriber) for s in population] == [D("-1300.00"), D("-1800.00"), D("-600.00")]
    assert ledger.verify() == []


@pytest.fixture
def accounts(subscriber):
    return ledger.subscriber_account(subscriber.pk), ledger.system_account("adjustments")


def test_a_posting_to_a_transaction_that_does_not_exist_is_refused(accounts):
    account, other = accounts
    with pytest.raises(DatabaseError, match="transaction"):
        sql(
            "INSERT INTO billing_posting (transaction_id, account_id, amount) VALUES (%s, %s, 5), (%s, %s, -5)",
            [987654, account.pk, 987654, other.pk],
        )
    assert Posting.objects.count() == 0


def test_a_posting_to_an_account_that_does_not_exist_is_refused(accounts):
    account, other = accounts
    ledger.post(
        key="k1", kind="adjustment", effective_date=DEC_1, legs=[(account.pk, D("5.00")), (other.pk, D("-5.00"))]
    )
    # A transaction of its own that declares its two legs, so only the missing account can refuse them.
    tx = LedgerTransaction.objects.create(
        idempotency_key="k2", request_hash="-", kind="adjustment", effective_date=DEC_1, created_at=clock.now(), legs=2
    )
    with pytest.raises(DatabaseError, match="account"):
        sql(
            "INSERT INTO billing_posting (transaction_id, account_id, amount) VALUES (%s, %s, 5), (%s, %s, -5)",
            [tx.pk, account.pk, tx.pk, 987654],
        )
    assert Posting.objects.count() == 2
    account.refresh_from_db()
    assert account.balance == D("5.00")  # the refused statement moved nothing


def test_a_charge_naming_a_missing_subscription_or_transaction_is_refused(population):
    charge = Charge.objects.filter(subscription=population[0]).first()
    insert = (
        "INSERT INTO billing_charge (subscription_id, kind, period_start, period_end, amount, transaction_id) "
        "VALUES (%s, 'proration_charge', '2026-12-01', '2026-12-02', 1, %s)"
    )
    with pytest.raises(DatabaseError, match="subscription"):
        sql(insert, [987654, charge.transaction_id])
    if connection.vendor == "postgresql":  # SQLite writes a batch's charges before their transaction
        with pytest.raises(DatabaseError, match="transaction"):
            sql(insert, [population[0].pk, 987654])
    assert Charge.objects.count() == 3


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM billing_ledgeraccount WHERE subscriber_id IS NOT NULL",
        "DELETE FROM billing_ledgeraccount WHERE code = 'revenue:internet'",
        "DELETE FROM billing_subscription",
        "DELETE FROM catalog_planprice",
        "UPDATE billing_charge SET subscription_id = subscription_id + 1000",
    ],
)
def test_the_database_refuses_to_take_away_what_the_ledger_names(population, statement):
    before = (LedgerAccount.objects.count(), Subscription.objects.count(), Charge.objects.count())
    # The ledger's own guard answers (a foreign key elsewhere, e.g. the subscription's events, would say otherwise).
    with pytest.raises(DatabaseError, match=r"ledger|charges|postings|references"):
        sql(statement)
    assert (LedgerAccount.objects.count(), Subscription.objects.count(), Charge.objects.count()) == before


def test_an_account_without_postings_can_still_be_deleted(subscriber):
    account = ledger.subscriber_account(subscriber.pk)
    sql("DELETE FROM billing_ledgeraccount WHERE id = %s", [account.pk])
    assert not LedgerAccount.objects.filter(pk=account.pk).exists()


def test_verify_reports_postings_that_name_what_does_not_exist(accounts):
    account, other = accounts
    tx, _ = ledger.post(
        key="k1", kind="adjustment", effective_date=DEC_1, legs=[(account.pk, D("5.00")), (other.pk, D("-5.00"))]
    )
    with connection.cursor() as cursor:
        # What a careless superuser could do: insert with the checks switched off.
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        else:
            cursor.execute("DROP TRIGGER billing_posting_transaction_exists")
            cursor.execute("DROP TRIGGER billing_posting_account_exists")
            cursor.execute("DROP TRIGGER billing_posting_sealed")
        cursor.execute(
            "INSERT INTO billing_posting (transaction_id, account_id, amount) VALUES (%s, %s, 3), (%s, %s, -3)",
            [tx.pk, 987654, 987655, other.pk],
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")

    problems = ledger.verify()

    dangling = sorted(p for p in problems if "does not exist" in p)
    assert len(dangling) == 2
    assert "or account 987654 does not exist" in dangling[0] + dangling[1]
    assert "transaction 987655 or account" in dangling[0] + dangling[1]
