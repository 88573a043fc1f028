"""A Russian company's requisites (реквизиты) and their check digits: ИНН, КПП, ОГРН/ОГРНИП, БИК and accounts;
and the currency code and time zone name an installation is set up with.

Each check raises ``ValidationError`` with a translated message and a code. The check digits are the published
ones: ИНН's weighted sums modulo 11, ОГРН's remainder of the first 12 digits by 11 (ОГРНИП: 14 by 13), and the
Bank of Russia's control key of an account number (weights 7, 1, 3 over three digits of the БИК and the 20 of
the account). A typo in any of them sends an invoice's money nowhere, so the wizard refuses it at the field, not
when the bank returns the payment.
"""

from __future__ import annotations

import re
import zoneinfo

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

INN_WEIGHTS_10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
INN_WEIGHTS_11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
INN_WEIGHTS_12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
ACCOUNT_KEY_WEIGHTS = ((7, 1, 3) * 8)[:23]  # three digits of the BIK, then the 20 of the account
# КПП: four digits (the tax office), two for the reason (digits or capital Latin letters since 2013), three digits.
KPP_PATTERN = re.compile(r"[0-9]{4}[0-9A-Z]{2}[0-9]{3}")


def _has_foreign_digits(value: str) -> bool:
    """Whether ``value`` holds a digit other than 0–9: a full-width "７" or an Arabic-Indic "٧" that ``re``'s ``\\d``
    and ``int()`` read as 7, but a document, a 1C file or a bank does not."""
    return any(ch.isdigit() and not ch.isascii() for ch in value or "")


def is_ascii_digits(value: str, length: int) -> bool:
    """``length`` of the digits 0–9 and nothing else (``str.isdigit`` takes any script's digits)."""
    return re.fullmatch(f"[0-9]{{{length}}}", value or "") is not None


def _refuse_foreign_digits(value: str) -> None:
    if _has_foreign_digits(value):
        raise ValidationError(
            _("Type the digits 0–9 only: this has characters that only look like digits."), "ascii_digits"
        )


def _weighted(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_is_valid(inn: str) -> bool:
    """10 digits (an organisation) or 12 (a person: an individual entrepreneur), with their check digits."""
    if not re.fullmatch(r"[0-9]{10}|[0-9]{12}", inn or ""):
        return False
    if len(inn) == 10:
        return _weighted(inn, INN_WEIGHTS_10) == int(inn[9])
    return _weighted(inn, INN_WEIGHTS_11) == int(inn[10]) and _weighted(inn, INN_WEIGHTS_12) == int(inn[11])


def ogrn_is_valid(ogrn: str) -> bool:
    """ОГРН: 13 digits, the last the remainder of the first 12 by 11 (its last digit); ОГРНИП: 15, by 13."""
    if not re.fullmatch(r"[0-9]{13}|[0-9]{15}", ogrn or ""):
        return False
    body, check = ogrn[:-1], int(ogrn[-1])
    return int(body) % (11 if len(ogrn) == 13 else 13) % 10 == check


def account_key_is_valid(bik: str, account: str, *, correspondent: bool = False) -> bool:
    """The account's control key against the bank's БИК: the 23 digits "three of the БИК + the account", weighted
    7, 1, 3 …, sum to a multiple of 10. A settlement account takes the БИК's last three digits; a correspondent
    account (and a settlement account at a Bank of Russia office, БИК ending 000–002) takes "0" and its 5th–6th."""
    if not (re.fullmatch(r"[0-9]{9}", bik or "") and re.fullmatch(r"[0-9]{20}", account or "")):
        return False
    prefix = "0" + bik[4:6] if correspondent or bik[6:] in ("000", "001", "002") else bik[6:]
    return sum(int(d) * w for d, w in zip(prefix + account, ACCOUNT_KEY_WEIGHTS, strict=True)) % 10 == 0


# --- Django validators: one per field, each with its own message --------------------------------------------


def validate_inn(value: str) -> None:
    _refuse_foreign_digits(value)
    if not re.fullmatch(r"[0-9]{10}|[0-9]{12}", value or ""):
        raise ValidationError(
            _("An INN is 10 digits (an organisation) or 12 (an individual entrepreneur)."), "inn_length"
        )
    if not inn_is_valid(value):
        raise ValidationError(_("This INN's check digits do not match: check it against the certificate."), "inn_check")


def validate_kpp(value: str) -> None:
    _refuse_foreign_digits(value)
    if not KPP_PATTERN.fullmatch(value or ""):
        raise ValidationError(_("A KPP is 9 characters: 4 digits, 2 digits or capital letters, 3 digits."), "kpp")


def validate_ogrn(value: str) -> None:
    _refuse_foreign_digits(value)
    if not re.fullmatch(r"[0-9]{13}|[0-9]{15}", value or ""):
        raise ValidationError(_("An OGRN is 13 digits (an organisation) or 15 (an OGRNIP)."), "ogrn_length")
    if not ogrn_is_valid(value):
        raise ValidationError(_("This OGRN's check digit does not match: check it against the register."), "ogrn_check")


def validate_bik(value: str) -> None:
    _refuse_foreign_digits(value)
    if not re.fullmatch(r"[0-9]{9}", value or ""):
        raise ValidationError(_("A BIK is 9 digits."), "bik")


def validate_account_digits(value: str) -> None:
    _refuse_foreign_digits(value)
    if not re.fullmatch(r"[0-9]{20}", value or ""):
        raise ValidationError(_("An account number is 20 digits."), "account_length")


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Not a time zone: give its name, such as Europe/Moscow."), "time_zone")


def validate_currency(value: str) -> None:
    if not re.fullmatch(r"[A-Z]{3}", value or ""):
        raise ValidationError(_("A currency is its three-letter code (ISO 4217), such as RUB."), "currency")
