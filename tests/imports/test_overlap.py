"""The real run on PostgreSQL writes its chunks from two threads at once (run_subscribers.WRITERS): each chunk still
lands whole, the report and the ledger are those of the sequential path, and account numbers reserved before a chunk
are confirmed under the sequence's lock before it commits (docs/adr/0019)."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from abonent.billing import ledger
from abonent.billing.models import LedgerTransaction, Posting, TransactionKind
from abonent.imports import actions, run_subscribers
from abonent.imports.models import ImportedRecord, ImportJob, JobStatus
from abonent.subscribers.models import Subscriber
from abonent.subscribers.validators import account_serial_start, make_account_number

from .conftest import csv_bytes
from .test_dirty import row

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="writer threads are PostgreSQL's path; SQLite writes in sequence"
    ),
    # Committed for real: a writer thread's own connection does not see a test's open transaction.
    pytest.mark.django_db(transaction=True),
]


SURNAMES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков"]


def _rows(first: int, count: int) -> list[list[str]]:
    # Old ids end in distinct pairs of digits across a test's files: ``row`` derives the phone and static IP from them.
    return [
        row(
            f"{first + i}",
            f"{SURNAMES[i]} Иван Иванович",
            f"29{i:02d} 2{first + i:05d}",
            deposit=f"{(i + 1) * 37},5{i}",
        )
        for i in range(count)
    ]


def _threads_of_writes(monkeypatch) -> list[str]:
    names: list[str] = []
    real = run_subscribers.SubscriberRun._write_detached

    def spy(self, rows, numbers):
        names.append(threading.current_thread().name)
        return real(self, rows, numbers)

    monkeypatch.setattr(run_subscribers.SubscriberRun, "_write_detached", spy)
    return names


def _assert_ledger_holds(rows: list[list[str]]) -> None:
    expected = {r[0]: Decimal(r[10].replace(",", ".")) for r in rows}
    got = {
        s.legacy_account: s.ledger_account.balance
        for s in Subscriber.objects.filter(legacy_account__in=expected).select_related("ledger_account")
    }
    assert got == expected
    assert ledger.verify() == []


def test_chunks_written_by_parallel_writers_land_whole_with_the_sequential_report(configured, admin, monkeypatch):
    rows = _rows(2001, 7)
    job = configured(csv_bytes(rows), "a.csv")
    monkeypatch.setattr(run_subscribers, "CHUNK_ROWS", 2)
    threads = _threads_of_writes(monkeypatch)
    progress = []

    job = actions.run_job(job, dry_run=False, acting_user=admin, progress=lambda done, total: progress.append(done))

    assert job.status == JobStatus.DONE, job.error
    assert len(threads) == 4 and all(name.startswith("import-writer") for name in threads), threads
    assert job.report["rows"]["new"] == 7 and job.report["rows"]["quarantined"] == 0
    assert job.report["balances"]["difference"] == "0.00"
    assert progress == sorted(progress) and progress[-1] == 7
    assert ImportJob.objects.get(pk=job.pk).rows_done == 7
    assert Subscriber.objects.count() == ImportedRecord.objects.count() == 7
    assert LedgerTransaction.objects.filter(kind=TransactionKind.OPENING_BALANCE).count() == 7
    numbers = list(Subscriber.objects.values_list("account_number", flat=True))
    assert len(set(numbers)) == 7
    _assert_ledger_holds(rows)
    total = sum((Decimal(r[10].replace(",", ".")) for r in rows), Decimal("0.00"))
    opening = ledger.system_account("opening_balances")
    assert Posting.objects.filter(account=opening).aggregate(total=Sum("amount"))["total"] == -total


def test_a_reserved_number_that_became_an_old_account_number_is_refused_and_the_rows_written_apart(
    configured, admin, monkeypatch
):
    # What a staff member setting an old account number between the reservation and the chunk's commit leaves: a
    # subscriber whose old number is one the writer was handed. The chunk is refused, its rows written one by one
    # with fresh numbers.
    first = configured(csv_bytes(_rows(3011, 1)), "a.csv")
    actions.run_job(first, dry_run=False, acting_user=admin)
    clash = make_account_number(account_serial_start() + 5_000_000)
    Subscriber.objects.filter(legacy_account="3011").update(legacy_account=clash)
    real = run_subscribers.reserve_account_numbers

    def reserve(count, *, avoid):
        return [clash, *real(count - 1, avoid=avoid)]

    monkeypatch.setattr(run_subscribers, "reserve_account_numbers", reserve)
    monkeypatch.setattr(run_subscribers, "CHUNK_ROWS", 3)
    rows = _rows(4021, 5)
    second = configured(csv_bytes(rows), "b.csv")
    threads = _threads_of_writes(monkeypatch)

    second = actions.run_job(second, dry_run=False, acting_user=admin)

    assert second.status == JobStatus.DONE, second.error
    assert len(threads) == 2
    assert second.report["rows"]["new"] == 5 and second.report["rows"]["quarantined"] == 0
    assert not Subscriber.objects.filter(account_number=clash).exists()
    assert Subscriber.objects.filter(legacy_account=clash).count() == 1
    assert Subscriber.objects.count() == 6
    _assert_ledger_holds(rows)
