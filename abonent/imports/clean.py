"""Cleaning the old system's values: pure functions from text to our values, raising ``RowProblem`` with a stable
code. Dates in the Russian forms (05.11.2026, 5.11.26, «5 ноября 2026 г.», ISO), amounts with a decimal comma and
spaces («1 234,56»), phones to E.164, speeds («100 Мбит/с», «100M», kbit/s), full names split in three."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from abonent.subscribers.validators import normalize_mac, normalize_phone

# What a money column holds: 12 digits before the point (MoneyField: 14 digits, 2 places).
MONEY_LIMIT = Decimal("999999999999.99")
MONTHS = {
    "январ": 1,
    "феврал": 2,
    "март": 3,
    "апрел": 4,
    "ма": 5,
    "июн": 6,
    "июл": 7,
    "август": 8,
    "сентябр": 9,
    "октябр": 10,
    "ноябр": 11,
    "декабр": 12,
}
_NUMERIC_DATE_RE = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{2}|\d{4})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")
_ISO_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_WORD_DATE_RE = re.compile(r"^(\d{1,2})\s+([а-яё]+)\s+(\d{4})(?:\s*(?:г|года)\.?)?$")
_AMOUNT_RE = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
_SPEED_RE = re.compile(r"^(\d+(?:[.,]\d+)?)\s*([кkмmгg]?)", re.IGNORECASE)
# UTF-8 text that was once read as windows-1251 or latin-1 and saved again («РРІР°РЅРѕРІ», «Ð˜Ð²Ð°Ð½»), or
# characters the old system could not store (U+FFFD).
_MOJIBAKE_RE = re.compile(r"\ufffd|[ÐÑ][\u0080-\u00bf\u2018-\u203a]|(?:[РС][\u0400-\u040f\u0450-\u045f°±²³µ¶·»]){2}")


class RowProblem(Exception):
    """A value that cannot be imported: ``code`` is stable (documented in docs/imports.md)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def looks_garbled(text: str) -> bool:
    return _MOJIBAKE_RE.search(text) is not None


def check_encoding(value: str) -> None:
    if _MOJIBAKE_RE.search(value):
        raise RowProblem(
            "encoding_broken", _("The text is garbled (a broken encoding): “%(value)s”.") % {"value": value[:60]}
        )


def parse_date(value: str) -> dt.date | None:
    """``None`` for an empty value; the day-first Russian forms, ISO, and the date written in words."""
    text = value.strip().lower()
    if not text:
        return None
    try:
        if m := _ISO_DATE_RE.match(text):
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        if m := _NUMERIC_DATE_RE.match(text):
            year = int(m[3])
            if len(m[3]) == 2:
                year += 2000 if year <= (dt.date.today().year % 100) + 1 else 1900
            return dt.date(year, int(m[2]), int(m[1]))
        if m := _WORD_DATE_RE.match(text):
            month = next((n for stem, n in MONTHS.items() if m[2].startswith(stem)), None)
            if month is not None:
                return dt.date(int(m[3]), month, int(m[1]))
    except ValueError:
        pass
    raise RowProblem("date_invalid", _("“%(value)s” is not a date.") % {"value": value})


def parse_amount(value: str, *, empty: Decimal | None = Decimal("0.00")) -> Decimal | None:
    """Kopecks from «1 234,56», «-650», «1234.5», «650 руб.»; a text amount is a problem, and so is one a money
    column cannot hold or one with fractions of a kopeck (the old system's rounding is not guessed)."""
    text = value.strip().replace("\u00a0", "").replace(" ", "").replace("\u2212", "-")
    text = re.sub(r"(?:руб\.?|р\.?|₽|rub)$", "", text, flags=re.IGNORECASE)
    if not text:
        return empty
    if "," in text and "." in text:
        text = text.replace(",", "") if text.rfind(".") > text.rfind(",") else text.replace(".", "").replace(",", ".")
    else:
        text = text.replace(",", ".")
    if not _AMOUNT_RE.match(text):
        raise RowProblem("amount_invalid", _("“%(value)s” is not an amount.") % {"value": value})
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise RowProblem("amount_invalid", _("“%(value)s” is not an amount.") % {"value": value}) from None
    if amount != amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP):
        raise RowProblem(
            "amount_fraction", _("“%(value)s” has fractions of a kopeck: round it in the file.") % {"value": value}
        )
    if abs(amount) > MONEY_LIMIT:
        raise RowProblem("amount_out_of_range", _("“%(value)s” is more than an account holds.") % {"value": value})
    return amount.quantize(Decimal("0.01"))


