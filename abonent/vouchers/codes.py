"""Card codes: 15 random characters of a 32-letter alphabet (75 bits from ``secrets``) and a check character,
printed in four groups of four: ``7KQM-X2PA-W9TD-HC4E``.

The alphabet leaves out 0/O and 1/I, which are misread on paper. The check character (a weighted sum over
GF(32)) catches every single wrong character and every swap of two different neighbours, so a typo is told apart
("check the code") from a well-formed code that names no card (a guess, counted against the rate limit). Pure
functions; the HMAC used to look a code up lives here too, keyed by the field key (and its old keys, during a
rotation).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
RANDOM_LENGTH = 15
LENGTH = RANDOM_LENGTH + 1
GROUP = 4
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_N = len(ALPHABET)


def _gf_mul(a: int, b: int) -> int:
    """Multiplication in GF(32) (the polynomial x^5 + x^2 + 1)."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        b >>= 1
        a <<= 1
        if a & 0b100000:
            a ^= 0b100101
    return product


def _weights(n: int) -> list[int]:
    """α^0, α^1, … : distinct non-zero elements of GF(32) (α = x has order 31)."""
    out, w = [], 1
    for _ in range(n):
        out.append(w)
        w = _gf_mul(w, 2)
    return out


_W = _weights(LENGTH)
_INVERSE_LAST = next(x for x in range(1, _N) if _gf_mul(x, _W[-1]) == 1)


def _syndrome(code: str) -> int:
    total = 0
    for weight, char in zip(_W, code, strict=False):
        total ^= _gf_mul(weight, _INDEX[char])
    return total


def check_character(body: str) -> str:
    """The character that makes the weighted sum of the whole code zero in GF(32). Each position has its own
    non-zero weight, so one wrong character (w·(a⊕b) ≠ 0) and two different neighbours swapped ((w1⊕w2)·(a⊕b) ≠
    0) always change the sum: unlike Luhn mod 32, which misses the swap of the alphabet's first and last letters."""
    return ALPHABET[_gf_mul(_syndrome(body), _INVERSE_LAST)]


def generate() -> str:
    """A new code, bare (no dashes)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + check_character(body)


def printed(code: str) -> str:
    """``code`` in groups of four, as on the card."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def normalise(typed: str) -> str | None:
    """What was typed as a bare code, or None when it cannot be one (wrong length, a letter outside the alphabet,
    a wrong check character): a typo. Spaces and dashes are ignored, case does not matter."""
    code = "".join(ch for ch in (typed or "").upper() if ch not in " -\t")
    if len(code) != LENGTH or any(ch not in _INDEX for ch in code):
        return None
    if _syndrome(code) != 0:
        return None
    return code


def _key_materials() -> list[str]:
    current = getattr(settings, "ABONENT_FIELD_KEY", "") or settings.SECRET_KEY
    return [current, *[k for k in getattr(settings, "ABONENT_FIELD_KEY_OLD", ()) if k and k != current]]


def _digest(code: str, material: str) -> str:
    key = hashlib.sha256(b"abonent-voucher-code:" + material.encode()).digest()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def digest(code: str) -> str:
    """The stored lookup value of a bare code, under the current key."""
    return _digest(code, _key_materials()[0])


def lookup_digests(code: str) -> list[str]:
    """The values a stored card with this code may hold: under the current key and each old one."""
    return [_digest(code, material) for material in _key_materials()]


def rehash(voucher_ids) -> None:
    """After a field-key rotation re-encrypted these cards' codes: their lookup HMACs under the new key."""
    from abonent.core import secrets

    from .models import Voucher

    for card in Voucher.objects.filter(pk__in=list(voucher_ids)).only("pk", "code_encrypted"):
        Voucher.objects.filter(pk=card.pk).update(code_digest=digest(secrets.decrypt(card.code_encrypted)))
