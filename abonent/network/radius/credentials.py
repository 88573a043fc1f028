"""The password check an Access-Request asks for — PAP, CHAP, MS-CHAP or MS-CHAPv2 — against the login's
password, or against a dummy one when there is no login of that name (or its password cannot be decrypted).

The dummy check does the same work a wrong password costs (User-Password un-hidden, the MD5 of CHAP, the NT
hash and the DES of MS-CHAP), so a reject takes as long for a login that does not exist as for one that
does: timing the answers does not tell which logins exist (issue 12 measured 58 µs against 137 µs before).
Neither a wrong MS-CHAPv2 response nor the dummy computes the Authenticator Response: only an accept does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from . import auth, codec

# Microsoft's attributes (vendor 311, RFC 2548) as the codec keys them.
MS_CHAP_RESPONSE, MS_CHAP_CHALLENGE, MS_CHAP2_RESPONSE = (311, 1), (311, 11), (311, 25)
# A password no subscriber has. Twelve characters, about what subscribers' passwords are: the NT hash of a
# password over 27 characters takes a second MD4 block, so a much longer dummy would cost more, not the same.
DUMMY_PASSWORD = secrets.token_urlsafe(9)


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


def check(attributes: dict, password: str | None, username: str, secret: bytes, authenticator: bytes) -> Checked:
    """Check the request's credentials against ``password``; ``None`` checks against the dummy and fails."""
    known = password is not None
    candidate = password if known else DUMMY_PASSWORD
    accepted = None
    if 2 in attributes:
        plain = codec.decrypt_user_password(attributes[2][0], secret, authenticator)
        ok = auth.check_pap(candidate, plain)
    elif 3 in attributes:
        challenge = (attributes.get(60) or [authenticator])[0]
        ok = auth.check_chap(candidate, attributes[3][0], challenge)
    elif MS_CHAP2_RESPONSE in attributes:
        challenge = (attributes.get(MS_CHAP_CHALLENGE) or [b""])[0]
        accepted = auth.verify_mschap2(candidate, username, challenge, attributes[MS_CHAP2_RESPONSE][0])
        ok = accepted is not None
    elif MS_CHAP_RESPONSE in attributes:
        challenge = (attributes.get(MS_CHAP_CHALLENGE) or [b""])[0]
        ok = auth.check_mschap1(candidate, challenge, attributes[MS_CHAP_RESPONSE][0])
    else:
        return NOT_CARRIED
    if not (known and ok):
        return WRONG
    return RIGHT if accepted is None else Checked(carried=True, ok=True, mschap2=accepted)
