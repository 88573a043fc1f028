"""How subscriber search text is built and how a typed query is turned into search terms.

Both sides go through ``fold``: lower case, ``ё`` → ``е``, so "Семёнов" is found by "семенов" and the
column can be matched with a plain case-sensitive ``LIKE`` on SQLite and PostgreSQL alike (SQLite's
``LIKE`` folds only ASCII). Phones are stored as digits (``79161234567``), MACs as bare hex.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

MIN_TERM_LENGTH = 3
_PHONE_QUERY_RE = re.compile(r"^\+?[\d\s()\-.]{5,}$")
_MAC_QUERY_RE = re.compile(r"^(?:[0-9A-Fa-f]{2}[:\-.]?){2,5}[0-9A-Fa-f]{2}$|^(?:[0-9A-Fa-f]{4}\.){1,2}[0-9A-Fa-f]{4}$")


def fold(text: str) -> str:
    return (text or "").lower().replace("ё", "е")


def phone_digits(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    # A Russian trunk prefix typed by habit: 8 916 … is +7 916 ….
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    return digits


def build_search_text(
    *,
    account_number: str,
    display_name: str,
    legacy_account: str | None = None,
    inn: str = "",
    contract_numbers: Iterable[str] = (),
    phones: Iterable[str] = (),
    emails: Iterable[str] = (),
    addresses: Iterable[str] = (),
    macs: Iterable[str] = (),
    serials: Iterable[str] = (),
) -> str:
    # The old account number right after ours, where ``with_legacy_account`` finds and swaps it, so a
    # bulk import need not rebuild every subscriber's text from its contacts and addresses.
    parts = [account_number, legacy_account or "", display_name, inn]
    parts += list(contract_numbers)
    parts += [phone_digits(p) for p in phones]
    parts += list(emails)
    parts += list(addresses)
    parts += [m.replace(":", "") for m in macs]
    parts += list(serials)
    return fold(" | ".join(p for p in parts if p))


def with_legacy_account(text: str, account_number: str, old: str | None, new: str | None) -> str | None:
    """``text`` (built by ``build_search_text`` with ``old`` as the old account number) with ``new`` instead; None
    when the text does not start as that function writes it (a row seeded or edited otherwise): rebuild it then."""
    head = f"{account_number} | {old}" if old else account_number
    if text != head and not text.startswith(head + " | "):
        return None
    return (f"{account_number} | {new}" if new else account_number) + text[len(head) :]


# Words operators type out of habit that carry no information in an address ("ул. Ленина, д. 5, кв. 12").
FILLER_WORDS = {
    "г",
    "г.",
    "ул",
    "ул.",
    "улица",
    "д",
    "д.",
    "дом",
    "кв",
    "кв.",
    "квартира",
    "корп",
    "корп.",
    "к",
    "стр",
    "стр.",
    "пр-т",
    "пр",
    "пр.",
    "проспект",
    "пер",
    "пер.",
    "переулок",
}


_FILLER_PREFIX_RE = re.compile(r"^(?:г|ул|д|кв|корп|стр|пр-т|пер)\.(?=\S)")


def address_search_text(*, city: str, street: str, house: str, building: str = "", apartment: str = "") -> str:
    """Language-neutral address words for the search column (the displayed form is translated)."""
    house_part = f"{house}/{building}" if building else house
    return ", ".join(p for p in (city, street, house_part, apartment) if p)


# In the search text a house, building or apartment number follows a space or "/" and is followed by a
# space, ",", "/", "|" or the end: "тверь, ул. ленина, 5/2, 12 | …". Phones, account numbers and serials
# are long runs of digits, so a short number matched this way is an address number, never "a 7 somewhere".
_WORD_CHARS = "0-9a-zа-я"


def number_word_pattern(number: str) -> str:
    """How a short number ("7", "12", "5а") must occur inside the text, as a regular expression that reads the
    same to PostgreSQL and to SQLite; at the very end of the text it is ``number_word_endings``. The trigram
    index takes "a word that is 12" from this form and from the endings, so a street and a house number meet
    in the index rather than in thousands of rows fetched to be checked. (One expression ending in
    ``([ ,/|]|$)`` said the same, but pg_trgm extracts no trigram from it: at 1,000,000 subscribers
    "Строителей 79" rechecked 25,000 rows, 196 ms, against 93 ms this way.)"""
    return f"[ /]{re.escape(number)}[ ,/|]"


def number_word_endings(number: str) -> tuple[str, str]:
    return (f" {number}", f"/{number}")


def word_start_pattern(term: str) -> str:
    """How a short word of letters must occur: as the start of a word ("и" in "Иванов И" is an initial)."""
    return f"(^|[^{_WORD_CHARS}]){re.escape(term)}"


def initials_pattern(letters: list[str]) -> str:
    """Initials in order ("и", "п" of "И.П."): a word starting with each letter, one word after the other, so that
    "иван петрович" and "и.п." both match."""
    between = f"[{_WORD_CHARS}]*[^{_WORD_CHARS}]+"
    return f"(^|[^{_WORD_CHARS}])" + between.join(re.escape(letter) for letter in letters)


def flat_pattern(house: str, building: str, apartment: str) -> str:
    """A flat as the address part of the search text holds it ("тверь, ул. ленина, 5/2, 12"): the house (with
    the building given, or any), then the apartment, which ends the address. House 12 flat 5 does not match
    "5-12"."""
    building_part = f"/{re.escape(building)}" if building else "(/[^ ,|]+)?"
    return f", {re.escape(house)}{building_part}, {re.escape(apartment)}( \\||$)"


def name_key(display_name: str) -> str:
    """The name as search ranks it: folded like the search text ("Семёнов Пётр" → "семенов петр")."""
    return fold(display_name)[:255]


def name_pattern(words: list[str], initials: list[str]) -> str:
    """A regular expression on ``display_name`` (not folded) for "starts with these folded name words, then
    these initials". Each letter is a class of exactly the characters that fold to it, so a name it matches
    always has a ``name_key`` starting with the same words (the index range of the first search step)."""

    def letter(char: str) -> str:
        same = {char}
        upper = char.upper()
        if len(upper) == 1 and upper.lower() == char:
            same.add(upper)
        if char == "е":
            same |= {"ё", "Ё"}
        return f"[{''.join(sorted(same))}]" if len(same) > 1 else re.escape(char)

    pattern = "^" + " ".join("".join(letter(c) for c in word) for word in words)
    for index, initial in enumerate(initials):
        pattern += ("" if index == 0 else "[^ ]*") + " " + letter(initial)
    return pattern


@dataclass(frozen=True)
class Term:
    """One condition on a subscriber's search text: ``value`` occurs in it, or, when ``regex`` is set, the
    regular expression matches it or the text ends with one of ``endings`` (``value`` is then what the operator
    typed, folded)."""

    value: str
    regex: str | None = None
    endings: tuple[str, ...] = ()

    @property
    def indexed(self) -> bool:
        """A plain substring of three characters or more: the trigram index finds it on its own."""
        return self.regex is None

    def matches(self, text: str) -> bool:
        """The rule the database applies (``selectors``), in Python."""
        if self.regex is None:
            return self.value in text
        return re.search(self.regex, text) is not None or text.endswith(self.endings)


def number_term(number: str) -> Term:
    """A number typed on its own: under three characters (or with a building, "5/2") a whole word of an address,
    a house or a flat; longer, digits anywhere (a phone's last digits, flat 123)."""
    if len(number) >= MIN_TERM_LENGTH and "/" not in number:
        return Term(number)
    return Term(number, number_word_pattern(number), number_word_endings(number))


@dataclass(frozen=True)
class NamePrefix:
    """What a name match starts with: ``key_prefix`` bounds the range of ``name_key`` to read, ``pattern`` is
    the exact rule on ``display_name``, ``implied`` the terms every name match meets by itself."""

    key_prefix: str
    pattern: str
    implied: frozenset[str]

    @property
    def key_range(self) -> tuple[str, str]:
        """``[low, high)`` of ``name_key``: every string starting with ``key_prefix`` and nothing else (binary
        order, which PostgreSQL's ``COLLATE "C"`` and SQLite's default share)."""
        prefix = self.key_prefix
        return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True)
