"""The 1C export (well-formed EnterpriseData whose totals match the documents and payments), the month-end run
with its counters, and the command."""

import datetime as dt
import json
from decimal import Decimal
from xml.etree import ElementTree as ET

import pytest
from django.core.management import call_command

from abonent.core import clock
from abonent.documents import actions, export_1c
from abonent.documents.models import Document, DocumentRun
from abonent.payments import actions as payments
from abonent.payments.models import PaymentMethod

from .conftest import NOVEMBER

pytestmark = pytest.mark.django_db
NS = {"d": export_1c.FORMAT, "msg": export_1c.MSG}


def parse(data: bytes) -> ET.Element:
    """Our own export, parsed to prove it well-formed (not untrusted input: no entity tricks to fear)."""
    return ET.fromstring(data)  # noqa: S314


def _sum(root, path: str) -> Decimal:
    return sum((Decimal(node.text) for node in root.findall(path, NS)), Decimal("0.00"))


def test_export_is_well_formed_and_its_totals_match(make_org, subscribe, admin, december):
    first, second = make_org(), make_org(name="ООО «Лютик»", inn="7707049388")
    subscribe(first)
    subscribe(second, paid="2000.00")
    with clock.travel_to(dt.date(2026, 11, 15)):
        payments.do_receive_payment(
            channel="bank", external_id="pp-17", amount="1000.00", method=PaymentMethod.BANK, subscriber=first
        )
        payments.do_receive_payment(
            channel="cash", external_id="pko-3", amount="500.00", method=PaymentMethod.CASH, subscriber=second
        )
    actions.do_issue_month_documents(first, NOVEMBER, acting_user=admin)
    actions.do_issue_month_documents(second, NOVEMBER, acting_user=admin, closing="upd")

    data, summary = export_1c.build(NOVEMBER)

    root = parse(data)  # well-formed, or this raises
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert root.find("msg:Header/msg:Format", NS).text == export_1c.FORMAT
    sales = root.findall("d:Body/d:Документ.РеализацияТоваровУслуг", NS)
    invoices = root.findall("d:Body/d:Документ.СчетФактураВыданный", NS)
    bank = root.findall("d:Body/d:Документ.ПоступлениеНаРасчетныйСчет", NS)
    assert len(root.findall("d:Body/d:Справочник.Контрагенты", NS)) == 2
    assert (len(sales), len(invoices)) == (2, 2)  # an act and a УПД; a счёт-фактура and the УПД (status 1)
    closing = Document.objects.filter(kind__in=["act", "upd"])
    assert _sum(root, "d:Body/d:Документ.РеализацияТоваровУслуг/d:Сумма") == sum(d.total for d in closing)
    assert _sum(root, "d:Body/d:Документ.РеализацияТоваровУслуг/d:Услуги/d:Строка/d:СуммаНДС") == Decimal("234.42")
    assert _sum(root, "d:Body/d:Документ.СчетФактураВыданный/d:Сумма") == Decimal("1300.00")
    assert _sum(root, "d:Body/d:Документ.ПоступлениеНаРасчетныйСчет/d:Сумма") == Decimal("1000.00")
    assert _sum(root, "d:Body/d:Документ.ПКО/d:Сумма") == Decimal("500.00")
    assert len(bank) == 1
    assert summary == {
        "counterparties": 2, "sales": 2, "sale_corrections": 0, "vat_invoices": 2, "payments": 2,
        "sales_total": "1300.00",
        "sales_vat": "234.42", "vat_invoices_total": "1300.00", "payments_total": "1500.00",
    }  # fmt: skip


def test_export_refs_are_stable_between_exports(org, subscribe, admin, december):
    subscribe(org)
    actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin)

    first, _ = export_1c.build(NOVEMBER)
    second, _ = export_1c.build(NOVEMBER)

    refs = lambda data: [n.text for n in parse(data).iter(f"{{{export_1c.FORMAT}}}Ссылка")]  # noqa: E731
    assert refs(first) == refs(second) and len(refs(first)) > 3


