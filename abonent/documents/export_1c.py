"""A month's documents and payments for 1C:Бухгалтерия, in EnterpriseData (the 1C exchange format, version 1.8).

A minimal subset, documented in docs/documents.md with a sample: the buyers (``Справочник.Контрагенты``), each
act or УПД (``Документ.РеализацияТоваровУслуг``, services), each VAT invoice and УПД with status 1
(``Документ.СчетФактураВыданный`` based on its sale), and the organisations' credited payments of the month
(``Документ.ПоступлениеНаРасчетныйСчет`` for money to the bank account, ``Документ.ПКО`` for cash at the office).
Every object's ``Ссылка`` is a UUID derived from the row (uuid5), so exporting a month again updates the same
objects in 1C instead of doubling them.

A correction is exported as the difference from the document it corrects, never as a second sale: a corrected
act or УПД is a ``Документ.КорректировкаРеализации`` based on the corrected sale, its sum and lines the change
(−216.67 for 650.00 → 433.33; zero for an исправление of requisites only), and a корректировочный счёт-фактура
carries the same difference. So the month's sales plus its later corrections are what was sold, in 1C and in the
summary. A branch-limited operator's export holds only the organisations of their branches.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from xml.etree import ElementTree as ET

from django.db.models import Q

from abonent.core import clock

from . import content
from .models import Document, DocumentKind, DocumentStatus

FORMAT = "http://v8.1c.ru/edi/edi_stnd/EnterpriseData/1.8"
MSG = "http://www.1c.ru/SSL/Exchange/Message"
NAMESPACE = uuid.UUID("5f0c7a4e-2b7b-4d3a-9a53-6f1c0de1c0de")
SALES = (DocumentKind.ACT, DocumentKind.UPD)


def ref(kind: str, pk) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{pk}"))


def _money(value) -> str:
    return f"{Decimal(value):.2f}"


# Characters XML 1.0 cannot carry at all (control characters other than tab and line breaks, lone surrogates,
# U+FFFE/U+FFFF): a name pasted from a bank statement must not make the month's whole file unreadable to 1C.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _sub(parent: ET.Element, tag: str, text=None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = _XML_ILLEGAL.sub(" ", str(text))
    return node


def _difference(doc: Document) -> tuple[Decimal, Decimal, list[dict]]:
    """A correction's change from the document it corrects: total, VAT and per-service lines (after − before)."""
    before = doc.corrects
    lines: dict[str, dict] = {}
    for sign, source in ((-1, before.lines), (1, doc.lines)):
        for line in source:
            row = lines.setdefault(
                line["service"], {"service": line["service"], "vat_rate": line["vat_rate"], "amount": Decimal("0"),
                                  "vat_amount": Decimal("0")}
            )  # fmt: skip
            row["amount"] += sign * Decimal(line["amount"])
            row["vat_amount"] += sign * Decimal(line["vat_amount"] or 0)
            if sign > 0:
                row["vat_rate"] = line["vat_rate"]
    total = doc.total - before.total
    vat = (doc.vat_total or 0) - (before.vat_total or 0)
    return Decimal(total), Decimal(vat), [row for row in lines.values() if row["amount"] or row["vat_amount"]]


def _vat_code(rate) -> str:
    return "БезНДС" if rate is None else f"НДС{rate}"


