"""What a receipt says: the item, the VAT for the receipt's date, the buyer's contact, the company block.

Pure functions of a payment and the settings, except ``client_of`` (reads the subscriber's contacts). Money is
``Decimal`` throughout; ``to_json`` writes it as JSON numbers without passing through float.

The content follows the practice notes/payments-ru.md §2.3 records for a balance top-up (a Rostelecom receipt
of 2026, other ISPs' code): «Аванс за услуги связи», payment method ``advance`` (tag 1214 = 3), payment object
``payment`` (tag 1212 = 10 in FFD 1.2, which ATOL v5 takes as a number), the calculated VAT rate 22/122 from
2026-01-01 (20/120 before; 425-FZ of 28.11.2025), ``none`` for an ISP on a simplified tax system.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from decimal import Decimal
from urllib.parse import quote

from django.conf import settings
from django.utils import timezone

from abonent.core.company import TaxSettings, tax_settings
from abonent.core.money import quantize

from .base import FiscalError

# ATOL v5 VAT codes and the rate each stands for (a three-digit code is the calculated rate r/(100+r)).
VAT_RATES = {
    "vat0": 0,
    "vat5": 5,
    "vat7": 7,
    "vat10": 10,
    "vat20": 20,
    "vat22": 22,
    "vat105": 5,
    "vat107": 7,
    "vat110": 10,
    "vat120": 20,
    "vat122": 22,
}
CALCULATED = {5: "vat105", 7: "vat107", 10: "vat110", 20: "vat120", 22: "vat122"}
SNO_VALUES = ("osn", "usn_income", "usn_income_outcome", "esn", "patent")
# Tax systems that pay no VAT by default; one that does (past the USN threshold) sets ABONENT_FISCAL_VAT.
NO_VAT_SNO = ("usn_income", "usn_income_outcome", "patent")
PAYMENT_METHOD_ADVANCE = "advance"  # tag 1214 = 3
PAYMENT_OBJECT_PAYMENT = 10  # tag 1212 = 10, «платёж» (FFD 1.2)
MEASURE_PIECE = 0  # tag 2108 = 0, «шт.»
PAYMENT_TYPE_CASH = 0
PAYMENT_TYPE_ELECTRONIC = 1
ITEM_NAME_MAX = 128


def settings_problem(text: str) -> FiscalError:
    return FiscalError(text, retryable=False, code="settings")


def vat_rate_rows() -> list[tuple[dt.date, int]]:
    """``ABONENT_FISCAL_VAT_RATES`` ("2019-01-01:20,2026-01-01:22") as dated rows, oldest first."""
    rows = []
    for item in str(settings.ABONENT_FISCAL_VAT_RATES).split(","):
        if not item.strip():
            continue
        try:
            day, rate = item.strip().split(":")
            rows.append((dt.date.fromisoformat(day.strip()), int(rate)))
        except ValueError:
            raise settings_problem(f"ABONENT_FISCAL_VAT_RATES: {item.strip()!r} is not DATE:RATE") from None
    if not rows:
        raise settings_problem("ABONENT_FISCAL_VAT_RATES names no rate")
    return sorted(rows)


def vat_code_for(day: dt.date) -> str:
    """The VAT code of a receipt for money taken on ``day`` (the operator's local date)."""
    taxes = tax_settings()
    mode = (taxes.vat_mode or "auto").strip().lower()
    if mode == "none" or (mode == "auto" and taxes.tax_system in NO_VAT_SNO):
        return "none"
    if mode != "auto":
        if mode not in VAT_RATES:
            raise settings_problem(f"ABONENT_FISCAL_VAT: {mode!r} is not auto, none or an ATOL VAT code")
        return mode
    rate = None
    for since, value in vat_rate_rows():
        if since <= day:
            rate = value
    if rate is None:
        raise settings_problem(f"ABONENT_FISCAL_VAT_RATES has no rate for {day.isoformat()}")
    if rate not in CALCULATED:
        raise settings_problem(f"ABONENT_FISCAL_VAT_RATES: no calculated VAT code for {rate} %")
    return CALCULATED[rate]


def vat_sum(amount: Decimal, code: str) -> Decimal | None:
    """The VAT inside ``amount`` (prices include VAT): amount × r / (100 + r), half-up to kopecks."""
    if code == "none":
        return None
    rate = VAT_RATES[code]
    return quantize(amount * rate / (100 + rate))


def company_block(taxes: TaxSettings | None = None) -> dict:
    """The seller's part of a receipt. The INN is ABONENT_FISCAL_INN, the one the till is registered under (the
    fiscal data operator refuses a receipt naming another), not the wizard's; ``core.company.fiscal_inn_mismatch``
    and the payments.W003 check say when the two differ."""
    inn = (settings.ABONENT_FISCAL_INN or "").strip()
    email = (settings.ABONENT_FISCAL_EMAIL or "").strip()
    address = (settings.ABONENT_FISCAL_PAYMENT_ADDRESS or "").strip()
    sno = (taxes or tax_settings()).tax_system
    if not re.fullmatch(r"[0-9]{10}|[0-9]{12}", inn):
        raise settings_problem("ABONENT_FISCAL_INN must be the company's INN: 10 or 12 digits")
    if not email or "@" not in email:
        raise settings_problem("ABONENT_FISCAL_EMAIL must be the e-mail printed on receipts")
    if not address:
        raise settings_problem("ABONENT_FISCAL_PAYMENT_ADDRESS must be the site (or office address) of payment")
    if sno not in SNO_VALUES:
        raise settings_problem(f"ABONENT_FISCAL_SNO must be one of {', '.join(SNO_VALUES)}")
    return {"email": email, "sno": sno, "inn": inn, "payment_address": address}


def client_of(payment) -> dict:
    """Where the buyer gets the electronic receipt: the subscriber's e-mail, else phone (primary first), else
    what the channel told us (a gateway's payer e-mail), else the company's own e-mail (ATOL needs one)."""
    subscriber = payment.subscriber
    if subscriber is not None:
        contacts = list(subscriber.contacts.order_by("-is_primary", "id").values_list("kind", "value"))
        for wanted in ("email", "phone"):
            for kind, value in contacts:
                if kind == wanted and value:
                    return {wanted: value}
    details = payment.details or {}
    for wanted in ("email", "phone"):
        value = str(details.get(wanted) or "").strip()
        if value:
            return {wanted: value[:64]}
    return {"email": (settings.ABONENT_FISCAL_EMAIL or "").strip()}


def item_name(payment) -> str:
    name = (settings.ABONENT_FISCAL_ITEM_NAME or "").strip() or "Аванс за услуги связи"
    account = payment.subscriber.account_number if payment.subscriber_id else payment.account_ref
    if account:
        name = f"{name} л/с {account}"
    return name[:ITEM_NAME_MAX]


def build_document(payment, *, amount: Decimal, vat: str) -> dict:
    """The ``receipt`` block of an ATOL v5 ``sell``/``sell_refund`` request for ``amount`` of ``payment``."""
    amount = quantize(amount)
    tax = vat_sum(amount, vat)
    vat_block = {"type": vat} if tax is None else {"type": vat, "sum": tax}
    paid_by = PAYMENT_TYPE_CASH if payment.method == "cash" else PAYMENT_TYPE_ELECTRONIC
    return {
        "client": client_of(payment),
        "company": company_block(),
        "items": [
            {
                "name": item_name(payment),
                "price": amount,
                "quantity": Decimal("1.000"),
                "sum": amount,
                "measure": MEASURE_PIECE,
                "payment_method": PAYMENT_METHOD_ADVANCE,
                "payment_object": PAYMENT_OBJECT_PAYMENT,
                "vat": vat_block,
            }
        ],
        "payments": [{"type": paid_by, "sum": amount}],
        "vats": [vat_block],
        "total": amount,
    }


def to_json(document: dict) -> str:
    """JSON text with ``Decimal`` written as numbers, digit for digit (never through float). Each Decimal is
    first written as a string between a marker made for this call, which no value can contain by chance."""
    marker = f"@{secrets.token_hex(8)}@"

    def mark(value):
        if isinstance(value, Decimal):
            return f"{marker}{value:f}{marker}"
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(document, ensure_ascii=False, default=mark)
    return re.sub(rf'"{marker}(-?[0-9]+(?:\.[0-9]+)?){marker}"', r"\1", text)


def from_json(text: str | bytes) -> dict:
    """Parse a provider's answer with numbers as ``Decimal``. The non-JSON literals ``NaN``, ``Infinity`` and
    ``-Infinity`` (which Python's json accepts and PostgreSQL's jsonb refuses) are read as absent (None): one odd
    field must neither wedge a receipt nor end in a 500, and a field we rely on then reads as missing."""
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)


def _no_constant(_literal: str) -> None:
    return None


def qr_text(receipt) -> str:
    """The FNS QR text: t=YYYYMMDDTHHMM&s=total&fn=&i=FD&fp=FPD&n=1 (income) or 2 (return of income)."""
    moment = timezone.localtime(receipt.receipt_datetime)
    total = receipt.fiscal_total if receipt.fiscal_total is not None else receipt.amount
    kind = 1 if receipt.operation == "sell" else 2
    return (
        f"t={moment:%Y%m%dT%H%M}&s={total:.2f}&fn={receipt.fn_number}"
        f"&i={receipt.fiscal_document_number}&fp={receipt.fiscal_document_attribute}&n={kind}"
    )


def check_url(receipt) -> str:
    template = (settings.ABONENT_FISCAL_CHECK_URL or "").strip()
    if not template:
        return ""
    try:
        return template.format(
            inn=quote(settings.ABONENT_FISCAL_INN or ""),
            rn=quote(receipt.ecr_registration_number),
            fn=quote(receipt.fn_number),
            fd=receipt.fiscal_document_number,
            fp=receipt.fiscal_document_attribute,
            qr=quote(qr_text(receipt)),
        )
    except (KeyError, IndexError, ValueError):
        return ""
