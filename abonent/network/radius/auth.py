"""Password checks of the three PPP authentication methods: PAP (RFC 2865 §5.2), CHAP (RFC 1994 / RFC 2865
§5.3) and MS-CHAPv2 (RFC 2759, attributes of RFC 2548). Pure functions over bytes, tested against the RFC
vectors. MD4 is computed here because OpenSSL 3 no longer offers it to Python by default."""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

_M32 = 0xFFFFFFFF


def _md4(data: bytes) -> bytes:
    """MD4 (RFC 1320). Only for MS-CHAP's NT password hash, where the protocol mandates it. Its rounds are laid
    out as the RFC writes them, four steps at a time with the rotations inline: one 64-octet block takes about
    13 µs (21 with a step function per step), and the maintenance thread hashes every login's password."""
    length = len(data) * 8
    data += b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", length)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for offset in range(0, len(data), 64):
        x = struct.unpack_from("<16I", data, offset)
        aa, bb, cc, dd = a, b, c, d
        for k in (0, 4, 8, 12):  # round 1: F(x, y, z) = xy v not(x)z
            t = (a + ((b & c) | (~b & d)) + x[k]) & _M32
            a = ((t << 3) | (t >> 29)) & _M32
            t = (d + ((a & b) | (~a & c)) + x[k + 1]) & _M32
            d = ((t << 7) | (t >> 25)) & _M32
            t = (c + ((d & a) | (~d & b)) + x[k + 2]) & _M32
            c = ((t << 11) | (t >> 21)) & _M32
            t = (b + ((c & d) | (~c & a)) + x[k + 3]) & _M32
            b = ((t << 19) | (t >> 13)) & _M32
        for k in (0, 1, 2, 3):  # round 2: G(x, y, z) = xy v xz v yz, constant 5A827999
            t = (a + ((b & c) | (b & d) | (c & d)) + x[k] + 0x5A827999) & _M32
            a = ((t << 3) | (t >> 29)) & _M32
            t = (d + ((a & b) | (a & c) | (b & c)) + x[k + 4] + 0x5A827999) & _M32
            d = ((t << 5) | (t >> 27)) & _M32
            t = (c + ((d & a) | (d & b) | (a & b)) + x[k + 8] + 0x5A827999) & _M32
            c = ((t << 9) | (t >> 23)) & _M32
            t = (b + ((c & d) | (c & a) | (d & a)) + x[k + 12] + 0x5A827999) & _M32
            b = ((t << 13) | (t >> 19)) & _M32
        for k in (0, 2, 1, 3):  # round 3: H(x, y, z) = x xor y xor z, constant 6ED9EBA1
            t = (a + (b ^ c ^ d) + x[k] + 0x6ED9EBA1) & _M32
            a = ((t << 3) | (t >> 29)) & _M32
            t = (d + (a ^ b ^ c) + x[k + 8] + 0x6ED9EBA1) & _M32
            d = ((t << 9) | (t >> 23)) & _M32
            t = (c + (d ^ a ^ b) + x[k + 4] + 0x6ED9EBA1) & _M32
            c = ((t << 11) | (t >> 21)) & _M32
            t = (b + (c ^ d ^ a) + x[k + 12] + 0x6ED9EBA1) & _M32
            b = ((t << 15) | (t >> 17)) & _M32
        a, b, c, d = (a + aa) & _M32, (b + bb) & _M32, (c + cc) & _M32, (d + dd) & _M32
    return struct.pack("<4I", a, b, c, d)


def check_pap(password: str, decrypted: bytes) -> bool:
    """``decrypted`` is the User-Password after un-hiding (pyrad strips the NUL padding)."""
    return hmac.compare_digest(password.encode(), decrypted.rstrip(b"\x00"))


def check_chap(password: str, chap_password: bytes, challenge: bytes) -> bool:
    """CHAP-Password = ident (1 octet) + MD5(ident + password + challenge) (16 octets). The challenge is
    CHAP-Challenge, or the Request Authenticator when the NAS sent none."""
    if len(chap_password) != 17:
        return False
    expected = hashlib.md5(chap_password[:1] + password.encode() + challenge).digest()  # noqa: S324 - CHAP is MD5
    return hmac.compare_digest(expected, chap_password[1:])


def nt_password_hash(password: str) -> bytes:
    return _md4(password.encode("utf-16-le"))


def password_hashes(password: str) -> bytes:
    """The NT hash of ``password`` and its own MD4 (RFC 2759's PasswordHash and PasswordHashHash), 32 octets.
    What MS-CHAP checks against, computed ahead of the requests: MD4 here is pure Python (~20 µs a block), and a
    password over 27 characters takes more blocks, so computing it per request made a reject's time tell the
    password's length (and, against a dummy, whether the login exists)."""
    password_hash = nt_password_hash(password)
    return password_hash + _md4(password_hash)