def build(month: dt.date, *, branch_ids: set[int] | None = None) -> tuple[bytes, dict]:
    """The month's export as UTF-8 XML, and what it holds (counts and totals, for the console and the tests).
    ``branch_ids``: only the subscribers of these branches (a branch-limited operator's export)."""
    from abonent.payments.models import Payment, PaymentStatus

    start, end = content.month_bounds(month)
    documents = list(
        Document.objects.filter(status=DocumentStatus.FINAL, date__gte=start, date__lt=end)
        .exclude(kind__in=[DocumentKind.INVOICE, DocumentKind.STATEMENT])
        .filter(**({"subscriber__branch__in": branch_ids} if branch_ids is not None else {}))
        .select_related("subscriber", "corrects")
        .order_by("date", "pk")
    )
    payments = list(
        Payment.objects.filter(
            Q(status=PaymentStatus.CREDITED),
            subscriber__kind="organization",
            received_at__date__gte=start,
            received_at__date__lt=end,
            **({"subscriber__branch__in": branch_ids} if branch_ids is not None else {}),
        )
        .select_related("subscriber")
        .order_by("received_at", "pk")
    )
    seller = content.seller_block()
    ET.register_namespace("msg", MSG)
    root = ET.Element("Message")
    header = _sub(root, f"{{{MSG}}}Header")
    _sub(header, f"{{{MSG}}}Format", FORMAT)
    _sub(header, f"{{{MSG}}}CreationDate", clock.now().replace(microsecond=0, tzinfo=None).isoformat())
    _sub(header, f"{{{MSG}}}AvailableVersion", "1.8")
    body = _sub(root, f"{{{FORMAT}}}Body")
    q = lambda tag: f"{{{FORMAT}}}{tag}"  # noqa: E731 - every element of the body is in the format's namespace

    counterparties: dict[int, dict] = {}
    for doc in documents:
        counterparties.setdefault(doc.subscriber_id, doc.buyer)
    for payment in payments:
        sub = payment.subscriber
        counterparties.setdefault(
            sub.pk, {"name": sub.organization_name or sub.display_name, "inn": sub.inn, "kpp": sub.kpp}
        )
    for subscriber_id, buyer in counterparties.items():
        node = _sub(body, q("Справочник.Контрагенты"))
        keys = _sub(node, q("КлючевыеСвойства"))
        _sub(keys, q("Ссылка"), ref("counterparty", subscriber_id))
        _sub(keys, q("Наименование"), buyer.get("name", ""))
        _sub(keys, q("НаименованиеПолное"), buyer.get("name", ""))
        _sub(keys, q("ИНН"), buyer.get("inn", ""))
        _sub(keys, q("КПП"), buyer.get("kpp", ""))
        _sub(keys, q("ЮридическоеФизическоеЛицо"), "ЮридическоеЛицо")

    sales_total = vat_total = invoices_total = Decimal("0.00")
    counts = {"counterparties": len(counterparties), "sales": 0, "sale_corrections": 0, "vat_invoices": 0,
              "payments": 0}  # fmt: skip
    for doc in documents:
        if doc.kind in SALES and doc.corrects_id:
            total, vat, changes = _difference(doc)
            node = _sub(body, q("Документ.КорректировкаРеализации"))
            _keys_q(node, q, "sale", doc.pk, doc.date, doc.number, doc.seller)
            amounts = doc.extra.get("correction_kind", "adjustment") == "adjustment"
            _sub(node, q("ВидОперации"), "КорректировкаПоСогласованиюСторон" if amounts else "ИсправлениеОшибки")
            _counterparty_q(node, q, doc.subscriber_id, doc.buyer)
            _sub(node, q("Валюта"), "RUB")
            _sub(node, q("Сумма"), _money(total))
            _sub(node, q("ЦенаВключаетНДС"), "true")
            base = _sub(node, q("ДокументОснование"))
            _sub(base, q("Ссылка"), ref("sale", doc.corrects_id))
            services = _sub(node, q("Услуги"))
            for change in changes:
                row = _sub(services, q("Строка"))
                item = _sub(row, q("Номенклатура"))
                _sub(item, q("Наименование"), change["service"])
                _sub(row, q("Содержание"), change["service"])
                _sub(row, q("Сумма"), _money(change["amount"]))
                _sub(row, q("СтавкаНДС"), _vat_code(change["vat_rate"]))
                _sub(row, q("СуммаНДС"), _money(change["vat_amount"]))
            counts["sale_corrections"] += 1
            sales_total += total
            vat_total += vat
        elif doc.kind in SALES:
            node = _sub(body, q("Документ.РеализацияТоваровУслуг"))
            _keys_q(node, q, "sale", doc.pk, doc.date, doc.number, doc.seller)
            _sub(node, q("ВидОперации"), "РеализацияУслуг")
            _counterparty_q(node, q, doc.subscriber_id, doc.buyer)
            _sub(node, q("Валюта"), "RUB")
            _sub(node, q("Сумма"), _money(doc.total))
            _sub(node, q("ЦенаВключаетНДС"), "true")
            services = _sub(node, q("Услуги"))
            for line in doc.lines:
                row = _sub(services, q("Строка"))
                item = _sub(row, q("Номенклатура"))
                _sub(item, q("Наименование"), line["service"])
                _sub(row, q("Содержание"), line["service"])
                _sub(row, q("Количество"), line["quantity"])
                _sub(row, q("Цена"), line["price"])
                _sub(row, q("Сумма"), line["amount"])
                _sub(row, q("СтавкаНДС"), _vat_code(line["vat_rate"]))
                _sub(row, q("СуммаНДС"), line["vat_amount"] or "0.00")
            counts["sales"] += 1
            sales_total += doc.total
            vat_total += doc.vat_total or 0
        if doc.kind == DocumentKind.VAT_INVOICE or (doc.kind == DocumentKind.UPD and doc.extra.get("upd_status") == 1):
            node = _sub(body, q("Документ.СчетФактураВыданный"))
            _keys_q(node, q, "vat_invoice", doc.pk, doc.date, doc.number, doc.seller)
            total, vat = Decimal(doc.total), Decimal(doc.vat_total or 0)
            if doc.corrects_id:
                total, vat, _changes = _difference(doc)
                amounts = doc.extra.get("correction_kind", "adjustment") == "adjustment"
                _sub(node, q("ВидСчетаФактуры"), "Корректировочный" if amounts else "Исправленный")
                _sub(node, q("Исправляет"), ref("vat_invoice", doc.corrects_id))
            else:
                _sub(node, q("ВидСчетаФактуры"), "НаРеализацию")
            _counterparty_q(node, q, doc.subscriber_id, doc.buyer)
            _sub(node, q("Сумма"), _money(total))
            _sub(node, q("СуммаНДС"), _money(vat))
            bases = _sub(node, q("ДокументыОснования"))
            base = _sub(bases, q("ДокументОснование"))
            _sub(base, q("Ссылка"), ref("sale", _sale_of(doc)))
            counts["vat_invoices"] += 1
            invoices_total += total

    payments_total = Decimal("0.00")
    for payment in payments:
        cash = payment.method == "cash"
        node = _sub(body, q("Документ.ПКО" if cash else "Документ.ПоступлениеНаРасчетныйСчет"))
        _keys_q(node, q, "payment", payment.pk, payment.received_at.date(), payment.pk, seller)
        _sub(node, q("ВидОперации"), "ОплатаОтПокупателя")
        sub = payment.subscriber
        _counterparty_q(node, q, sub.pk, {"name": sub.organization_name or sub.display_name, "inn": sub.inn,
                                          "kpp": sub.kpp})  # fmt: skip
        _sub(node, q("Сумма"), _money(payment.amount))
        _sub(node, q("НазначениеПлатежа"), f"Оплата по л/с {sub.account_number}")
        counts["payments"] += 1
        payments_total += payment.amount

    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    summary = {
        **counts,
        "sales_total": _money(sales_total),
        "sales_vat": _money(vat_total),
        "vat_invoices_total": _money(invoices_total),
        "payments_total": _money(payments_total),
    }
    return data, summary