class ParsedQuery:
    terms: list[Term] = field(default_factory=list)
    name: NamePrefix | None = None


_NUMBER_RE = re.compile(r"^\d+[a-zа-я]?(?:/\d+[a-zа-я]?)?$")  # a house ("5", "5а", "5/2") or a flat ("12")
_FLAT_RE = re.compile(r"^(?:д\.?)?(\d+[a-zа-я]?)(?:/(\d+[a-zа-я]?))?-(\d+[a-zа-я]?)$")  # "5-12", "5/2-12"
_MARKED_NUMBER_RE = re.compile(r"^(д|дом|кв|квартира|к|корп|корпус|стр|строение)\.?(\d+[a-zа-я]?(?:/\d+[a-zа-я]?)?)$")
_NUMBER_MARKERS = {
    "д": "house",
    "дом": "house",
    "кв": "apartment",
    "квартира": "apartment",
    "к": "building",
    "корп": "building",
    "корпус": "building",
    "стр": "building",
    "строение": "building",
}
_INITIALS_RE = re.compile(r"^([a-zа-я])\.(?:([a-zа-я])\.?)?$")  # "и.", "и.п.", "и.п"
_NAME_WORD_RE = re.compile(r"^[a-zа-я]+(?:-[a-zа-я]+)*$")
_CAPS_INITIALS_RE = re.compile(r"^[А-ЯЁ]{2,3}$")  # "ИП" after "Иванов"
_SHORT_HOUSE_DIGITS = 4  # an unmarked pair of numbers is a house and a flat when both are this short
MAX_NAME_PARTS = 3  # surname, given name, patronymic


