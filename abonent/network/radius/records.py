"""Reading an Accounting-Request into an ``AcctRecord``: the attributes taken out of the packet, the record made
and checked by ``acct_fields.read_record``, which FreeRADIUS's rlm_rest endpoint uses too."""

from __future__ import annotations

import functools
import socket
import struct

from .. import policy as policy_mod
from ..accounting import AcctRecord
from ..acct_fields import INVALID, MAX_ACCT_DELAY, MAX_SESSION_SECONDS, AcctFields, Number, read_record
from .codec import Request
from .nas import NasEntry

__all__ = ["MAX_ACCT_DELAY", "MAX_SESSION_SECONDS", "acct_record", "attr_text"]


def attr_text(raw: list[bytes] | None) -> str:
    if not raw:
        return ""
    # PostgreSQL refuses NUL in text; a NAS (or an attacker) sending one must not stop our writes.
    return raw[0].decode("utf-8", "replace").replace("\x00", "\ufffd")


def _number(raw: list[bytes] | None) -> Number:
    """A four-byte integer; INVALID for another length (the record is malformed if it needs it)."""
    if not raw:
        return None
    return struct.unpack("!I", raw[0])[0] if len(raw[0]) == 4 else INVALID


def _address(raw: list[bytes] | None) -> str | None:
    return _dotted(raw[0]) if raw and len(raw[0]) == 4 else None


@functools.lru_cache(maxsize=65_536)  # the same NAS and session addresses record after record
def _dotted(packed: bytes) -> str:
    return socket.inet_ntoa(packed)


def acct_record(request: Request, nas: NasEntry, addr, store: policy_mod.PolicyStore) -> AcctRecord | None:
    """The record an Accounting-Request stands for; None for a status that is not recorded (Tunnel-*, Failed).
    Raises ``acct_fields.MalformedRecord`` (a ValueError) for one that is malformed: it is dropped. The first
    of a repeated attribute is the one read."""
    attributes = request.attributes
    get = attributes.get
    fields = AcctFields(
        status=_number(get(40)),
        delay=_number(get(41)),
        username=_decoded(get(1)),
        session_id=_decoded(get(44)),
        nas_ip=_address(get(4)),
        source_ip=addr[0],
        nas_identifier=_decoded(get(32)),
        nas_port_id=_decoded(get(87)),
        nas_port=_number(get(5)),
        calling_station_id=_decoded(get(31)),
        classes=get(25) or (),
        framed_ip=_address(get(8)),
        session_time=_number(get(46)),
        input_octets=_number(get(42)),
        output_octets=_number(get(43)),
        input_gigawords=_number(get(52)),
        output_gigawords=_number(get(53)),
        terminate_cause=_number(get(49)),
    )
    return read_record(fields, nas_id=nas.id, find_login=store.accounting_login)


def _decoded(raw: list[bytes] | None) -> str:
    """The text as sent (NUL and all: ``acct_fields`` replaces it), invalid UTF-8 as U+FFFD."""
    return raw[0].decode("utf-8", "replace") if raw else ""
