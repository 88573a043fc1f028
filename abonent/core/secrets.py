"""Reversible encryption for secrets the application must read back (RADIUS shared secrets, PPPoE
passwords for CHAP and MS-CHAPv2, which need the clear text to verify a response).

Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from ``ABONENT_FIELD_KEY``, or from ``SECRET_KEY``
when that is unset. Values are encrypted under that key only; they are decrypted under it, then under each
of ``ABONENT_FIELD_KEY_OLD`` (the keys being rotated away from, while ``abonent rotate-field-key``
re-encrypts the stored values: docs/operations.md, "Rotating the field key").

The apps that store encrypted columns declare them here (``register_field``) so the rotation finds every one
without core knowing the apps.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

PREFIX = "f1:"


class SecretError(ValueError):
    pass


@functools.cache
def _fernet(key_material: str) -> Fernet:
    digest = hashlib.sha256(b"abonent-field-key:" + key_material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _key_material() -> str:
    return getattr(settings, "ABONENT_FIELD_KEY", "") or settings.SECRET_KEY


def _old_key_material() -> list[str]:
    return [key for key in getattr(settings, "ABONENT_FIELD_KEY_OLD", ()) if key]


def current_key_is_old() -> bool:
    """Whether the key values are encrypted under (``ABONENT_FIELD_KEY``, else ``SECRET_KEY``) is also listed
    in ``ABONENT_FIELD_KEY_OLD``: a rotation would then re-encrypt nothing, under the key it means to retire."""
    return _key_material() in _old_key_material()


def _current() -> Fernet:
    return _fernet(_key_material())


def _old() -> list[Fernet]:
    return [_fernet(key) for key in _old_key_material()]


def encrypt(value: str) -> str:
    return PREFIX + _current().encrypt(value.encode()).decode()


def _token(value: str) -> bytes:
    if not value.startswith(PREFIX):
        raise SecretError("not an encrypted value")
    return value[len(PREFIX) :].encode()


def _open(token: str) -> tuple[str, bool]:
    """``(clear text, whether under the current key)``; SecretError when no key we have reads it."""
    raw = _token(token)
    try:
        return _current().decrypt(raw).decode(), True
    except InvalidToken:
        pass
    for fernet in _old():  # a rotation under way: values not yet re-encrypted
        try:
            return fernet.decrypt(raw).decode(), False
        except InvalidToken:
            continue
    raise SecretError("cannot decrypt: ABONENT_FIELD_KEY or SECRET_KEY changed since it was stored")


def decrypt(token: str) -> str:
    """The clear text of ``token``, under the current key or, failing that, an old one."""
    return _open(token)[0] if token else ""


class KeyState:
    CURRENT = "current"  # already under the current key
    OLD = "old"  # under one of ABONENT_FIELD_KEY_OLD: to be re-encrypted
    UNREADABLE = "unreadable"  # under no key we have, or not an encrypted value at all


def key_state(token: str) -> str:
    """Which key ``token`` is under. The empty value (no password) counts as current: nothing to re-encrypt."""
    if not token:
        return KeyState.CURRENT
    try:
        _clear, current = _open(token)
    except SecretError:
        return KeyState.UNREADABLE
    return KeyState.CURRENT if current else KeyState.OLD


def reencrypt(token: str) -> str:
    """``token`` encrypted under the current key (decrypted under whichever key reads it)."""
    return encrypt(decrypt(token)) if token else token


@dataclass(frozen=True)
class EncryptedField:
    """A text column holding ``encrypt()`` output. ``on_rotated(pks)`` is told which rows a rotation rewrote
    (the network app reloads those subscribers' RADIUS policy, whose in-memory copies hold the old value)."""

    model: str  # "app_label.ModelName"
    field: str
    on_rotated: Callable[[list[int]], None] | None = None


ENCRYPTED_FIELDS: list[EncryptedField] = []


def register_field(model: str, field: str, on_rotated: Callable[[list[int]], None] | None = None) -> None:
    """Declare an encrypted column (from the owning app's ``AppConfig.ready``)."""
    entry = EncryptedField(model, field, on_rotated)
    if entry not in ENCRYPTED_FIELDS:
        ENCRYPTED_FIELDS.append(entry)


# --- files signed with the field key -------------------------------------------------------------------------


def _mac_key(key_material: str) -> bytes:
    return hashlib.sha256(b"abonent-file-mac:" + key_material.encode()).digest()


def sign(data: bytes) -> str:
    """An HMAC-SHA256 of ``data`` under the current field key: a file we wrote, whole, not one planted or torn."""
    return hmac.new(_mac_key(_key_material()), data, hashlib.sha256).hexdigest()


def signed(data: bytes, mac: str) -> bool:
    """Whether ``mac`` is ``sign(data)`` under the current key or an old one (a file from before a rotation)."""
    return any(
        hmac.compare_digest(hmac.new(_mac_key(key), data, hashlib.sha256).hexdigest(), mac)
        for key in [_key_material(), *_old_key_material()]
    )
