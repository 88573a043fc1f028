"""How subscriber search text is built and how a typed query is turned into search terms.

Both sides go through ``fold``: lower case, ``ё`` → ``е``, so "Семёнов" is found by "семенов" and the
column can be matched with a plain case-sensitive ``LIKE`` on SQLite and PostgreSQL alike (SQLite's
``LIKE`` folds only ASCII). Phones are stored as digits (``79161234567``), MACs as bare hex.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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
    inn: str = "",
    contract_numbers: Iterable[str] = (),
    phones: Iterable[str] = (),
    emails: Iterable[str] = (),
    addresses: Iterable[str] = (),
    macs: Iterable[str] = (),
    serials: Iterable[str] = (),
) -> str:
    parts = [account_number, display_name, inn]
    parts += list(contract_numbers)
    parts += [phone_digits(p) for p in phones]
    parts += list(emails)
    parts += list(addresses)
    parts += [m.replace(":", "") for m in macs]
    parts += list(serials)
    return fold(" | ".join(p for p in parts if p))


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
    """How a short number ("7", "12", "5а") must occur, as a regular expression that reads the same to
    PostgreSQL and to SQLite. The trigram index takes "a word starting with 12" from it, so a street and
    a house number meet in the index rather than in thousands of rows fetched to be checked."""
    return f"[ /]{re.escape(number)}([ ,/|]|$)"


def word_start_pattern(term: str) -> str:
    """How a short word of letters must occur: as the start of a word ("и" in "Иванов И" is an initial)."""
    return f"(^|[^{_WORD_CHARS}]){re.escape(term)}"


def term_matches(term: str, text: str) -> bool:
    """Whether one term occurs in a search text: the rule the database applies (``selectors``), in Python."""
    if len(term) >= MIN_TERM_LENGTH:
        return term in text
    pattern = number_word_pattern(term) if term[:1].isdigit() else word_start_pattern(term)
    return re.search(pattern, text) is not None


def query_terms(query: str) -> list[str]:
    """Terms that must all occur in a subscriber's search text; ``[]`` when the query is too short.

    A query that looks like one phone number (``+7 (916) 123-45-67``) is one term of digits; a MAC in any
    notation is one term of hex; otherwise each word is a term and words under 3 characters only
    narrow what the longer words find (a trigram index cannot use them alone), and match as words
    (a number as a whole one, letters as a word's start) rather than anywhere in the text.
    """
    query = (query or "").strip()
    if not query:
        return []
    if _MAC_QUERY_RE.match(query) and not query.isdigit():
        return [re.sub(r"[:\-.]", "", query.lower())]
    if _PHONE_QUERY_RE.match(query) and sum(c.isdigit() for c in query) >= 5:
        return [phone_digits(query)]
    words = [fold(w) for w in re.split(r"[\s,;]+", query) if w]
    words = [_FILLER_PREFIX_RE.sub("", w) for w in words]
    words = [w for w in words if w and w not in FILLER_WORDS] or words
    # Punctuation in house numbers ("д.5") is kept: the address text carries it the same way.
    long_words = [w for w in words if len(w) >= MIN_TERM_LENGTH]
    if long_words:
        # Short words ("5" in "Ленина 5") narrow the rows the long ones found; alone they match too much.
        return list(dict.fromkeys(long_words + [w for w in words if len(w) < MIN_TERM_LENGTH]))
    joined = " ".join(words)
    return [joined] if len(joined) >= MIN_TERM_LENGTH else []
