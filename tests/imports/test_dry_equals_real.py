"""The dry run is the real run's plan without the writes: on the same file and settings its report equals the real
run's field by field (rows, entities, balances to the kopeck, statuses, privileges, duplicates) and so do its problem
rows (row, field, code, warning or not), while it writes no domain row."""

import datetime as dt
from decimal import Decimal

from abonent.billing.testing import run_on
from abonent.imports import actions
from abonent.imports.models import ImportIssue
from abonent.subscribers.models import Subscriber

from .conftest import CUTOVER, SEED, csv_bytes, xlsx
from .test_attack_dry_run import every_table
from .test_dirty import DIRTY, row


def _problems(job, *, dry_run: bool) -> list[tuple]:
    return sorted(
        ImportIssue.objects.filter(job=job, dry_run=dry_run).values_list("row_number", "field", "code", "is_warning")
    )


def _dry_then_real(job, admin) -> dict:
    """Both runs of one job; asserts the dry run wrote nothing and the two reports and problem lists agree."""
    before = every_table()
    dry = actions.run_job(job, dry_run=True, acting_user=admin)
    assert dry.status == "dry_run_done", dry.error
    assert every_table() == before
    done = actions.run_job(job, dry_run=False, acting_user=admin)
    assert done.status == "done", done.error
    planned, report = dict(dry.dry_run_report), dict(done.report)
    assert (planned.pop("dry_run"), report.pop("dry_run")) == (True, False)
    assert planned == report
    assert _problems(job, dry_run=True) == _problems(job, dry_run=False)
    return report


def test_the_seed_file_dry_run_report_is_the_real_runs(configured, admin):
    report = _dry_then_real(configured(xlsx([SEED])), admin)

    assert report["rows"]["new"] == 1
    assert report["balances"] == {"old_total": "1234.56", "new_total": "1234.56", "difference": "0.00"}
    assert report["entities"]["contacts"] == {"in_file": 2, "imported": 2}
    assert Subscriber.objects.get(legacy_account="173829").ledger_account.balance == Decimal("1234.56")


def test_the_dirty_file_dry_run_report_and_problems_are_the_real_runs(configured, admin):
    too_long = row("1007", "Орлов Пётр Петрович", "2807 777777")
    too_long[3] = f"г. Тверь, ул. {'Очень' * 40} длинная, д. 7"  # a street longer than its column (150)
    job = configured(csv_bytes([*DIRTY, too_long]), "dirty.csv")

    report = _dry_then_real(job, admin)

    codes = {code for _n, _f, code, _w in _problems(job, dry_run=False)}
    assert {"amount_invalid", "plan_unknown", "encoding_broken", "phone_invalid", "value_too_long"} <= codes
    assert (8, "street", "value_too_long", False) in _problems(job, dry_run=True)
    assert not Subscriber.objects.filter(legacy_account="1007").exists()
    assert report["rows"]["quarantined"] == 4
    assert report["balances"]["difference"] == "0.00"


def test_a_file_with_merges_duplicates_updates_and_a_refused_correction_reports_alike(configured, admin):
    first = row("1001", "Иванов Иван Иванович", "2801 111111")
    charged = row("1002", "Смирнова Анна Петровна", "2802 222222")
    actions.run_job(configured(csv_bytes([first, charged]), "a.csv"), dry_run=False, acting_user=admin)
    run_on(CUTOVER + dt.timedelta(days=1))  # 1002's account moves (and so does 1001's): corrections are refused

    rows = [
        row("1001", "Иванов Иван Иванович", "2801 111111", phone="+7 916 555-55-{n}"),  # changed, same balance
        row("1002", "Смирнова Анна Петровна", "2802 222222", deposit="900"),  # balance_differs
        row("1003", "Иванов Иван Иванович", "2801 111111", deposit="50"),  # merged into 1001's subscriber
        row("1004", "Кузнецов Олег Олегович", "2804 444444", deposit="-20,10"),
        row("1005", "Кузнецов Олег Олегович", "2804 444444", deposit="30"),  # merged into the row 1004
        row("1006", "Попова Ольга Ивановна", "2806 666666"),
        row("1007", "Попова Ольга Ивановна", "2807 777777", phone="+7 916 000-00-06"),  # same phone+name: merged
    ]
    job = configured(csv_bytes(rows), "b.csv", duplicate_default="merge")

    report = _dry_then_real(job, admin)

    assert report["rows"] | {"read": 7} == {
        "read": 7,
        "outside_pilot": 0,
        "new": 2,
        "updated": 1,
        "unchanged": 0,
        "merged": 3,
        "skipped_duplicates": 0,
        "quarantined": 1,
    }
    assert ("balance", "balance_differs") in {(f, c) for _n, f, c, _w in _problems(job, dry_run=False)}
    assert report["balances"]["old_total"] == "359.90"  # 100 (1001, updated) + 50 − 20.10 + 30 + 100 + 100
    assert report["balances"]["difference"] == "0.00"
    kuznetsov = Subscriber.objects.get(legacy_account="1004")
    assert kuznetsov.ledger_account.balance == Decimal("9.90")  # −20.10 + 30 merged
