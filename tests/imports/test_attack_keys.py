"""Attack on the opening balances' idempotency keys: an old id with a colon in it."""

from decimal import Decimal

from abonent.billing import ledger
from abonent.billing.actions.imports import opening_key
from abonent.imports import actions, selectors
from abonent.imports.models import ImportedRecord, JobStatus

from .conftest import MAPPING, csv_bytes
from .test_dirty import row

NO_ACCOUNT = {k: v for k, v in MAPPING.items() if k != "legacy_account"}


def _balance(old_id: str) -> Decimal:
    record = ImportedRecord.objects.get(old_id=old_id)
    return ledger.subscriber_account(record.object_id).balance


def test_an_old_id_with_a_colon_does_not_share_keys_with_another_ids_corrections(configured, admin):
    plain = row("1001", "Иванов Иван Иванович", "2801 111111", deposit="100")
    colon = row("1002", "Смирнов Олег Петрович", "2802 222222", deposit="70")
    colon[0] = "1001:1"
    job = actions.run_job(
        configured(csv_bytes([plain, colon]), "a.csv", mapping=NO_ACCOUNT), dry_run=False, acting_user=admin
    )
    assert job.status == JobStatus.DONE, job.error

    # The old system's balance of 1001 changed: a correction is posted, and 1001:1's opening stays its own.
    plain = row("1001", "Иванов Иван Иванович", "2801 111111", deposit="150")
    job = actions.run_job(
        configured(csv_bytes([plain, colon]), "b.csv", mapping=NO_ACCOUNT), dry_run=False, acting_user=admin
    )

    assert job.status == JobStatus.DONE, job.error
    assert not list(selectors.issues(job, dry_run=False))
    assert (_balance("1001"), _balance("1001:1")) == (Decimal("150.00"), Decimal("70.00"))
    assert job.report["rows"]["updated"] == 1 and job.report["rows"]["unchanged"] == 1
    assert ledger.verify() == []


def test_plain_ids_keep_the_keys_already_issued():
    assert opening_key("mikbill", "173829") == "opening:mikbill:173829"
    assert opening_key("mikbill", "1001:1") != opening_key("mikbill", "1001") + ":1"
    assert opening_key("a:b", "c") != opening_key("a", "b:c")
