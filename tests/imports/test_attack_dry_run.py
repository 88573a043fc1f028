"""A dry run writes nothing to any domain table — every model of every app counted, not a chosen few — on each
path a real run takes: new rows, a merge, a changed row (update and balance correction), plans and payments."""

from django.apps import apps

from abonent.core.models import AuditEvent
from abonent.imports import actions
from abonent.imports.models import Entity

from .conftest import csv_bytes
from .test_dirty import row

# The job's own bookkeeping, which a dry run does write (its report, problems and duplicate groups).
BOOKKEEPING = {"imports.importjob", "imports.importfile", "imports.importissue", "imports.duplicategroup"}


def every_table() -> dict[str, int]:
    counts = {
        model._meta.label_lower: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.label_lower not in BOOKKEEPING and model._meta.managed and not model._meta.proxy
    }
    # The job's own audit rows ("imports.dry_run_finished") are bookkeeping too; every other audit row counts.
    counts["core.auditevent"] = AuditEvent.objects.exclude(action__startswith="imports.").count()
    return counts


def _job(admin, entity, content, **settings):
    job = actions.do_create_import_job(
        entity=entity, file_name="f.csv", content=content, source="mikbill", acting_user=admin
    )
    return actions.do_configure_job(job, acting_user=admin, **settings)


def test_no_dry_run_path_writes_any_domain_table(configured, admin):
    first = row("1001", "Иванов Иван Иванович", "2801 111111")
    actions.run_job(configured(csv_bytes([first]), "a.csv"), dry_run=False, acting_user=admin)

    changed = row("1001", "Иванов Иван Иванович", "2801 111111", deposit="250", phone="+7 916 555-55-{n}")
    twin = row("1003", "Иванов Иван Иванович", "2801 111111", deposit="50")
    fresh = row("1004", "Кузнецов Олег Олегович", "2804 444444")
    subscribers = configured(csv_bytes([changed, twin, fresh]), "b.csv", duplicate_default="merge")
    plans = _job(
        admin,
        Entity.PLANS,
        csv_bytes([["Гигабит-500", "1 200", "500 Мбит/с"]], ["name", "price", "speed"]),
        mapping={"name": "name", "price": "price", "download": "speed"},
    )
    payments = _job(
        admin,
        Entity.PAYMENTS,
        csv_bytes([["p1", "1001", "01.05.2026", "500"]], ["id", "uid", "date", "sum"]),
        mapping={"old_id": "id", "subscriber_old_id": "uid", "date": "date", "amount": "sum"},
    )
    before = every_table()

    for job in (subscribers, plans, payments):
        done = actions.run_job(job, dry_run=True, acting_user=admin)
        assert done.status == "dry_run_done", done.error

    assert every_table() == before
    rows = subscribers.__class__.objects.get(pk=subscribers.pk).dry_run_report["rows"]
    assert (rows["updated"], rows["merged"], rows["new"]) == (1, 1, 1)
