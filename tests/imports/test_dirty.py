"""A dirty export: duplicates, bad phones, a text amount, an unknown plan, a broken encoding."""

import datetime as dt
from decimal import Decimal

from abonent.billing.models import Charge, LedgerAccount, LedgerTransaction, Posting, Subscription
from abonent.billing.testing import run_on
from abonent.core.models import AuditEvent
from abonent.imports import actions, selectors
from abonent.imports.models import ImportedRecord
from abonent.network.models import Login
from abonent.subscribers.models import Address, ContactPoint, Contract, Equipment, Subscriber

from .conftest import SEED, csv_bytes


def row(uid, name, passport, *, phone="+7 916 000-00-{n}", deposit="100", packet="Интернет-100", price=""):
    values = list(SEED)
    n = uid[-2:]
    ip = int(n)
    values[0], values[1], values[2] = uid, name, passport
    values[3] = f"г. Тверь, ул. Мира, д. {n}"
    values[4] = phone.format(n=n)
    values[5] = f"u{uid}@example.ru"
    values[6] = f"Д-{uid}"
    values[8], values[9], values[10] = packet, price, deposit
    values[13], values[14], values[15], values[17] = f"u{uid}", "pass-word", f"100.64.1.{ip}", f"SN{uid}"
    return values


DIRTY = [
    row("1001", "Иванов Иван Иванович", "2801 111111", deposit="-150,50"),
    row("1002", "Смирнова Анна Петровна", "2802 222222", phone="12345", price="600"),
    row("1003", "Иванов Иван Иванович", "2801 111111"),  # the same passport as 1001
    row("1004", "Кузнецов Олег Олегович", "2804 444444", deposit="сто рублей"),
    row("1005", "Попова Ольга Ивановна", "2805 555555", packet="Гигабит-500"),
    row("1006", "РџРµС‚СЂРѕРІ Р\ufffdРІР°РЅ", "2806 666666"),
]


def domain_counts():
    return {
        model.__name__: model.objects.count()
        for model in (
            Subscriber,
            Contract,
            Address,
            ContactPoint,
            Equipment,
            Subscription,
            LedgerAccount,
            LedgerTransaction,
            Posting,
            Login,
            ImportedRecord,
        )
    } | {"audit": AuditEvent.objects.filter(action="subscriber.imported").count()}


def test_dirty_file_report_names_every_problem_and_the_dry_run_writes_nothing(configured, admin):
    job = configured(csv_bytes(DIRTY), "dirty.csv")
    before = domain_counts()

    job = actions.run_job(job, dry_run=True, acting_user=admin)

    assert domain_counts() == before
    problems = {(i.row_number, i.code, i.is_warning) for i in selectors.issues(job, dry_run=True)}
    assert problems == {
        (3, "phone_invalid", True),
        (4, "duplicate_skipped", False),
        (5, "amount_invalid", False),
        (6, "plan_unknown", False),
        (7, "encoding_broken", False),
    }
    report = job.dry_run_report
    assert report["rows"]["new"] == 2
    assert report["rows"]["quarantined"] == 3
    assert report["rows"]["skipped_duplicates"] == 1
    assert report["balances"] == {"old_total": "-50.50", "new_total": "-50.50", "difference": "0.00"}
    assert report["debtors"] == {"count": 1, "sum": "-150.50"}
    assert report["individual_prices"] == {"count": 1, "old_ids": ["1002"]}
    assert [(d["kind"], d["old_ids"]) for d in report["duplicates"]] == [("document", ["1001", "1003"])]


def test_real_run_imports_the_good_rows_quarantines_the_rest_and_a_second_run_changes_nothing(configured, admin):
    job = configured(csv_bytes(DIRTY), "dirty.csv")
    dry = actions.run_job(job, dry_run=True, acting_user=admin)

    job = actions.run_job(job, dry_run=False, acting_user=admin)

    assert job.report["rows"] == dry.dry_run_report["rows"]
    assert sorted(Subscriber.objects.values_list("legacy_account", flat=True)) == ["1001", "1002"]
    assert {i.row_number for i in selectors.issues(job, dry_run=False) if not i.is_warning} == {4, 5, 6, 7}
    assert selectors.issues(job, dry_run=False).get(row_number=5).raw["deposit"] == "сто рублей"
    after_first = domain_counts()
    assert after_first["Subscriber"] == 2 and after_first["LedgerTransaction"] == 2

    again = actions.run_job(job, dry_run=False, acting_user=admin)

    assert domain_counts() == after_first
    assert again.report["rows"]["unchanged"] == 2
    assert again.report["rows"]["new"] == 0


def test_billing_after_the_import_charges_from_the_day_after_the_cutover_only(configured, admin):
    job = configured(csv_bytes(DIRTY[:2]), "two.csv")
    actions.run_job(job, dry_run=False, acting_user=admin)

    run_on(dt.date(2026, 6, 1))
    run_on(dt.date(2026, 6, 2))

    fees = sorted(
        Charge.objects.filter(kind="fee").values_list(
            "subscription__subscriber__legacy_account", "period_start", "period_end", "amount"
        )
    )
    assert fees == [
        ("1001", dt.date(2026, 6, 1), dt.date(2026, 7, 1), Decimal("650.00")),
        ("1002", dt.date(2026, 6, 1), dt.date(2026, 7, 1), Decimal("600.00")),
    ]
    first = Subscriber.objects.get(legacy_account="1001")
    assert first.ledger_account.balance == Decimal("-800.50")
