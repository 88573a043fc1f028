"""MPPE keys for an MS-CHAPv2 Access-Accept: what a NAS needs to encrypt a PPTP, L2TP or SSTP link with MPPE
(MikroTik ``use-encryption=required``, accel-ppp ``mppe=require``; without keys such a NAS drops the link).

Derived as RFC 3079 §3 says for 128-bit keys from the MS-CHAPv2 exchange (the NT-Response and the password's
hash hash), carried as RFC 2548's MS-MPPE-Send-Key and MS-MPPE-Recv-Key (§2.4.2, §2.4.3), each hidden with
the shared secret, the Request Authenticator and a salt. Alongside them MS-MPPE-Encryption-Policy and
MS-MPPE-Encryption-Types, with the values FreeRADIUS's rlm_mschap sends by default: encryption allowed (the
NAS's own setting decides whether it is required), 40- or 128-bit.

The keys belong to one request: they are appended to the reply, never to the accept body shared between
subscribers (``handler.RadiusServer._accept_body``).
"""

from __future__ import annotations

import hashlib
import os

from .auth import Mschap2Accept
from .codec import vendor_attribute

MS_VENDOR = 311
MS_MPPE_ENCRYPTION_POLICY, MS_MPPE_ENCRYPTION_TYPES = 7, 8
MS_MPPE_SEND_KEY, MS_MPPE_RECV_KEY = 16, 17
# RFC 2548 §2.4.4: 1 = encryption allowed, 2 = required. §2.4.5: bit 2 = 40-bit keys, bit 4 = 128-bit keys.
ENCRYPTION_ALLOWED = (1).to_bytes(4, "big")
TYPES_40_OR_128_BIT = (2 | 4).to_bytes(4, "big")

# RFC 3079 §3.4 (GetMasterKey, GetAsymmetricStartKey): the constants, as ASCII.
_MAGIC1 = b"This is the MPPE Master Key"
_MAGIC2 = b"On the client side, this is the send key; on the server side, it is the receive key."
_MAGIC3 = b"On the client side, this is the receive key; on the server side, it is the send key."
_SHS_PAD1 = bytes(40)
_SHS_PAD2 = b"\xf2" * 40


def master_key(password_hash_hash: bytes, nt_response: bytes) -> bytes:
    """RFC 3079 §3.4 GetMasterKey: SHA-1 of the hash hash, the NT-Response and Magic1, first 16 octets."""
    return hashlib.sha1(password_hash_hash + nt_response + _MAGIC1).digest()[:16]  # noqa: S324 - the RFC's


def asymmetric_start_key(master: bytes, *, send: bool, server: bool) -> bytes:
    """RFC 3079 §3.4 GetAsymmetricStartKey for a 128-bit session key. The server's send key and the client's
    receive key are one key (Magic3), and the other way round (Magic2)."""
    magic = _MAGIC3 if send == server else _MAGIC2
    return hashlib.sha1(master + _SHS_PAD1 + magic + _SHS_PAD2).digest()[:16]  # noqa: S324 - the RFC's


def server_keys(password_hash_hash: bytes, nt_response: bytes) -> tuple[bytes, bytes]:
    """``(send, receive)``: the keys of the NAS's side of the link, as RFC 2548 names them (Send-Key encrypts
    what the NAS sends to the client)."""
    master = master_key(password_hash_hash, nt_response)
    return asymmetric_start_key(master, send=True, server=True), asymmetric_start_key(master, send=False, server=True)


def hide_key(key: bytes, secret: bytes, request_authenticator: bytes, salt: bytes) -> bytes:
    """RFC 2548 §2.4.2: Salt + C, where P = key length + key + zero padding to a multiple of 16 octets,
    b(1) = MD5(secret + Request Authenticator + Salt), b(i) = MD5(secret + c(i-1)), c(i) = p(i) xor b(i)."""
    plain = bytes((len(key),)) + key
    plain += bytes(-len(plain) % 16)
    out = [salt]
    last = request_authenticator + salt
    for start in range(0, len(plain), 16):
        pad = hashlib.md5(secret + last).digest()  # noqa: S324 - RFC 2548
        block = (int.from_bytes(plain[start : start + 16], "big") ^ int.from_bytes(pad, "big")).to_bytes(16, "big")
        out.append(block)
        last = block
    return b"".join(out)


def _salts() -> tuple[bytes, bytes]:
    """Two salts for one packet: the high bit set, and different from each other (RFC 2548 §2.4.2; the
    Request Authenticator already makes them differ between packets)."""
    first = 0x8000 | int.from_bytes(os.urandom(2), "big")
    return first.to_bytes(2, "big"), (first ^ 1).to_bytes(2, "big")


def attributes(accepted: Mschap2Accept, secret: bytes, request_authenticator: bytes) -> bytes:
    """The four MS-MPPE attributes of an MS-CHAPv2 accept, encoded."""
    send, receive = server_keys(accepted.password_hash_hash, accepted.nt_response)
    send_salt, receive_salt = _salts()
    return (
        vendor_attribute(MS_VENDOR, MS_MPPE_ENCRYPTION_POLICY, ENCRYPTION_ALLOWED)
        + vendor_attribute(MS_VENDOR, MS_MPPE_ENCRYPTION_TYPES, TYPES_40_OR_128_BIT)
        + vendor_attribute(MS_VENDOR, MS_MPPE_SEND_KEY, hide_key(send, secret, request_authenticator, send_salt))
        + vendor_attribute(MS_VENDOR, MS_MPPE_RECV_KEY, hide_key(receive, secret, request_authenticator, receive_salt))
    )