def test_export_from_the_console_needs_document_manage(org, subscribe, admin, make_staff, december):
    from django.test import Client

    subscribe(org)
    actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin)
    manager, support = Client(), Client()
    manager.force_login(admin)
    support.force_login(make_staff("support"))

    answer = manager.get("/staff/documents/export/", {"month": "2026-11"})

    assert answer.status_code == 200 and answer["Content-Type"] == "application/xml; charset=utf-8"
    parse(answer.content)
    assert support.get("/staff/documents/export/", {"month": "2026-11"}).status_code == 403
    assert manager.get("/staff/documents/export/", {"month": "nope"}).status_code == 400


def test_month_end_run_counts_and_skips_persons(make_org, make_subscriber, subscribe, admin, december):
    orgs = [make_org(name=f"ООО «Фирма {i}»", inn=inn) for i, inn in enumerate(["7707049388", "7736207543"])]
    for org in orgs:
        subscribe(org)
    subscribe(make_subscriber())  # a person: no closing documents, not counted

    run = actions.do_start_document_run(NOVEMBER, acting_user=admin)
    assert (run.status, run.total, run.done) == ("queued", 2, 0)
    done = actions.carry_out_run(run.pk)
    again = actions.carry_out_run(run.pk)

    assert (done.status, done.total, done.done, done.failed, done.issued, done.percent) == ("done", 2, 2, 0, 6, 100)
    assert again.issued == 6 and Document.objects.count() == 6


def test_a_failing_subscriber_does_not_stop_the_run(make_org, subscribe, admin, december, monkeypatch):
    orgs = [make_org(name=f"ООО «Фирма {i}»", inn=inn) for i, inn in enumerate(["7707049388", "7736207543"])]
    for org in orgs:
        subscribe(org)
    real = actions.do_issue_month_documents

    def flaky(subscriber, month, **kwargs):
        if subscriber.pk == orgs[0].pk:
            raise RuntimeError("renderer exploded")
        return real(subscriber, month, **kwargs)

    monkeypatch.setattr(actions, "do_issue_month_documents", flaky)
    run = actions.carry_out_run(actions.do_start_document_run(NOVEMBER, acting_user=admin).pk)

    assert (run.status, run.done, run.failed, run.issued) == ("failed", 1, 1, 3)
    assert run.errors == [{"subscriber": orgs[0].pk, "error": "renderer exploded"}]
    assert not Document.objects.filter(subscriber=orgs[0]).exists()


def test_periodic_job_starts_one_run_on_the_run_day(org, subscribe, settings):
    from abonent.documents.tasks import month_end_documents

    subscribe(org)
    settings.ABONENT_DOCUMENTS_RUN_DAY = 3
    with clock.travel_to(dt.date(2026, 12, 2)):  # before the run day: nothing yet
        assert month_end_documents.call() is None
    with clock.travel_to(dt.date(2027, 1, 3)):
        first = month_end_documents.call()
        second = month_end_documents.call()
    with clock.travel_to(dt.date(2027, 1, 4)):  # a later tick of the month finds the run
        third = month_end_documents.call()

    assert first is not None and second is None and third is None
    assert DocumentRun.objects.get().month == dt.date(2026, 12, 1)


def test_command_generates_and_exports(org, subscribe, december, tmp_path, capsys):
    subscribe(org)

    call_command("documents", "generate", "--month", "2026-11")
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    call_command("documents", "export", "--month", "2026-11", "-o", str(tmp_path / "x.xml"))

    assert out["done"] == 1 and out["issued"] == 3 and out["status"] == "done"
    parse((tmp_path / "x.xml").read_bytes())


def test_command_refuses_a_month_in_the_future(december):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="has not ended"):
        call_command("documents", "generate", "--month", "2026-12")
    assert not DocumentRun.objects.exists()