def parse_phones(value: str) -> tuple[list[str], list[str]]:
    """``(E.164 phones, the parts that are not phones)`` from a cell that may hold several (``,`` or ``;``)."""
    good, bad = [], []
    for part in re.split(r"[;,/]", value):
        part = part.strip()
        if not part:
            continue
        try:
            good.append(normalize_phone(part))
        except ValidationError:
            bad.append(part)
    return good, bad


def parse_mac(value: str) -> str:
    if not value.strip():
        return ""
    try:
        return normalize_mac(value)
    except ValidationError:
        raise RowProblem("mac_invalid", _("“%(value)s” is not a MAC address.") % {"value": value}) from None


def parse_speed_kbps(value: str) -> int:
    """kbit/s from «100 Мбит/с», «100M», «512k», «1G», or a bare number (kbit/s; up to 10 000 read as Mbit/s is not
    guessed)."""
    text = value.strip()
    if not text:
        return 0
    m = _SPEED_RE.match(text)
    if not m:
        raise RowProblem("speed_invalid", _("“%(value)s” is not a speed.") % {"value": value})
    number = Decimal(m[1].replace(",", "."))
    unit = m[2].lower()
    factor = {"": 1, "к": 1, "k": 1, "м": 1000, "m": 1000, "г": 1_000_000, "g": 1_000_000}[unit]
    return int(number * factor)


def split_full_name(value: str) -> tuple[str, str, str]:
    """«Иванов Иван Иванович» → (last, first, patronymic); a patronymic of two words («Оглы») stays whole."""
    parts = value.split()
    if len(parts) < 2:
        raise RowProblem("name_incomplete", _("“%(value)s” is not a last and first name.") % {"value": value})
    return parts[0], parts[1], " ".join(parts[2:])


def split_passport(value: str) -> tuple[str, str]:
    """«28 04 123456», «2804 123456», «2804123456» → ("2804", "123456")."""
    digits = re.sub(r"\D", "", value)
    if len(digits) != 10:
        raise RowProblem("passport_invalid", _("“%(value)s” is not a passport series and number.") % {"value": value})
    return digits[:4], digits[4:]


def split_address(value: str) -> dict[str, str]:
    """A one-line address «г. Тверь, ул. Ленина, д. 5, корп. 2, кв. 12» → city, street, house, building, apartment.
    The parts are told by their markers; without them: city, street, house, apartment in that order."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    found = {"city": "", "street": "", "house": "", "building": "", "apartment": ""}
    rest = []
    for part in parts:
        low = part.lower()
        if m := re.match(r"^(?:г\.?|город)\s*(.+)$", low) and re.match(r"^(?:г\.?|город)\s*(.+)$", part):
            found["city"] = m[1].strip()
        elif m := re.match(r"^(?:д\.?|дом)\s*(.+)$", part, re.IGNORECASE):
            found["house"] = m[1].strip()
        elif m := re.match(r"^(?:корп\.?|корпус|стр\.?|строение)\s*(.+)$", part, re.IGNORECASE):
            found["building"] = m[1].strip()
        elif m := re.match(r"^(?:кв\.?|квартира|оф\.?|офис)\s*(.+)$", part, re.IGNORECASE):
            found["apartment"] = m[1].strip()
        elif re.match(r"^\d{6}$", part):
            continue  # a postal code
        else:
            rest.append(part)
    for name in ("city", "street", "house", "apartment"):
        if not found[name] and rest:
            found[name] = rest.pop(0)
    if rest:
        found["street"] = ", ".join([found["street"], *rest]) if found["street"] else ", ".join(rest)
    return found


VENDORS = ("ZTE", "Huawei", "TP-Link", "Eltex", "MikroTik", "Keenetic", "D-Link", "BDCOM", "Cisco", "Ubiquiti")


def equipment_of(model: str) -> tuple[str, str, str]:
    """(kind, vendor, model) from the old system's one text, e.g. «GPON-ONT ZTE» → ("ont", "ZTE", "GPON-ONT ZTE")."""
    low = model.lower()
    vendor = next((v for v in VENDORS if v.lower() in low), model.split()[0] if model.split() else "")
    if "ont" in low or "onu" in low or "pon" in low:
        kind = "ont"
    elif "router" in low or "роутер" in low or "маршрутизатор" in low:
        kind = "router"
    elif "stb" in low or "приставк" in low:
        kind = "stb"
    elif "modem" in low or "модем" in low or "cpe" in low:
        kind = "cpe"
    else:
        kind = "other"
    return kind, vendor[:100], model[:100]
