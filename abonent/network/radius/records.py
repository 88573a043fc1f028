"""Reading an Accounting-Request into an ``AcctRecord``: the bounds every record is held to."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import struct

from abonent.core import clock

from .. import accounting
from .. import policy as policy_mod
from ..accounting import AcctRecord
from .codec import DICTIONARY, Request
from .nas import NasEntry

logger = logging.getLogger("abonent.radius")

MAX_ACCT_DELAY = 3600  # seconds of Acct-Delay-Time believed
MAX_SESSION_SECONDS = 10 * 366 * 86400  # Acct-Session-Time believed: ten years


def attr_text(raw: list[bytes] | None) -> str:
    if not raw:
        return ""
    # PostgreSQL refuses NUL in text; a NAS (or an attacker) sending one must not stop our writes.
    return raw[0].decode("utf-8", "replace").replace("\x00", "\ufffd")


def attr_int(raw: list[bytes] | None) -> int:
    if not raw:
        return 0
    return struct.unpack("!I", raw[0])[0]


def attr_counter(gigawords: list[bytes] | None, octets: list[bytes] | None) -> int:
    """A 64-bit total: Gigawords count the 2^32 wraps of the octet counter. Above 2^63 − 1 (8 EiB, a value no
    NAS counts) it does not fit the database's bigint: the record is malformed and dropped, alone, rather than
    failing the batch it would be written with."""
    wraps = attr_int(gigawords)
    if wraps >= 1 << 31:
        raise ValueError(f"Gigawords {wraps}: a counter of 2^63 octets or more")
    return (wraps << 32) | attr_int(octets)


def acct_record(request: Request, nas: NasEntry, addr, store: policy_mod.PolicyStore) -> AcctRecord | None:
    """The record an Accounting-Request stands for; None for a status that is not recorded (Tunnel-*, Failed).
    Raises ValueError (or struct.error) for one that is malformed: it is dropped."""
    raw_get = dict.get
    status = attr_int(raw_get(request.attributes, 40))
    if status not in (1, 2, 3, 7, 8):
        return None
    # Server time minus the NAS's own delay: a NAS with a wrong clock cannot move sessions in time. A delay
    # over an hour is taken as an hour (a NAS that held a record longer has lost the moment anyway).
    delay = min(attr_int(raw_get(request.attributes, 41)), MAX_ACCT_DELAY)
    event_time = clock.now() - dt.timedelta(seconds=delay)
    if status in (7, 8):
        return AcctRecord(status=status, nas_id=nas.id, event_time=event_time)
    username = attr_text(raw_get(request.attributes, 1))
    session_id = attr_text(raw_get(request.attributes, 44))
    if not session_id:
        raise ValueError("Accounting-Request without Acct-Session-Id")
    nas_ip = raw_get(request.attributes, 4)
    nas_ip_text = socket.inet_ntoa(nas_ip[0]) if nas_ip and len(nas_ip[0]) == 4 else addr[0]
    port = raw_get(request.attributes, 5)
    unique = accounting.unique_session_id(
        username,
        session_id,
        nas_ip_text,
        attr_text(raw_get(request.attributes, 32)),
        attr_text(raw_get(request.attributes, 87)),
        str(attr_int(port)) if port else "",
    )
    calling = attr_text(raw_get(request.attributes, 31))
    entry = store.accounting_login(raw_get(request.attributes, 25), username, calling)
    login_id, subscriber_id = (entry.login_id, entry.subscriber_id) if entry is not None else (None, None)
    framed = raw_get(request.attributes, 8)
    return AcctRecord(
        status=status,
        nas_id=nas.id,
        event_time=event_time,
        unique_id=unique,
        acct_session_id=session_id[:253],
        username=username[:253],
        login_id=login_id,
        subscriber_id=subscriber_id,
        framed_ip=socket.inet_ntoa(framed[0]) if framed and len(framed[0]) == 4 else None,
        calling_station_id=calling[:253],
        nas_port_id=attr_text(raw_get(request.attributes, 87))[:253],
        # The start is this record's time minus the session time: bounded, so a garbage value cannot date a
        # session to the 19th century.
        session_time=min(attr_int(raw_get(request.attributes, 46)), MAX_SESSION_SECONDS),
        input_octets=attr_counter(raw_get(request.attributes, 52), raw_get(request.attributes, 42)),
        output_octets=attr_counter(raw_get(request.attributes, 53), raw_get(request.attributes, 43)),
        # Counters without Gigawords: 32 bits that wrap (accounting.grown_counter).
        counters_32bit=(42 in request.attributes or 43 in request.attributes)
        and 52 not in request.attributes
        and 53 not in request.attributes,
        terminate_cause=terminate_cause_name(raw_get(request.attributes, 49)),
    )


def terminate_cause_name(raw: list[bytes] | None) -> str:
    if not raw:
        return ""
    try:
        return DICTIONARY.attributes["Acct-Terminate-Cause"].values.GetBackward(raw[0])
    except KeyError:
        return str(struct.unpack("!I", raw[0])[0])
