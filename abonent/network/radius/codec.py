"""The packet codec's edges: our dictionary for pyrad, and the strict checks run before pyrad decodes.

pyrad trusts attribute lengths more than a server facing the network should (it silently truncates an
attribute that runs past the end of the packet). ``check_packet`` walks the attributes first and refuses
what RFC 2865 §3 and §5 do not allow, with a reason that becomes the drop counter's name.
"""

from __future__ import annotations

from pathlib import Path

from pyrad.dictionary import Dictionary

DICTIONARY_PATH = Path(__file__).with_name("dictionary")
DICTIONARY = Dictionary(str(DICTIONARY_PATH))

MAX_PACKET = 4096  # RFC 2865 §3
# Standard attributes whose value has a fixed size (integer, ipaddr, date: 4 octets).
_FIXED = {
    code: 4
    for code in (4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 27, 28, 29, 40, 41, 42, 43, 45, 46, 47, 48, 49, 51, 52, 53, 55, 61, 62, 85, 101)
}


class MalformedPacket(ValueError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


def check_packet(data: bytes) -> None:
    size = len(data)
    if size < 20:
        raise MalformedPacket("truncated", f"{size} octets, a header is 20")
    if size > MAX_PACKET:
        raise MalformedPacket("oversized", f"{size} octets, at most {MAX_PACKET}")
    length = int.from_bytes(data[2:4], "big")
    if length < 20 or length > size:
        raise MalformedPacket("bad_length", f"Length field {length}, datagram {size}")
    loc = 20
    while loc < length:
        if loc + 2 > length:
            raise MalformedPacket("bad_attribute", f"attribute header cut at octet {loc}")
        code, attr_len = data[loc], data[loc + 1]
        if attr_len < 2 or loc + attr_len > length:
            raise MalformedPacket("bad_attribute", f"attribute {code} length {attr_len} at octet {loc}")
        fixed = _FIXED.get(code)
        if fixed is not None and attr_len != fixed + 2:
            raise MalformedPacket("bad_attribute", f"attribute {code} must be {fixed} octets, is {attr_len - 2}")
        if code == 80 and attr_len != 18:
            raise MalformedPacket("bad_attribute", "Message-Authenticator must be 16 octets")
        if code == 26:
            _check_vendor(data, loc + 2, loc + attr_len)
        loc += attr_len


def _check_vendor(data: bytes, start: int, end: int) -> None:
    if end - start < 4:
        raise MalformedPacket("bad_attribute", "Vendor-Specific shorter than a vendor id")
    loc = start + 4
    # Vendors we know use the RFC 2865 layout (type, length, value); others are kept opaque.
    vendor = int.from_bytes(data[start : start + 4], "big")
    if vendor not in (9, 311, 14988):
        return
    while loc < end:
        if loc + 2 > end:
            raise MalformedPacket("bad_attribute", f"vendor {vendor} sub-attribute header cut")
        sub_len = data[loc + 1]
        if sub_len < 2 or loc + sub_len > end:
            raise MalformedPacket("bad_attribute", f"vendor {vendor} sub-attribute length {sub_len}")
        loc += sub_len
