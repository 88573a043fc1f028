"""Pure checks and normalisers for subscriber data: account numbers, phones, INN/KPP, passports, MACs.

Phones are shown with ``abonent.core.phones.format_phone``."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def luhn_check_digit(body: str) -> int:
    """The digit that makes ``body + digit`` pass the Luhn check (ISO/IEC 7812), catching any single typo."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def make_account_number(serial: int, length: int | None = None) -> str:
    length = length or settings.ABONENT_ACCOUNT_NUMBER_LENGTH
    body = str(serial)
    if len(body) != length - 1:
        raise ValueError(f"serial {serial} does not fit {length - 1} digits")
    return body + str(luhn_check_digit(body))


def account_serial_start(length: int | None = None) -> int:
    """The first serial: no leading zero, which payment terminals and spreadsheets like to strip."""
    length = length or settings.ABONENT_ACCOUNT_NUMBER_LENGTH
    return 10 ** (length - 2)


def validate_account_number(value: str) -> str:
    length = settings.ABONENT_ACCOUNT_NUMBER_LENGTH
    value = (value or "").strip()
    if not value.isdigit() or not value.isascii():
        raise ValidationError(_("An account number consists of digits only."), code="account_number_format")
    if len(value) != length:
        raise ValidationError(
            ngettext(
                "An account number has exactly %(length)d digit.",
                "An account number has exactly %(length)d digits.",
                length,
            )
            % {"length": length},
            code="account_number_length",
        )
    if luhn_check_digit(value[:-1]) != int(value[-1]):
        raise ValidationError(
            _("Account number %(number)s has a wrong check digit: check it for a typo.") % {"number": value},
            code="account_number_check_digit",
        )
    return value


LEGACY_ACCOUNT_MAX = 20  # Subscriber.legacy_account


def validate_legacy_account(value: str) -> str:
    """An account number of the billing the ISP migrated from (docs/adr/0019): 1 to 20 ASCII digits, kept exactly
    as given, leading zeros included ("007315" and "7315" are two numbers), so every lookup of it is exact. Only
    the spaces around it are dropped; Arabic-Indic or full-width digits are refused, not converted: the old
    system's receipts and the terminals print ASCII."""
    value = (value or "").strip()
    if not value.isascii() or not value.isdigit():
        raise ValidationError(_("An old account number consists of digits 0-9 only."), code="legacy_account_format")
    if len(value) > LEGACY_ACCOUNT_MAX:
        raise ValidationError(
            ngettext(
                "An old account number has at most %(length)d digit.",
                "An old account number has at most %(length)d digits.",
                LEGACY_ACCOUNT_MAX,
            )
            % {"length": LEGACY_ACCOUNT_MAX},
            code="legacy_account_length",
        )
    return value


def is_account_number_shaped(value: str) -> bool:
    """Whether ``value`` could be one of our numbers (ASCII digits of our length, right check digit): only such an
    old number can ever collide with a number we issue."""
    length = settings.ABONENT_ACCOUNT_NUMBER_LENGTH
    return (
        len(value) == length and value.isascii() and value.isdigit() and luhn_check_digit(value[:-1]) == int(value[-1])
    )


# The shapes nearly every Russian number is written in: ``+7`` or ``8``, then ten digits, with spaces, dashes and
# brackets. For those the number is known without ``phonenumbers.parse`` (the slow part: an import checks 100,000);
# whether it is valid is still ``phonenumbers``' verdict, so both paths accept exactly the same numbers.
_RU_SHAPE_RE = re.compile(r"^(\+7|8)[\d\s\-()]+$")
_PUNCTUATION_RE = re.compile(r"[\s\-()]")


def _fast_ru_number(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    match = _RU_SHAPE_RE.match(text)
    if match is None or (match[1] == "8" and region != "RU"):
        return None
    digits = _PUNCTUATION_RE.sub("", text)[len(match[1]) :]
    # A leading 0 needs phonenumbers' leading-zero handling, and "8 10…" is Russia's international call prefix.
    if len(digits) != 10 or digits[0] in "01":
        return None
    return phonenumbers.PhoneNumber(country_code=7, national_number=int(digits))


def normalize_phone(raw: str, region: str | None = None) -> str:
    """E.164 (``+79161234567``) from what people type: ``8 (916) 123-45-67``, ``+7 916 1234567``, ``9161234567``."""
    text = (raw or "").strip()
    if not text:
        raise ValidationError(_("Enter a phone number."), code="phone_empty")
    region = region or settings.ABONENT_PHONE_REGION
    number = _fast_ru_number(text, region)
    if number is not None:
        if not phonenumbers.is_valid_number(number):
            raise ValidationError(_("“%(value)s” is not a valid phone number.") % {"value": text}, code="phone_invalid")
        return f"+7{number.national_number}"
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            _("“%(value)s” is not a valid phone number.") % {"value": text}, code="phone_invalid"
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(_("“%(value)s” is not a valid phone number.") % {"value": text}, code="phone_invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_MAC_RE = re.compile(r"^[0-9a-f]{12}$")


def normalize_mac(raw: str) -> str:
    """``AA-BB-CC-DD-EE-FF``, ``aabb.ccdd.eeff`` or ``aabbccddeeff`` → ``aa:bb:cc:dd:ee:ff``."""
    hexdigits = re.sub(r"[\s:.\-]", "", (raw or "").lower())
    if not _MAC_RE.match(hexdigits):
        raise ValidationError(_("“%(value)s” is not a MAC address.") % {"value": raw}, code="mac_invalid")
    return ":".join(hexdigits[i : i + 2] for i in range(0, 12, 2))


_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_1 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_2 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _inn_digit(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def validate_inn(value: str) -> str:
    """INN (ИНН): 10 digits for an organisation, 12 for a person or sole trader, with check digits."""
    value = (value or "").strip()
    valid = (
        value.isdigit()
        and value.isascii()
        and (
            (len(value) == 10 and _inn_digit(value, _INN10_WEIGHTS) == int(value[9]))
            or (
                len(value) == 12
                and _inn_digit(value, _INN12_WEIGHTS_1) == int(value[10])
                and _inn_digit(value, _INN12_WEIGHTS_2) == int(value[11])
            )
        )
    )
    if not valid:
        raise ValidationError(
            _("“%(value)s” is not a valid INN: 10 or 12 digits with correct check digits.") % {"value": value},
            code="inn_invalid",
        )
    return value


def validate_kpp(value: str) -> str:
    value = (value or "").strip().upper()
    if not re.fullmatch(r"\d{4}[\dA-Z]{2}\d{3}", value):
        raise ValidationError(_("“%(value)s” is not a valid KPP: 9 characters.") % {"value": value}, code="kpp_invalid")
    return value


def validate_passport(series: str, number: str) -> tuple[str, str]:
    """A Russian internal passport: series of 4 digits, number of 6 (spaces allowed when typed)."""
    series = re.sub(r"\s", "", series or "")
    number = re.sub(r"\s", "", number or "")
    errors = {}
    if not re.fullmatch(r"\d{4}", series):
        errors["passport_series"] = ValidationError(_("A passport series has 4 digits."), code="passport_series")
    if not re.fullmatch(r"\d{6}", number):
        errors["passport_number"] = ValidationError(_("A passport number has 6 digits."), code="passport_number")
    if errors:
        raise ValidationError(errors)
    return series, number
