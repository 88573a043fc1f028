"""Whose payment is a statement line: the account number in the purpose text, else a contract number in it,
else the payer's INN. Each rule either finds no one (the next rule is tried), exactly one subscriber, or
several (the line is ambiguous and goes to suspense with them as candidates)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings

from abonent.subscribers.models import Contract, Subscriber
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

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


def account_numbers_in(text: str) -> list[str]:
    """Account numbers written in ``text`` as whole numbers (not part of a longer run of digits) whose check
    digit is right: a phone number, an INN or a date does not pass for one."""
    length = settings.ABONENT_ACCOUNT_NUMBER_LENGTH
    found = re.findall(rf"(?<![0-9])([0-9]{{{length}}})(?![0-9])", text or "")
    return list(dict.fromkeys(n for n in found if luhn_check_digit(n[:-1]) == int(n[-1])))


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


def match_line(purpose: str, payer_inn: str) -> Match:
    numbers = account_numbers_in(purpose)
    if numbers:
        found = _decide(
            MatchRule.ACCOUNT_NUMBER,
            list(Subscriber.objects.filter(account_number__in=numbers).values_list("pk", flat=True)),
        )
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
    return Match()
