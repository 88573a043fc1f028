"""Attacks on merging duplicates: a merge the database refuses after earlier chunks committed, and a pilot's row
merged into a subscriber of another branch."""

from decimal import Decimal

import pytest
from django.db import connection

from abonent.billing import ledger
from abonent.billing.models import LedgerTransaction, Posting, TransactionKind
from abonent.imports import actions, selectors
from abonent.imports.models import ImportedRecord, JobStatus
from abonent.subscribers.models import Subscriber

from .conftest import csv_bytes
from .test_dirty import row


def test_a_merge_the_database_refuses_quarantines_the_row_and_the_job_finishes(configured, admin):
    if connection.vendor != "postgresql":
        pytest.skip("numeric overflow of a balance column is PostgreSQL's; SQLite stores any number")
    rich = row("1001", "Иванов Иван Иванович", "2801 111111", deposit="999999999999,99")
    twin = row("1003", "Иванов Иван Иванович", "2801 111111", deposit="999999999999,99")
    other = row("1004", "Кузнецов Олег Олегович", "2804 444444", deposit="10")
    job = configured(csv_bytes([rich, twin, other]), "a.csv", duplicate_default="merge")

    job = actions.run_job(job, dry_run=False, acting_user=admin)

    assert job.status == JobStatus.DONE, job.error
    assert job.report["rows"]["new"] == 2 and job.report["rows"]["merged"] == 0
    assert [(i.row_number, i.code) for i in selectors.issues(job, dry_run=False) if not i.is_warning] == [
        (3, "write_refused")
    ]
    target = Subscriber.objects.get(legacy_account="1001")
    assert target.ledger_account.balance == Decimal("999999999999.99")
    assert not ImportedRecord.objects.filter(old_id="1003").exists()
    assert ledger.verify() == []


def test_a_pilot_row_is_not_merged_into_a_subscriber_of_another_branch(
    configured, admin, branch, other_branch, make_subscriber
):
    stranger = make_subscriber(
        last_name="Иванов",
        first_name="Иван",
        middle_name="Иванович",
        branch_obj=other_branch,
        passport_series="2801",
        passport_number="111111",
    )
    job = configured(
        csv_bytes([row("1001", "Иванов Иван Иванович", "2801 111111", deposit="500")]),
        "a.csv",
        duplicate_default="merge",
        pilot={"branches": [branch.name]},
    )

    job = actions.run_job(job, dry_run=False, acting_user=admin)

    assert job.status == JobStatus.DONE, job.error
    assert not LedgerTransaction.objects.filter(kind=TransactionKind.OPENING_BALANCE).exists()
    assert not Posting.objects.filter(account__subscriber=stranger).exists()
    assert not ImportedRecord.objects.exists()
    assert [i.code for i in selectors.issues(job, dry_run=False)] == ["duplicate_other_branch"]
    assert job.report["rows"]["merged"] == 0