@dataclass
class _Token:
    kind: str  # "word", "initials", "number", "flat"
    value: str = ""
    letters: tuple[str, ...] = ()
    role: str | None = None  # of a number: "house", "building", "apartment", or None when not said
    flat: tuple[str, str, str] = ("", "", "")  # house, building, apartment


def _tokens(words: list[str]) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(words):
        typed = words[index]
        folded = fold(typed)
        index += 1
        after_name = bool(tokens) and tokens[-1].kind in ("word", "initials")
        if m := _FLAT_RE.match(folded):
            tokens.append(_Token("flat", folded, flat=(m[1], m[2] or "", m[3])))
        elif m := _MARKED_NUMBER_RE.match(folded):
            tokens.append(_Token("number", m[2], role=_NUMBER_MARKERS[m[1]]))
        elif folded.rstrip(".") in _NUMBER_MARKERS and index < len(words) and _NUMBER_RE.match(fold(words[index])):
            tokens.append(_Token("number", fold(words[index]), role=_NUMBER_MARKERS[folded.rstrip(".")]))
            index += 1
        elif _NUMBER_RE.match(folded):
            tokens.append(_Token("number", folded))
        elif (m := _INITIALS_RE.match(folded)) or (len(folded) == 1 and folded.isalpha()):
            letters = tuple(c for c in (m.groups() if m else (folded,)) if c)
            if after_name:
                tokens.append(_Token("initials", folded, letters=letters))
            elif folded not in FILLER_WORDS:
                tokens.append(_Token("word", folded))
        elif after_name and tokens[-1].kind == "word" and _CAPS_INITIALS_RE.match(typed) and not words[0].isupper():
            tokens.append(_Token("initials", folded, letters=tuple(folded)))
        elif folded not in FILLER_WORDS:
            folded = _FILLER_PREFIX_RE.sub("", folded)
            if folded:
                tokens.append(_Token("word", folded))
    # Initials typed apart ("И. П.") are one run of initials.
    merged: list[_Token] = []
    for token in tokens:
        if token.kind == "initials" and merged and merged[-1].kind == "initials":
            last = merged[-1]
            merged[-1] = _Token("initials", f"{last.value} {token.value}", letters=last.letters + token.letters)
        else:
            merged.append(token)
    return merged


