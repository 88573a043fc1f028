"""The seed article's migrated account: 173829 on "Интернет-100" at 650 ₽ with a "GPON-ONT ZTE", active, from XLSX."""

from decimal import Decimal

from abonent.billing.models import LedgerTransaction, Subscription, TransactionKind
from abonent.core.models import AuditEvent
from abonent.imports import actions
from abonent.network.models import Login
from abonent.subscribers.models import Equipment, Subscriber
from abonent.subscribers.selectors import SubscriberFilters, search_subscribers

from .conftest import SEED, xlsx


def _counts():
    return (
        Subscriber.objects.count(),
        Subscription.objects.count(),
        LedgerTransaction.objects.count(),
        AuditEvent.objects.filter(action="subscriber.imported").count(),
        Login.objects.count(),
        Equipment.objects.count(),
    )


def test_the_seed_record_from_xlsx_is_imported_and_found(configured, admin):
    job = configured(xlsx([SEED]))

    dry = actions.run_job(job, dry_run=True, acting_user=admin)
    assert _counts() == (0, 0, 0, 0, 0, 0)
    assert dry.dry_run_report["rows"]["new"] == 1
    assert dry.dry_run_report["balances"] == {"old_total": "1234.56", "new_total": "1234.56", "difference": "0.00"}

    done = actions.run_job(job, dry_run=False, acting_user=admin)

    assert done.report["rows"]["new"] == 1
    assert done.report["balances"] == dry.dry_run_report["balances"]
    subscriber = Subscriber.objects.get(legacy_account="173829")
    assert subscriber.display_name == "Петров Иван Сергеевич"
    assert subscriber.status == "active"
    subscription = Subscription.objects.get(subscriber=subscriber)
    assert subscription.plan.name == "Интернет-100"
    assert str(subscription.next_charge_on) == "2026-06-01"
    assert subscriber.ledger_account.balance == Decimal("1234.56")
    opening = LedgerTransaction.objects.get(subscriber_id=subscriber.pk)
    assert (opening.kind, opening.idempotency_key) == (TransactionKind.OPENING_BALANCE, "opening:mikbill:173829")
    device = Equipment.objects.get(assignments__subscriber=subscriber)
    assert (device.model, device.vendor, device.kind, device.serial_number) == (
        "GPON-ONT ZTE",
        "ZTE",
        "ont",
        "ZTEG12345678",
    )
    login = Login.objects.get(subscriber=subscriber)
    assert (login.username, login.password, login.static_ip) == ("petrov", "s3cret-pass", "100.64.0.10")
    assert sorted(subscriber.contacts.values_list("value", flat=True)) == ["+79161234567", "petrov@example.ru"]
    found = search_subscribers(admin, SubscriberFilters(query="173829"))
    assert [s.pk for s in found.results] == [subscriber.pk]


def test_running_the_seed_again_changes_nothing(configured, admin):
    job = configured(xlsx([SEED]))
    actions.run_job(job, dry_run=False, acting_user=admin)
    before = _counts()

    again = actions.run_job(job, dry_run=False, acting_user=admin)

    assert _counts() == before
    assert again.report["rows"]["unchanged"] == 1
    assert again.report["rows"]["new"] == 0
    assert again.report["balances"]["difference"] == "0.00"
