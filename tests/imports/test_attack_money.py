"""Attacks on the money an import moves: a re-import after the billing run, a merged row that changes, an absurd
cut-over, an old account number equal to one of ours."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from abonent.billing.models import Charge, LedgerTransaction, TransactionKind
from abonent.billing.testing import run_on
from abonent.imports import actions, selectors
from abonent.subscribers.models import Subscriber
from abonent.subscribers.validators import account_serial_start, make_account_number

from .conftest import CUTOVER, csv_bytes
from .test_dirty import row


def _opening_sum(subscriber) -> Decimal:
    return sum(
        (
            p.amount
            for tx in LedgerTransaction.objects.filter(kind=TransactionKind.OPENING_BALANCE)
            for p in tx.postings.filter(account__subscriber=subscriber)
        ),
        Decimal("0.00"),
    )


def test_a_changed_balance_after_the_billing_run_charged_is_not_posted_silently(configured, admin):
    # The billing run's fee transactions are batched (subscriber_id NULL): the "no other activity" check must see
    # the subscriber's postings, not only transactions tagged with the subscriber.
    actions.run_job(
        configured(csv_bytes([row("1001", "Иванов Иван Иванович", "2801 111111")]), "a.csv"),
        dry_run=False,
        acting_user=admin,
    )
    run_on(CUTOVER + dt.timedelta(days=1))
    subscriber = Subscriber.objects.get(legacy_account="1001")
    assert Charge.objects.filter(subscription__subscriber=subscriber).count() == 1
    balance = subscriber.ledger_account.balance
    assert balance == Decimal("-550.00")

    job = configured(csv_bytes([row("1001", "Иванов Иван Иванович", "2801 111111", deposit="5000")]), "b.csv")
    job = actions.run_job(job, dry_run=False, acting_user=admin)

    subscriber.ledger_account.refresh_from_db()
    assert subscriber.ledger_account.balance == balance
    assert _opening_sum(subscriber) == Decimal("100.00")
    assert [i.code for i in selectors.issues(job, dry_run=False)] == ["balance_differs"]


def test_a_merged_row_that_changes_does_not_rewrite_the_subscriber_it_was_merged_into(configured, admin):
    first = row("1001", "Иванов Иван Иванович", "2801 111111")
    twin = row("1003", "Иванов Иван Иванович", "2801 111111", deposit="50")
    actions.run_job(
        configured(csv_bytes([first, twin]), "a.csv", duplicate_default="merge"), dry_run=False, acting_user=admin
    )
    target = Subscriber.objects.get(legacy_account="1001")
    assert _opening_sum(target) == Decimal("150.00")

    changed = row("1003", "Сидорова Мария Петровна", "2801 111111", deposit="50")
    changed[11] = "3000"  # credit limit
    job = actions.run_job(
        configured(csv_bytes([first, changed]), "b.csv", duplicate_default="merge"), dry_run=False, acting_user=admin
    )

    target.refresh_from_db()
    assert (target.last_name, target.first_name) == ("Иванов", "Иван")
    assert target.ledger_account.credit_limit == Decimal("0.00")
    assert _opening_sum(target) == Decimal("150.00")
    assert job.report["rows"]["new"] == 0


@pytest.mark.parametrize("cutover", [dt.date(2016, 5, 31), dt.date(9999, 12, 31), dt.date(1, 1, 1)])
def test_an_absurd_cutover_is_refused_before_the_billing_run_charges_years_of_fees(configured, cutover):
    # «31.05.16» for «31.05.26»: the billing run would catch up ten years of fees on every imported subscriber.
    with pytest.raises(ValidationError) as refused:
        configured(csv_bytes([row("1001", "Иванов Иван Иванович", "2801 111111")]), "a.csv", cutover_date=cutover)
    assert refused.value.error_dict["cutover_date"][0].code == "cutover_out_of_range"


def test_an_old_account_number_equal_to_the_number_the_import_gives_is_never_both(configured, admin, db):
    upcoming = make_account_number(account_serial_start())  # the first number of a fresh database
    victim = row("1001", "Иванов Иван Иванович", "2801 111111")
    clash = row("1002", "Смирнова Анна Петровна", "2802 222222")
    clash[0] = upcoming  # old id and old account number
    actions.run_job(configured(csv_bytes([victim, clash]), "a.csv"), dry_run=False, acting_user=admin)

    numbers = list(Subscriber.objects.values_list("account_number", flat=True))
    olds = list(Subscriber.objects.exclude(legacy_account=None).values_list("legacy_account", flat=True))
    assert not set(numbers) & set(olds)