def _sale_of(doc: Document) -> int:
    """The sale a VAT invoice is based on: the month's act (a УПД is its own sale)."""
    if doc.kind == DocumentKind.UPD:
        return doc.pk
    act = (
        Document.objects.filter(
            subscriber_id=doc.subscriber_id,
            kind=DocumentKind.ACT,
            period_start=doc.period_start,
            status=DocumentStatus.FINAL,
        )
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    return act or doc.pk


def _keys_q(parent, q, kind, pk, date, number, seller) -> None:
    keys = _sub(parent, q("КлючевыеСвойства"))
    _sub(keys, q("Ссылка"), ref(kind, pk))
    _sub(keys, q("Дата"), f"{date.isoformat()}T00:00:00")
    _sub(keys, q("Номер"), number)
    org = _sub(keys, q("Организация"))
    _sub(org, q("Ссылка"), ref("organisation", seller.get("inn") or "self"))
    _sub(org, q("Наименование"), seller.get("name", ""))
    _sub(org, q("ИНН"), seller.get("inn", ""))
    _sub(org, q("КПП"), seller.get("kpp", ""))


def _counterparty_q(parent, q, subscriber_id: int, buyer: dict) -> None:
    node = _sub(parent, q("Контрагент"))
    _sub(node, q("Ссылка"), ref("counterparty", subscriber_id))
    _sub(node, q("Наименование"), buyer.get("name", ""))
    _sub(node, q("ИНН"), buyer.get("inn", ""))
    _sub(node, q("КПП"), buyer.get("kpp", ""))


def file_name(month: dt.date) -> str:
    return f"enterprise-data-{month:%Y-%m}.xml"