def _number_terms(tokens: list[_Token]) -> list[Term]:
    """Address numbers: a house followed by a flat ("5 12", "д5 кв12", "5/2-12", "5 к2 12") is one flat; a number
    alone matches as a whole number anywhere in an address (a house or a flat), a long one as digits anywhere."""
    terms: list[Term] = []
    house, building = "", ""

    def flush() -> None:
        nonlocal house, building
        if house:
            terms.append(number_term(f"{house}/{building}" if building else house))
        house, building = "", ""

    def flat(house_value: str, building_value: str, apartment: str) -> None:
        house_value, _, in_house = house_value.partition("/")
        building_value = building_value or in_house
        shown = f"{house_value}/{building_value}-{apartment}" if building_value else f"{house_value}-{apartment}"
        terms.append(Term(shown, flat_pattern(house_value, building_value, apartment)))

    for token in tokens:
        if token.kind == "flat":
            flush()
            flat(*token.flat)
        elif token.kind != "number":
            flush()
        else:
            short = len(re.sub(r"\D", "", token.value)) <= _SHORT_HOUSE_DIGITS
            if house and token.role == "building":
                building = token.value
            elif house and (token.role == "apartment" or (token.role is None and short)):
                flat(house, building, token.value)
                house, building = "", ""
            elif token.role in ("house", None) and short:
                flush()
                house = token.value
            else:
                flush()
                terms.append(number_term(token.value))
    flush()
    return terms


def _name_prefix(tokens: list[_Token]) -> NamePrefix | None:
    """The leading name words and initials ("Иванов Иван П."), at most surname, given name and patronymic."""
    words: list[str] = []
    initials: list[str] = []
    implied: list[str] = []
    for token in tokens:
        if token.kind == "word" and not initials and _NAME_WORD_RE.match(token.value):
            words.append(token.value)
        elif token.kind == "initials" and words:
            initials.extend(token.letters)
        else:
            break
        implied.append(token.value)
        if len(words) + len(initials) >= MAX_NAME_PARTS:
            break
    initials = initials[: max(0, MAX_NAME_PARTS - len(words))]
    key_prefix = " ".join(words) + (" " + initials[0] if initials else "")
    if not words or len(key_prefix) < MIN_TERM_LENGTH:
        return None
    return NamePrefix(key_prefix=key_prefix, pattern=name_pattern(words, initials), implied=frozenset(implied))


def parse_query(query: str) -> ParsedQuery:
    """What a typed query asks for: terms that must all occur in a subscriber's search text (none when the
    query is too short), and the name words it starts with, which rank first.

    A query that looks like one phone number (``+7 (916) 123-45-67``) is one term of digits; a MAC in any
    notation is one term of hex. Otherwise each word is a term: words under 3 characters only narrow what the
    longer words find (a trigram index cannot use them alone), and match as words (a number as a whole one,
    letters as a word's start) rather than anywhere in the text. Initials ("И.П.", "И. П.", "ИП" after a
    surname) match words starting with those letters in order; a house and a flat ("5-12", "5/2-12",
    "д5 кв12", "5 12") match that flat only.
    """
    query = (query or "").strip()
    if not query:
        return ParsedQuery()
    if _MAC_QUERY_RE.match(query) and not query.isdigit():
        return ParsedQuery([Term(re.sub(r"[:\-.]", "", query.lower()))])
    if _PHONE_QUERY_RE.match(query) and sum(c.isdigit() for c in query) >= 5:
        return ParsedQuery([Term(phone_digits(query))])
    tokens = _tokens([w for w in re.split(r"[\s,;]+", query) if w])
    terms: list[Term] = []
    for token in tokens:
        if token.kind == "word":
            if len(token.value) >= MIN_TERM_LENGTH:
                terms.append(Term(token.value))
            elif token.value[:1].isdigit():
                terms.append(number_term(token.value))
            else:
                terms.append(Term(token.value, word_start_pattern(token.value)))
        elif token.kind == "initials":
            letters = list(token.letters)
            pattern = initials_pattern(letters) if len(letters) > 1 else word_start_pattern(letters[0])
            terms.append(Term(token.value, pattern))
    terms += _number_terms(tokens)
    if not any(t.indexed for t in terms):
        # Short words alone match too much ("ив"); the whole query as one string may still say something.
        words = [_FILLER_PREFIX_RE.sub("", fold(w)) for w in re.split(r"[\s,;]+", query) if w]
        joined = " ".join(w for w in words if w and w not in FILLER_WORDS) or " ".join(words)
        return ParsedQuery([Term(joined)] if len(joined) >= MIN_TERM_LENGTH else [])
    unique = list({t.value: t for t in sorted(terms, key=lambda t: not t.indexed)}.values())
    return ParsedQuery(unique, _name_prefix(tokens))


def query_terms(query: str) -> list[str]:
    """The terms of a query as typed (folded): ``parse_query(query).terms``' values."""
    return [t.value for t in parse_query(query).terms]
