"""Issuing an organisation's month: the act and VAT invoice (or УПД) from the month's charges, the next month's
invoice, VAT by the dated rate, idempotent re-runs, gapless numbers, immutable final documents, corrections."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction

from abonent.core import clock, sequences
from abonent.documents import actions, content
from abonent.documents.models import Document, DocumentKind

from .conftest import NOVEMBER

pytestmark = pytest.mark.django_db


def _by_kind(issued):
    return {d.kind: d for d in issued.created}


def test_month_of_an_organisation_issues_act_vat_invoice_and_next_invoice(org, subscribe, admin, december):
    subscribe(org)

    issued = actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin)

    docs = _by_kind(issued)
    assert set(docs) == {"act", "vat_invoice", "invoice"}
    act = docs["act"]
    assert (act.number, act.year, act.date) == (1, 2026, dt.date(2026, 11, 30))
    assert (act.period_start, act.period_end) == (dt.date(2026, 11, 1), dt.date(2026, 12, 1))
    assert act.total == Decimal("650.00")
    # 22 % from 2026 (425-FZ), included in the price: 650 × 22 / 122 = 117.213… → 117.21.
    assert act.vat_total == Decimal("117.21")
    assert act.lines == [
        {
            "service": "Интернет за ноябрь 2026 г.",
            "quantity": 1,
            "unit": "мес.",
            "okei": "362",
            "price": "650.00",
            "amount": "650.00",
            "vat_rate": 22,
            "vat_label": "22%",
            "vat_amount": "117.21",
            "amount_net": "532.79",
        }
    ]
    assert docs["vat_invoice"].number == 1 and docs["vat_invoice"].series == "sf"
    invoice = docs["invoice"]
    assert (invoice.period_start, invoice.total) == (dt.date(2026, 12, 1), Decimal("650.00"))
    assert invoice.lines[0]["service"] == "Интернет (тариф «Интернет-100») за декабрь 2026 г."
    assert act.buyer["inn"] == "7736207543" and act.seller["inn"] == "7707083893"


def test_running_the_month_again_issues_nothing_and_takes_no_number(org, subscribe, admin, december):
    subscribe(org)
    first = actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin)

    again = actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin)

    assert again.created == []
    assert sorted(d.pk for d in again.existing) == sorted(d.pk for d in first.created)
    assert Document.objects.count() == 3
    assert sequences.allocate("documents:act:2026")[0] == 2  # no number was spent by the re-run


def test_upd_instead_of_act_and_vat_invoice(org, subscribe, admin, december):
    subscribe(org)

    issued = actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin, closing="upd")

    docs = _by_kind(issued)
    assert set(docs) == {"upd", "invoice"}
    assert docs["upd"].extra == {"upd_status": 1}
    assert docs["upd"].vat_total == Decimal("117.21")


def test_seller_without_vat_prints_without_vat_and_upd_status_2(org, subscribe, admin, december, settings):
    settings.ABONENT_FISCAL_VAT = "none"
    subscribe(org)

    act_kinds = _by_kind(actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin))
    assert set(act_kinds) == {"act", "invoice"}  # no счёт-фактура without VAT
    assert act_kinds["act"].vat_total is None
    assert act_kinds["act"].lines[0]["vat_label"] == "Без НДС"


def test_vat_rate_follows_the_service_date():
    with_2025 = content.vat_rate_on(dt.date(2025, 12, 31))
    with_2026 = content.vat_rate_on(dt.date(2026, 1, 1))

    assert (with_2025, with_2026) == (20, 22)
    assert content.vat_of(Decimal("650.00"), 20) == Decimal("108.33")
    assert content.vat_of(Decimal("650.00"), 22) == Decimal("117.21")


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("650.00", "Шестьсот пятьдесят рублей 00 копеек"),
        ("1.01", "Один рубль 01 копейка"),
        ("22.22", "Двадцать два рубля 22 копейки"),
        ("11.11", "Одиннадцать рублей 11 копеек"),
        ("1234567.89", "Один миллион двести тридцать четыре тысячи пятьсот шестьдесят семь рублей 89 копеек"),
        ("0.00", "Ноль рублей 00 копеек"),
    ],
)
def test_amount_in_words(amount, words):
    assert content.amount_in_words(Decimal(amount)) == words


def test_a_person_gets_no_closing_documents(make_subscriber, subscribe, admin, december):
    person = make_subscriber()
    subscribe(person)

    with pytest.raises(ValidationError) as caught:
        actions.do_issue_month_documents(person, NOVEMBER, acting_user=admin)

    assert caught.value.error_dict["subscriber"][0].code == "not_organization"
    assert not Document.objects.exists()


@pytest.mark.parametrize("month", [dt.date(2026, 12, 1), dt.date(2027, 3, 1)])
def test_a_month_not_ended_is_refused(org, subscribe, admin, december, month):
    subscribe(org)

    with pytest.raises(ValidationError) as caught:
        actions.do_issue_month_documents(org, month, acting_user=admin)

    assert caught.value.error_dict["month"][0].code == "month_not_closed"
    assert not Document.objects.exists()


def test_an_operator_without_the_permission_issues_nothing(org, subscribe, make_staff, december):
    from django.core.exceptions import PermissionDenied

    subscribe(org)
    support = make_staff("support")

    with pytest.raises(PermissionDenied):
        actions.do_issue_month_documents(org, NOVEMBER, acting_user=support)
    assert not Document.objects.exists()


def test_numbers_run_on_across_subscribers_and_restart_each_year(make_org, subscribe, admin, december):
    first, second = make_org(), make_org(name="ООО «Лютик»", inn="7707049388")
    subscribe(first)
    subscribe(second)

    a = _by_kind(actions.do_issue_month_documents(first, NOVEMBER, acting_user=admin))
    b = _by_kind(actions.do_issue_month_documents(second, NOVEMBER, acting_user=admin))

    assert (a["act"].number, b["act"].number) == (1, 2)
    assert sequences.allocate("documents:act:2027")[0] == 1


def test_a_final_document_cannot_be_changed_or_deleted(org, subscribe, admin, december):
    subscribe(org)
    act = _by_kind(actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin))["act"]

    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        Document.objects.filter(pk=act.pk).update(total=Decimal("1.00"))
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        Document.objects.filter(pk=act.pk).delete()

    act.refresh_from_db()
    assert act.total == Decimal("650.00")


def test_a_draft_may_still_be_edited(org):
    draft = Document.objects.create(
        kind=DocumentKind.ACT, series="act", date=dt.date(2026, 11, 30), subscriber=org,
        period_start=dt.date(2026, 11, 1), period_end=dt.date(2026, 12, 1), total=Decimal("1.00"),
        created_at=clock.now(),
    )  # fmt: skip

    Document.objects.filter(pk=draft.pk).update(total=Decimal("2.00"))
    draft.refresh_from_db()
    assert draft.total == Decimal("2.00")


def test_correction_after_a_charge_given_back(org, subscribe, admin, december):
    from abonent.billing import actions as billing
    from abonent.billing.models import Charge

    subscription = subscribe(org)
    issued = _by_kind(actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin))
    vat_invoice = issued["vat_invoice"]
    november_fee = Charge.objects.get(subscription=subscription, period_start=NOVEMBER, kind="fee")
    # A back-dated entry for November made after its documents (here: ten days given back, recorded as of 20
    # November, as a late import would): the month's amounts change, the issued documents do not.
    with clock.travel_to(dt.date(2026, 11, 20)):
        billing.do_reverse_charge(
            november_fee, reason="outage", first_day=NOVEMBER, until=dt.date(2026, 11, 11), acting_user=admin
        )

    correction = actions.do_correct_document(vat_invoice, acting_user=admin, reason="Перерасчёт за аварию")

    assert correction.corrects_id == vat_invoice.pk
    assert correction.kind == "vat_invoice" and correction.number == 2
    # 650 − 650 × 10/30 = 433.33, VAT 433.33 × 22 / 122 = 78.14.
    assert (correction.total, correction.vat_total) == (Decimal("433.33"), Decimal("78.14"))
    assert correction.extra["corrects_number"] == 1
    vat_invoice.refresh_from_db()
    assert vat_invoice.total == Decimal("650.00")  # the original stays as it was
    with pytest.raises(ValidationError) as caught:
        actions.do_correct_document(vat_invoice, acting_user=admin, reason="again")
    assert caught.value.code == "already_corrected"


def test_correcting_with_nothing_changed_is_refused(org, subscribe, admin, december):
    subscribe(org)
    act = _by_kind(actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin))["act"]

    with pytest.raises(ValidationError) as caught:
        actions.do_correct_document(act, acting_user=admin, reason="проверка")

    assert caught.value.code == "nothing_changed"
    assert Document.objects.filter(corrects=act).count() == 0


def test_issuing_queues_the_document_issued_message(org, subscribe, admin, december):
    from abonent.notifications.models import Message

    subscribe(org)
    act = _by_kind(actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin))["act"]

    messages = Message.objects.filter(subscriber_id=org.pk, event="document_issued")
    keys = set(messages.values_list("dedup_key", flat=True))
    assert any(key.startswith(f"document:{act.pk}:") for key in keys)
