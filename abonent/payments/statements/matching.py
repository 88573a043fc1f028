"""Whose payment is a statement line: the account number in the purpose text, else a contract number in it,
else the payer's INN, else an old account number standing alone in the purpose, if the payer's name agrees. Each
rule either finds no one (the next rule is tried), exactly one subscriber, or several (the line is ambiguous and
goes to suspense with them as candidates).

The account number is ours (anywhere, our check digit guards it) or the old system's (docs/adr/0019), which has
no check digit and any length, so it is read more warily: after a marker ("л/с 173829", "лицевой счет №0173",
"account 173829") any whole number is one; standing alone, only a whole number of at least
``MIN_UNMARKED_LEGACY`` digits that is not a phone, a date, an amount, a percentage, nor the number after "ИНН",
"счет №", "р/с" and the like. Both are matched exactly: "1738290" is not "173829".

A number standing alone is a weak sign (a postcode "614000", an order "заказ 554433", a receipt number may equal
somebody's old number), and money credited to a stranger is worse than a line in suspense. So it is the last rule,
and it credits only when the payer's name on the line agrees with the subscriber's (the surname, ё and case
aside); otherwise the line goes to suspense with that subscriber shown as the candidate (``unconfirmed``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings

from abonent.subscribers.models import Contract, Subscriber
from abonent.subscribers.search import fold
from abonent.subscribers.validators import luhn_check_digit

from ..models import MatchRule

# Tokens of a purpose text: what is between spaces and the punctuation people put around numbers.
_TOKEN_SPLIT = re.compile(r"[\s,;:()\"'«»\[\]{}]+")
MIN_CONTRACT_TOKEN = 3  # "1" or "12" in "за 1 месяц" must not match contract No. 1
MAX_TOKENS = 200


@dataclass(frozen=True)
class Match:
    """``subscriber`` when exactly one matched; ``candidates`` (ids) when several did; ``rule`` that decided."""

    rule: str = ""
    subscriber: Subscriber | None = None
    candidates: list[int] = field(default_factory=list)
    # One subscriber found by a number standing alone whose name the payer's does not confirm: not credited.
    unconfirmed: bool = False

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


def account_numbers_in(text: str) -> list[str]:
    """Account numbers written in ``text`` as whole numbers (not part of a longer run of digits) whose check
    digit is right: a phone number, an INN or a date does not pass for one."""
    length = settings.ABONENT_ACCOUNT_NUMBER_LENGTH
    found = re.findall(rf"(?<![0-9])([0-9]{{{length}}})(?![0-9])", text or "")
    return list(dict.fromkeys(n for n in found if luhn_check_digit(n[:-1]) == int(n[-1])))


# A whole number: no digit, letter, sign or date/amount separator glued before it, nor a letter, digit or a
# separator followed by more digits after it ("01.02.2026", "650,00", "8-916-…", "+7…", "173829р" are not).
_WHOLE_AFTER = r"(?![0-9a-zа-я%₽]|[.,/\-][0-9])"
_MARKER = (
    r"(?:(?<![0-9a-zа-я])л\s*[/\\.]?\s*сч?\.?"  # л/с, л\с, л.с., лс, л/сч
    r"|(?<![0-9a-zа-я])лиц(?:\.|ев[а-я]*)?\s*сч(?:ет[а-я]*)?\.?"  # лиц. счет, лицевой счет, лицевому счету
    r"|(?<![0-9a-zа-я])(?:account|acc)(?:\s*(?:no|number))?\.?)"  # account, acc. no
)
_MARKED_RE = re.compile("(" + _MARKER + r")\s*(?:№|#|n|no\.?|номер)?\s*[:\-]?\s*([0-9]{1,20})" + _WHOLE_AFTER)
# "Л.С." is also a payer's initials ("Смирнова Л.С. 1500", the sum after the name): that spelling is a marker only
# after "по" ("оплата по л.с. 1500"); otherwise the number after it is read as one standing alone.
_INITIALS = re.compile(r"л\.\s?с\.")
_PO_BEFORE = re.compile(r"(?<![0-9a-zа-я])по\s+\Z")
_UNMARKED_RE = re.compile(r"(?<![0-9a-zа-я+.,/\-])([0-9]{1,20})" + _WHOLE_AFTER)
# What a bare number after these words is: a tax id, a bank account, an invoice or document number, a phone.
_NOT_AN_ACCOUNT_BEFORE = re.compile(
    r"(?<![0-9a-zа-я])(?:инн|кпп|бик|огрн|р/с|к/с|р\.с\.|к\.с\.|сч\.?|сч[её]т[а-я]*|invoice|inv\.?|тел\.?|телефон[а-я]*|"
    r"договор[а-я]*|дог\.?|сумм[а-я]*|№|#|n)\s*[:№#]?\s*$"
)
_PHONE_RE = re.compile(r"(?:\+7|(?<![0-9])8)[\s\-(]*[0-9]{3}[\s\-)]*[0-9]{3}[\s\-]*[0-9]{2}[\s\-]*[0-9]{2}(?![0-9])")
_AMOUNT_AFTER = re.compile(r"\s*(?:руб|р\.|р\b|rub|коп)")
MIN_UNMARKED_LEGACY = 5  # shorter runs are years, months, houses, flats and sums far too often


def legacy_numbers_in(text: str) -> tuple[list[str], list[str]]:
    """Candidates for an old account number in a purpose text: (after a marker, standing alone), each a whole
    number exactly as written (leading zeros kept), in order, without repeats (see the module docstring)."""
    folded = fold(text or "")[:2000]
    marked = []
    for m in _MARKED_RE.finditer(folded):
        if _INITIALS.fullmatch(m[1]) and not _PO_BEFORE.search(folded, 0, m.start()):
            continue
        if not _AMOUNT_AFTER.match(folded, m.end()):  # "л/с 1500 руб.": a sum, the account left out
            marked.append(m[2])
    plain = _PHONE_RE.sub(" ", folded)
    unmarked = []
    for m in _UNMARKED_RE.finditer(plain):
        number = m[1]
        if len(number) < MIN_UNMARKED_LEGACY or number in marked:
            continue
        if _NOT_AN_ACCOUNT_BEFORE.search(plain[max(0, m.start() - 30) : m.start()]):
            continue
        if _AMOUNT_AFTER.match(plain, m.end()):
            continue
        unmarked.append(number)
    return list(dict.fromkeys(marked)), list(dict.fromkeys(unmarked))


def _tokens(text: str) -> list[str]:
    tokens = []
    for token in _TOKEN_SPLIT.split(text or ""):
        token = token.strip(".").lstrip("№N#")
        if len(token) >= MIN_CONTRACT_TOKEN:
            tokens.append(token)
    return list(dict.fromkeys(tokens))[:MAX_TOKENS]


def _decide(rule: str, subscriber_ids: list[int]) -> Match | None:
    ids = sorted(set(subscriber_ids))
    if not ids:
        return None
    if len(ids) == 1:
        return Match(rule=rule, subscriber=Subscriber.objects.get(pk=ids[0]), candidates=ids)
    return Match(rule=rule, candidates=ids)


def _legacy_holders(numbers: list[str]) -> list[int]:
    if not numbers:
        return []
    return list(Subscriber.objects.filter(legacy_account__in=numbers).values_list("pk", flat=True))


_WORD = re.compile(r"[a-zа-я]+")
# Legal forms and the like, which say nothing about whose organisation it is.
_NOT_A_NAME = frozenset(
    "ооо оао зао пао ао нко ип чоп тсж жск снт гбу мбу муп гуп фгуп ано фонд общество ограниченной "
    "ответственностью акционерное публичное индивидуальный предприниматель".split()
)


def _name_words(text: str) -> set[str]:
    return set(_WORD.findall(fold(text or "")))


def payer_is(subscriber: Subscriber, payer: str) -> bool:
    """Whether the payer's name on a statement line (``Плательщик1``/``Плательщик``: "Семёнов Пётр Иванович",
    "ИНН 590… СЕМЕНОВ П.И.", "ООО «Ромашка»") is the subscriber's: a person's surname (each part of a double one),
    an organisation's name words (its legal form aside), all among the payer's words, ё and case aside."""
    payer_words = _name_words(payer)
    if not payer_words:
        return False
    if subscriber.is_organization:
        name = subscriber.organization_name or subscriber.display_name
        wanted = _name_words(name) - _NOT_A_NAME
    else:
        wanted = _name_words(subscriber.last_name or subscriber.display_name.split(" ")[0])
    return bool(wanted) and wanted <= payer_words


def match_line(purpose: str, payer_inn: str, payer: str = "") -> Match:
    """The subscriber a statement line pays: ``purpose`` is its ``НазначениеПлатежа``, ``payer_inn`` and ``payer``
    the payer's INN and name (the last rule checks the name)."""
    numbers = account_numbers_in(purpose)
    ours = list(Subscriber.objects.filter(account_number__in=numbers).values_list("pk", flat=True)) if numbers else []
    marked, unmarked = legacy_numbers_in(purpose)
    # Ours and an old number after a marker are equally sure: naming two different accounts is ambiguous.
    found = _decide(MatchRule.ACCOUNT_NUMBER if ours else MatchRule.LEGACY_ACCOUNT, ours + _legacy_holders(marked))
    if found:
        return found
    tokens = _tokens(purpose)
    if tokens:
        found = _decide(
            MatchRule.CONTRACT,
            list(Contract.objects.filter(number__in=tokens).values_list("subscriber_id", flat=True)),
        )
        if found:
            return found
    if payer_inn and payer_inn.isdigit() and len(payer_inn) in (10, 12):
        found = _decide(MatchRule.INN, list(Subscriber.objects.filter(inn=payer_inn).values_list("pk", flat=True)))
        if found:
            return found
    # A number the payer marked as the account and nobody has (a typo, one not migrated) is not second-guessed by
    # another number of the text (a postcode, an order number).
    found = None if marked else _decide(MatchRule.LEGACY_ACCOUNT, _legacy_holders(unmarked))
    if found and found.subscriber is not None and not payer_is(found.subscriber, payer):
        return Match(rule=MatchRule.LEGACY_ACCOUNT, candidates=found.candidates, unconfirmed=True)
    return found or Match()
