"""Access-Requests built byte by byte, as a NAS sends them, for tests that call the handler without sockets."""

from __future__ import annotations

import hashlib
import hmac
import os

from abonent.network.radius import auth

from .conftest import SECRET

KEY = SECRET.encode()
NAS_ADDR = ("127.0.0.1", 40001)
OTHER_NAS_ADDR = ("10.0.0.2", 40001)  # conftest's nas_b
ACCEPT, REJECT = 2, 3
ROUTER, INTRUDER = "AA:BB:CC:00:00:01", "AA:BB:CC:00:00:66"  # the subscriber's router, someone guessing
PPP = (1).to_bytes(4, "big")


def attr(code: int, value: bytes) -> bytes:
    return bytes((code, len(value) + 2)) + value


def microsoft(sub: int, value: bytes) -> bytes:
    """A Vendor-Specific attribute of Microsoft's (vendor 311, RFC 2548)."""
    return attr(26, (311).to_bytes(4, "big") + bytes((sub, len(value) + 2)) + value)


def access_request(ident: int, attributes: bytes, *, authenticator: bytes | None = None) -> bytes:
    """An Access-Request signed with Message-Authenticator (RFC 3579 §3.2)."""
    authenticator = authenticator or os.urandom(16)
    attributes += b"\x50\x12" + bytes(16)
    header = bytes((1, ident)) + (20 + len(attributes)).to_bytes(2, "big")
    mac = hmac.digest(KEY, header + authenticator + attributes, "md5")
    return header + authenticator + attributes[:-16] + mac


def pap_request(ident: int, username: str, password: str, *, calling: str = "") -> bytes:
    """PAP over PPP: the User-Password hidden with the Request Authenticator (RFC 2865 §5.2)."""
    authenticator = os.urandom(16)
    padded = password.encode().ljust(16, b"\x00")
    pad = hashlib.md5(KEY + authenticator).digest()
    hidden = bytes(p ^ k for p, k in zip(padded, pad, strict=True))
    attributes = attr(1, username.encode()) + attr(7, PPP) + attr(2, hidden)
    if calling:
        attributes += attr(31, calling.encode())
    return access_request(ident, attributes, authenticator=authenticator)


def mschap2_attributes(
    username: str, password: str, *, challenge: bytes | None = None, ident: int = 7
) -> tuple[bytes, bytes]:
    """The attributes of an MS-CHAPv2 login over PPP (RFC 2759), and the client's NT-Response."""
    challenge = challenge or os.urandom(16)
    peer = os.urandom(16)
    nt = auth.nt_response(auth.challenge_hash(peer, challenge, username), auth.nt_password_hash(password))
    attributes = (
        attr(1, username.encode())
        + attr(7, PPP)
        + microsoft(11, challenge)
        + microsoft(25, bytes((ident, 0)) + peer + bytes(8) + nt)
    )
    return attributes, nt


class Clock:
    """time.monotonic for the rate limiter, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
