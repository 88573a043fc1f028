"""Attacks on the payment-history run: old ids the column cannot hold, and two jobs of one file at once."""

import pytest
from django.db import connection

from abonent.imports import actions, selectors
from abonent.imports.models import Entity, ImportJob, JobStatus, LegacyPayment
from tests.concurrency import together

from .conftest import csv_bytes
from .test_dirty import row

PAYMENT_HEADERS = ["id", "uid", "date", "sum"]
PAYMENT_MAPPING = {"old_id": "id", "subscriber_old_id": "uid", "date": "date", "amount": "sum"}


def _payments(admin, rows):
    job = actions.do_create_import_job(
        entity=Entity.PAYMENTS,
        file_name="p.csv",
        content=csv_bytes(rows, PAYMENT_HEADERS),
        source="mikbill",
        acting_user=admin,
    )
    return actions.do_configure_job(job, mapping=PAYMENT_MAPPING, acting_user=admin)


@pytest.fixture
def imported(configured, admin):
    actions.run_job(
        configured(csv_bytes([row("1001", "Иванов Иван Иванович", "2801 111111")]), "a.csv"),
        dry_run=False,
        acting_user=admin,
    )


def test_old_ids_longer_than_the_column_are_quarantined_not_a_failed_job(imported, admin):
    long_a, long_b = "p" * 100 + "-a", "p" * 100 + "-b"  # the same first 100 characters
    job = _payments(
        admin,
        [
            [long_a, "1001", "01.05.2026", "500"],
            [long_b, "1001", "02.05.2026", "300"],
            ["p1", "1001", "03.05.2026", "7"],
        ],
    )

    job = actions.run_job(job, dry_run=False, acting_user=admin)

    assert job.status == JobStatus.DONE, job.error
    assert job.report["rows"] == {"read": 3, "new": 1, "unchanged": 0, "quarantined": 2}
    assert [(i.row_number, i.code) for i in selectors.issues(job, dry_run=False)] == [
        (2, "old_id_too_long"),
        (3, "old_id_too_long"),
    ]
    assert list(LegacyPayment.objects.values_list("old_id", flat=True)) == ["p1"]
    again = actions.run_job(job, dry_run=False, acting_user=admin)
    assert again.report["rows"]["unchanged"] == 1 and LegacyPayment.objects.count() == 1


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL; SQLite serialises the whole database"
)
@pytest.mark.django_db(transaction=True)
def test_two_payment_jobs_of_one_file_at_once_record_each_payment_once(imported, admin):
    rows = [[f"p{i}", "1001", "01.05.2026", f"{i + 1}00"] for i in range(20)]
    first, second = _payments(admin, rows), _payments(admin, rows)

    outcomes = together(
        lambda: actions.run_job(first, dry_run=False, acting_user=admin),
        lambda: actions.run_job(second, dry_run=False, acting_user=admin),
    )

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    reports = [ImportJob.objects.get(pk=j.pk).report["rows"] for j in (first, second)]
    assert sorted(r["new"] for r in reports) == [0, 20], reports
    assert all(r["new"] + r["unchanged"] == 20 for r in reports), reports
    assert LegacyPayment.objects.count() == 20
