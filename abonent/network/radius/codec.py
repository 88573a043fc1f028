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
_ZERO16 = bytes(16)
# Standard attributes whose value has a fixed size (integer, ipaddr, date: 4 octets).
_FIXED_CODES = (4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 27, 28, 29, 40, 41, 42, 43, 45, 46, 47, 48, 49, 51, 52, 53)
_FIXED_CODES += (55, 61, 62, 85, 101)
_FIXED = dict.fromkeys(_FIXED_CODES, 4)


class MalformedPacket(ValueError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


class Request:
    """A received packet as the hot paths read it: header fields and attributes by code, vendor attributes by
    ``(vendor, type)`` as pyrad keys them. Values are raw octets."""

    __slots__ = ("attributes", "authenticator", "code", "id", "ma_at", "raw")

    def __init__(self, raw: bytes, length: int, attributes: dict, ma_at: int) -> None:
        self.raw = raw[:length]
        self.code = raw[0]
        self.id = raw[1]
        self.authenticator = raw[4:20]
        self.attributes = attributes
        self.ma_at = ma_at

    def get(self, key):
        return self.attributes.get(key)

    def __contains__(self, key) -> bool:
        return key in self.attributes


def parse_packet(data: bytes) -> Request:
    """Check a datagram against RFC 2865 §3 and §5 and split its attributes, in one pass. pyrad's decoder
    trusts lengths more than a server facing the network should, and costs about 30 µs per attribute here;
    its dictionary still encodes every reply (``encode_attributes``)."""
    size = len(data)
    if size < 20:
        raise MalformedPacket("truncated", f"{size} octets, a header is 20")
    if size > MAX_PACKET:
        raise MalformedPacket("oversized", f"{size} octets, at most {MAX_PACKET}")
    length = int.from_bytes(data[2:4], "big")
    if length < 20 or length > size:
        raise MalformedPacket("bad_length", f"Length field {length}, datagram {size}")
    attributes: dict = {}
    loc = 20
    ma_at = 0
    while loc < length:
        if loc + 2 > length:
            raise MalformedPacket("bad_attribute", f"attribute header cut at octet {loc}")
        code, attr_len = data[loc], data[loc + 1]
        end = loc + attr_len
        if attr_len < 2 or end > length:
            raise MalformedPacket("bad_attribute", f"attribute {code} length {attr_len} at octet {loc}")
        fixed = _FIXED.get(code)
        if fixed is not None and attr_len != fixed + 2:
            raise MalformedPacket("bad_attribute", f"attribute {code} must be {fixed} octets, is {attr_len - 2}")
        if code == 80:
            if attr_len != 18:
                raise MalformedPacket("bad_attribute", "Message-Authenticator must be 16 octets")
            if ma_at:
                raise MalformedPacket("bad_attribute", "more than one Message-Authenticator")  # RFC 3579 §3.2
            ma_at = loc
        if code == 26:
            _vendor_attributes(data, loc + 2, end, attributes)
        else:
            value = data[loc + 2 : end]
            found = attributes.get(code)
            if found is None:
                attributes[code] = [value]
            else:
                found.append(value)
        loc = end
    return Request(data, length, attributes, ma_at)


def check_packet(data: bytes) -> int:
    """Raise ``MalformedPacket`` or return the offset of the Message-Authenticator attribute (0: none)."""
    return parse_packet(data).ma_at


def check_access_request(attributes: dict) -> None:
    """What RFC 2865 says an Access-Request must not carry (§5, the table of occurrences; §5.2; §5.40); such a
    request is malformed and dropped, not answered from whichever attribute happens to come first."""
    for code, name in ((1, "User-Name"), (2, "User-Password"), (3, "CHAP-Password"), (60, "CHAP-Challenge")):
        values = attributes.get(code)
        if values is not None and len(values) > 1:
            raise MalformedPacket("bad_attribute", f"{name} appears {len(values)} times, at most once")
    if 2 in attributes and 3 in attributes:
        raise MalformedPacket("bad_attribute", "both User-Password and CHAP-Password")
    password = attributes.get(2)
    if password is not None and (len(password[0]) % 16 or not 16 <= len(password[0]) <= 128):
        # Whether or not the login exists (a rate-limited request is not un-hidden): no existence oracle.
        raise MalformedPacket("bad_attribute", f"User-Password of {len(password[0])} octets, 16 to 128 by 16")
    chap = attributes.get(3)
    if chap is not None and len(chap[0]) != 17:
        raise MalformedPacket("bad_attribute", f"CHAP-Password of {len(chap[0])} octets, must be 17")
    challenge = attributes.get(60)
    if challenge is not None and len(challenge[0]) < 5:
        raise MalformedPacket("bad_attribute", f"CHAP-Challenge of {len(challenge[0])} octets, at least 5")


def decrypt_user_password(value: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """User-Password un-hiding (RFC 2865 §5.2), NUL padding removed."""
    import hashlib

    if not value or len(value) % 16:
        raise MalformedPacket("bad_attribute", "User-Password is not a multiple of 16 octets")
    out = bytearray()
    last = authenticator
    for start in range(0, len(value), 16):
        block = value[start : start + 16]
        key = hashlib.md5(secret + last).digest()  # noqa: S324 - RFC 2865
        out += (int.from_bytes(block, "big") ^ int.from_bytes(key, "big")).to_bytes(16, "big")
        last = block
    return bytes(out).rstrip(b"\x00")


def accounting_request_ok(request: Request, secret: bytes) -> bool:
    """RFC 2866 §3: the Request Authenticator is MD5(code + id + length + 16 zero octets + attributes + secret)."""
    import hashlib
    import hmac

    raw = request.raw
    expected = hashlib.md5(raw[:4] + _ZERO16 + raw[20:] + secret).digest()  # noqa: S324 - RFC 2866
    return hmac.compare_digest(expected, request.authenticator)


def plain_reply(code: int, identifier: int, request_authenticator: bytes, secret: bytes, body: bytes = b"") -> bytes:
    """A reply without Message-Authenticator (Accounting-Response): RFC 2866 §3 Response Authenticator."""
    import hashlib

    length = 20 + len(body)
    header = bytes((code, identifier)) + length.to_bytes(2, "big")
    response = hashlib.md5(header + request_authenticator + body + secret).digest()  # noqa: S324 - RFC 2866
    return header + response + body


def message_authenticator_ok(data: bytes, at: int, secret: bytes, authenticator: bytes | None = None) -> bool:
    """RFC 2869 §5.14 / RFC 3579 §3.2: HMAC-MD5 over the packet with the attribute's value zeroed. For a
    request ``authenticator`` is its own; Accounting-Request and CoA use zeros (RFC 5176 §3.3)."""
    import hmac

    length = int.from_bytes(data[2:4], "big")
    packet = data[:length]
    head = packet[:4] + (packet[4:20] if authenticator is None else authenticator)
    signed = head + packet[20 : at + 2] + _ZERO16 + packet[at + 18 :]
    return hmac.compare_digest(hmac.digest(secret, signed, "md5"), packet[at + 2 : at + 18])


def _vendor_attributes(data: bytes, start: int, end: int, attributes: dict) -> None:
    if end - start < 4:
        raise MalformedPacket("bad_attribute", "Vendor-Specific shorter than a vendor id")
    vendor = int.from_bytes(data[start : start + 4], "big")
    # Vendors we know use the RFC 2865 layout (type, length, value); others are kept opaque under 26.
    if vendor not in (9, 311, 3561, 14988):
        attributes.setdefault(26, []).append(data[start:end])
        return
    loc = start + 4
    while loc < end:
        if loc + 2 > end:
            raise MalformedPacket("bad_attribute", f"vendor {vendor} sub-attribute header cut")
        sub_type, sub_len = data[loc], data[loc + 1]
        if sub_len < 2 or loc + sub_len > end:
            raise MalformedPacket("bad_attribute", f"vendor {vendor} sub-attribute length {sub_len}")
        attributes.setdefault((vendor, sub_type), []).append(data[loc + 2 : loc + sub_len])
        loc += sub_len


# --- replies ---------------------------------------------------------------------------------------------------
# An Access-Accept carries the same attributes for every subscriber of one plan on one NAS. Encoding them with
# pyrad's Packet for each request cost about half of the time per request (docs/radius.md, "Performance"), so
# the attribute part is encoded once by pyrad and kept; each reply only adds its Class, its Proxy-State and the
# two authenticators.


def encode_attributes(pairs) -> bytes:
    """``[(name, value), ...]`` → the attribute octets, encoded by pyrad with our dictionary."""
    from pyrad.packet import Packet

    packet = Packet(dict=DICTIONARY)
    for name, value in pairs:
        packet.AddAttribute(name, value)
    return packet._PktEncodeAttributes()


def vendor_attribute(vendor: int, code: int, value: bytes) -> bytes:
    """A Vendor-Specific attribute (26) holding one sub-attribute, as RFC 2865 §5.26 suggests."""
    return raw_attribute(26, vendor.to_bytes(4, "big") + bytes((code, len(value) + 2)) + value)


def raw_attribute(code: int, value: bytes) -> bytes:
    return bytes((code, len(value) + 2)) + value


def finish_reply(code: int, identifier: int, request_authenticator: bytes, secret: bytes, body: bytes) -> bytes:
    """A reply with Message-Authenticator first (BlastRADIUS), then ``body``; both authenticators computed
    as RFC 2869 §5.14 and RFC 2865 §3 prescribe."""
    import hashlib
    import hmac

    attributes = b"\x50\x12" + _ZERO16 + body
    length = 20 + len(attributes)
    if length > MAX_PACKET:
        raise MalformedPacket("reply_too_large", f"{length} octets")
    header = bytes((code, identifier)) + length.to_bytes(2, "big")
    ma = hmac.digest(secret, header + request_authenticator + attributes, "md5")
    attributes = b"\x50\x12" + ma + body
    response = hashlib.md5(header + request_authenticator + attributes + secret).digest()  # noqa: S324 - RFC 2865
    return header + response + attributes
