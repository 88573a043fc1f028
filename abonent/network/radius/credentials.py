"""The password check an Access-Request asks for — PAP, CHAP, MS-CHAP or MS-CHAPv2 — against the login's
password, or against a dummy one when there is no login of that name (or its password cannot be decrypted).

A reject takes as long for a login that does not exist as for one that does, whatever its password: timing the
answers must not tell which logins exist (issue 12 measured 58 µs against 137 µs before). The dummy check does
the work a wrong password costs: User-Password un-hidden and compared, the MD5 of CHAP; for MS-CHAP the challenge
hash and the DES against the password's NT hash. That hash (MD4, ~20 µs a 64-octet block, and a password over
27 characters takes two or more) is never computed on a request: the login's comes from the store, where the
maintenance thread computed it when it decrypted the password (``PolicyStore.warm_passwords``), the dummy's at
import. Only a password not yet warmed (the first seconds after a start or a password change) is hashed when
first used. Neither a wrong MS-CHAPv2 response nor the dummy computes the Authenticator Response: only an accept
does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from . import auth, codec

# Microsoft's attributes (vendor 311, RFC 2548) as the codec keys them.
MS_CHAP_RESPONSE, MS_CHAP_CHALLENGE, MS_CHAP2_RESPONSE = (311, 1), (311, 11), (311, 25)
# A password no subscriber has. Twelve characters, about what subscribers' passwords are: what PAP and CHAP
# cost grows a little with the length (the MD5 of CHAP; MS-CHAP's hashes are computed ahead, see above).
DUMMY_PASSWORD = secrets.token_urlsafe(9)
DUMMY_HASHES = auth.password_hashes(DUMMY_PASSWORD)


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of one check. ``carried``: the request carried a password of a kind we check; ``ok``: it is
    the login's (never for the dummy); ``mschap2``: the verified MS-CHAPv2 exchange, for its success value and
    MPPE keys."""

    carried: bool
    ok: bool = False
    mschap2: auth.Mschap2Accept | None = None


NOT_CARRIED = Checked(carried=False)
WRONG = Checked(carried=True)
RIGHT = Checked(carried=True, ok=True)


def carries_password(attributes: dict) -> bool:
    return 2 in attributes or 3 in attributes or MS_CHAP2_RESPONSE in attributes or MS_CHAP_RESPONSE in attributes


class Passwords(Protocol):
    """Where a login's password and MS-CHAP hashes come from (``PolicyStore``)."""

    def password_of(self, policy) -> str: ...

    def password_hashes_of(self, policy) -> bytes: ...


def check(attributes: dict, passwords: Passwords, entry, username: str, secret: bytes, authenticator: bytes) -> Checked:
    """Check the request's credentials against the password of the login ``entry``; ``None`` checks against the
    dummy and fails. ``passwords`` may raise ``SecretError`` (a password stored under another field key)."""
    known = entry is not None
    accepted = None
    if 2 in attributes:
        plain = codec.decrypt_user_password(attributes[2][0], secret, authenticator)
        ok = auth.check_pap(passwords.password_of(entry) if known else DUMMY_PASSWORD, plain)
    elif 3 in attributes:
        challenge = (attributes.get(60) or [authenticator])[0]
        ok = auth.check_chap(passwords.password_of(entry) if known else DUMMY_PASSWORD, attributes[3][0], challenge)
    elif MS_CHAP2_RESPONSE in attributes:
        challenge = (attributes.get(MS_CHAP_CHALLENGE) or [b""])[0]
        hashes = passwords.password_hashes_of(entry) if known else DUMMY_HASHES
        accepted = auth.verify_mschap2_hashed(hashes, username, challenge, attributes[MS_CHAP2_RESPONSE][0])
        ok = accepted is not None
    elif MS_CHAP_RESPONSE in attributes:
        challenge = (attributes.get(MS_CHAP_CHALLENGE) or [b""])[0]
        hashes = passwords.password_hashes_of(entry) if known else DUMMY_HASHES
        ok = auth.check_mschap1_hashed(hashes, challenge, attributes[MS_CHAP_RESPONSE][0])
    else:
        return NOT_CARRIED
    if not (known and ok):
        return WRONG
    return RIGHT if accepted is None else Checked(carried=True, ok=True, mschap2=accepted)
