"""Reversible encryption for secrets the application must read back (RADIUS shared secrets, PPPoE
passwords for CHAP and MS-CHAPv2, which need the clear text to verify a response).

Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from ``ABONENT_FIELD_KEY``, or from ``SECRET_KEY``
when that is unset. Changing the key makes the stored values unreadable, so set ``ABONENT_FIELD_KEY`` once,
before the first NAS is registered, and keep it with the database backups (docs/operations.md).
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

PREFIX = "f1:"


class SecretError(ValueError):
    pass


@functools.cache
def _fernet(key_material: str) -> Fernet:
    digest = hashlib.sha256(b"abonent-field-key:" + key_material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _current() -> Fernet:
    return _fernet(getattr(settings, "ABONENT_FIELD_KEY", "") or settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return PREFIX + _current().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    if not token.startswith(PREFIX):
        raise SecretError("not an encrypted value")
    try:
        return _current().decrypt(token[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise SecretError("cannot decrypt: ABONENT_FIELD_KEY or SECRET_KEY changed since it was stored") from exc
