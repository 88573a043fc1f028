"""Pure calculations of this app: how many SMS parts a text takes, and masking an address for the console."""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38: the basic 7-bit alphabet, and the extension table whose characters take two septets (an escape first).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    characters: int  # as the SMS centre counts them: septets in GSM-7, UTF-16 code units in UCS-2
    parts: int
    unicode: bool  # UCS-2 (Cyrillic): 70 a part, 67 in a multipart message; GSM-7: 160 / 153
    per_part: int


def sms_length(text: str) -> SmsLength:
    """How the text is split into SMS parts (3GPP TS 23.040: a multipart message loses room to its header)."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        units = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        single, multi, unicode = 160, 153, False
    else:
        # Characters outside the Basic Multilingual Plane (emoji) take two UTF-16 units.
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
        single, multi, unicode = 70, 67, True
    if units == 0:
        parts = 0
    elif units <= single:
        parts = 1
    else:
        parts = -(-units // multi)
    return SmsLength(units, parts, unicode, single if parts <= 1 else multi)


def mask_address(channel: str, address: str) -> str:
    """Enough of an address to tell which one it was, not enough to copy: +7916•••4567, iv•••@mail.ru, •••5678."""
    if not address:
        return ""
    if channel == "email" and "@" in address:
        local, _sep, domain = address.rpartition("@")
        return f"{local[:2]}•••@{domain}"
    if channel == "sms" and len(address) > 8:
        return f"{address[:5]}•••{address[-4:]}"
    return f"•••{address[-4:]}"