def _des_key(seven: bytes) -> bytes:
    """Spread 56 key bits over 8 octets (parity bits left at zero: DES ignores them)."""
    bits = int.from_bytes(seven, "big")
    return bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


def _des(key7: bytes, block: bytes) -> bytes:
    key = _des_key(key7)
    # Single DES as 3DES with K1 = K2 = K3.
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()  # noqa: S305 - the protocol's own DES
    return encryptor.update(block) + encryptor.finalize()


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: str) -> bytes:
    # RFC 2759 §8.2: the user name without any domain prefix.
    name = username.split("\\", 1)[-1]
    return hashlib.sha1(peer_challenge + authenticator_challenge + name.encode()).digest()[:8]  # noqa: S324


def nt_response(challenge: bytes, password_hash: bytes) -> bytes:
    padded = password_hash + b"\x00" * 5
    return _des(padded[0:7], challenge) + _des(padded[7:14], challenge) + _des(padded[14:21], challenge)


_MAGIC1 = b"Magic server to client signing constant"
_MAGIC2 = b"Pad to make it do more than one iteration"


def authenticator_response(password_hash: bytes, response: bytes, challenge: bytes) -> bytes:
    """The ``S=<40 hex digits>`` string of RFC 2759 §8.7 that proves to the client we knew the password."""
    return _authenticator_response(_md4(password_hash), response, challenge)


def _authenticator_response(hash_hash: bytes, response: bytes, challenge: bytes) -> bytes:
    digest = hashlib.sha1(hash_hash + response + _MAGIC1).digest()  # noqa: S324
    digest = hashlib.sha1(digest + challenge + _MAGIC2).digest()  # noqa: S324
    return b"S=" + digest.hex().upper().encode()


@dataclass(frozen=True, slots=True)
class Mschap2Accept:
    """A verified MS-CHAP2-Response: the MS-CHAP2-Success value to send, and what RFC 3079 derives the MPPE
    keys from (``mppe.py``)."""

    success: bytes  # ident + "S=<40 hex digits>"
    password_hash_hash: bytes  # MD4(MD4(password)), RFC 2759 §8.7's PasswordHashHash
    nt_response: bytes  # the client's 24 octets


def verify_mschap2(
    password: str, username: str, authenticator_challenge: bytes, response: bytes
) -> Mschap2Accept | None:
    """Verify an MS-CHAP2-Response against the clear-text password (``verify_mschap2_hashed``)."""
    return verify_mschap2_hashed(password_hashes(password), username, authenticator_challenge, response)


def verify_mschap2_hashed(
    hashes: bytes, username: str, authenticator_challenge: bytes, response: bytes
) -> Mschap2Accept | None:
    """Verify an MS-CHAP2-Response (50 octets: ident, flags, peer challenge (16), reserved (8), NT response
    (24)) against the password's ``password_hashes``. A wrong one costs the challenge hash and three DES blocks,
    whatever the password and its length."""
    if len(response) != 50 or len(authenticator_challenge) != 16:
        return None
    ident, peer_challenge, received = response[0:1], response[2:18], response[26:50]
    chash = challenge_hash(peer_challenge, authenticator_challenge, username)
    expected = nt_response(chash, hashes[:16])
    if not hmac.compare_digest(expected, received):
        return None
    hash_hash = hashes[16:]
    return Mschap2Accept(ident + _authenticator_response(hash_hash, expected, chash), hash_hash, expected)


def check_mschap2(password: str, username: str, authenticator_challenge: bytes, response: bytes) -> bytes | None:
    """The MS-CHAP2-Success value (ident + ``S=…``) when the MS-CHAP2-Response matches, else ``None``."""
    accepted = verify_mschap2(password, username, authenticator_challenge, response)
    return accepted.success if accepted is not None else None


def check_mschap1(password: str, challenge: bytes, response: bytes) -> bool:
    return check_mschap1_hashed(password_hashes(password), challenge, response)


def check_mschap1_hashed(hashes: bytes, challenge: bytes, response: bytes) -> bool:
    """Verify an MS-CHAP-Response (RFC 2433 via RFC 2548: ident, flags, LM response (24), NT response (24))
    against the 8-octet MS-CHAP-Challenge and the password's ``password_hashes``. Only the NT response is
    accepted (flags = 1): the LM hash is broken beyond use."""
    if len(response) != 50 or len(challenge) != 8 or response[1] != 1:
        return False
    return hmac.compare_digest(nt_response(challenge, hashes[:16]), response[26:50])
