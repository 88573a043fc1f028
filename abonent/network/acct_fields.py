"""One reading of an Accounting-Request, for ``abonent radius`` and FreeRADIUS's rlm_rest endpoint alike.

Each adapter only extracts what the request carries into ``AcctFields`` (``radius.records`` from the packet's
attributes, ``api`` from rlm_rest's JSON); ``read_record`` holds every bound and check in one place and makes
the ``AcctRecord``. A record no NAS could send raises ``MalformedRecord``: abonent radius drops it (counted as
``dropped_malformed``), the REST endpoint answers 422 naming the attribute. The two paths used to keep a copy
each, and the copies drifted (the REST one lacked the session-time bound and the Gigawords check for a while).

No packet code here: the REST endpoint runs in the web process, which has no use for the RADIUS server's.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from abonent.core import clock

from . import accounting
from .accounting import AcctRecord

MAX_ACCT_DELAY = 3600  # seconds of Acct-Delay-Time believed
MAX_SESSION_SECONDS = 10 * 366 * 86400  # Acct-Session-Time believed: ten years
TEXT_LIMIT = 253  # a RADIUS attribute's longest value, and the columns' width
CAUSE_LIMIT = 64  # Session.terminate_cause
RECORDED_STATUSES = (1, 2, 3, 7, 8)  # Start, Stop, Interim-Update, Accounting-On, Accounting-Off
NAS_EVENTS = (7, 8)  # Accounting-On/Off: about the NAS, no session


class Invalid:
    """An attribute that is present but not a value of its type (a four-byte integer of three bytes, a JSON
    string of letters where a number belongs). Checked only where the record uses it, so a bad Acct-Session-Time
    on an Accounting-On is as harmless as it was."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID = Invalid()
Number = int | Invalid | None  # None: the attribute is absent


class MalformedRecord(ValueError):
    """A record no NAS sends. ``attribute``: the one at fault; ``code``: ``attribute_invalid`` or
    ``acct_session_id_missing``. A ValueError, which abonent radius's handler counts as malformed."""

    def __init__(self, attribute: str, code: str = "attribute_invalid") -> None:
        super().__init__(f"{attribute}: {code}")
        self.attribute = attribute
        self.code = code


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each field through object.__setattr__, dear per record
class AcctFields:
    """What an Accounting-Request carries, extracted and not yet checked: text as received (NUL included),
    numbers as the attribute gave them (negative or huge too, from JSON), None where absent."""

    status: Number
    delay: Number = None
    username: str = ""
    session_id: str = ""
    nas_ip: str | None = None  # NAS-IP-Address as text
    source_ip: str = ""  # where the request came from: the NAS's address when NAS-IP-Address is missing or bad
    nas_identifier: str = ""
    nas_port_id: str = ""
    nas_port: Number = None
    calling_station_id: str = ""
    classes: Sequence[bytes] = ()
    framed_ip: str | None = None
    session_time: Number = None
    input_octets: Number = None
    output_octets: Number = None
    input_gigawords: Number = None
    output_gigawords: Number = None
    terminate_cause: int | str | Invalid | None = None  # the number, or FreeRADIUS's name of it


# classes, username, calling station -> the login entry (``policy.LoginPolicy``) or None
LoginFinder = Callable[[Sequence[bytes], str, str], object | None]


def read_record(fields: AcctFields, *, nas_id: int, find_login: LoginFinder) -> AcctRecord | None:
    """The record ``fields`` stand for; None for a status that is not recorded (Tunnel-*, Failed, unknown).
    Raises ``MalformedRecord``. ``find_login`` binds the session to a login, called only for a record that
    passed every check."""
    status = _number(fields.status, "Acct-Status-Type")
    if status not in RECORDED_STATUSES:
        return None
    # Server time minus the NAS's own delay: a NAS with a wrong clock cannot move sessions in time. A delay
    # over an hour is taken as an hour (a NAS that held a record longer has lost the moment anyway); a negative
    # one (JSON can say so, four bytes cannot) as none: it would date the record in the future.
    delay = _bounded(fields.delay, "Acct-Delay-Time", MAX_ACCT_DELAY)
    event_time = clock.now() - dt.timedelta(seconds=delay)
    if status in NAS_EVENTS:
        return AcctRecord(status=status, nas_id=nas_id, event_time=event_time)
    username, session_id = _text(fields.username), _text(fields.session_id)
    if not session_id:
        raise MalformedRecord("Acct-Session-Id", "acct_session_id_missing")
    nas_port = _number(fields.nas_port, "NAS-Port")
    if nas_port is not None and not 0 <= nas_port < 1 << 32:
        raise MalformedRecord("NAS-Port")
    # Session time bounded: the start is this record's time minus it, and a garbage value must not date a
    # session to the 19th century (nor overflow the date).
    session_time = _bounded(fields.session_time, "Acct-Session-Time", MAX_SESSION_SECONDS)
    input_octets = _counter(fields.input_gigawords, fields.input_octets, "Acct-Input")
    output_octets = _counter(fields.output_gigawords, fields.output_octets, "Acct-Output")
    terminate_cause = _terminate_cause(fields.terminate_cause)
    nas_port_id, calling = _text(fields.nas_port_id), _text(fields.calling_station_id)
    unique = accounting.unique_session_id(
        username,
        session_id,
        _ipv4(fields.nas_ip) or fields.source_ip,
        _text(fields.nas_identifier),
        nas_port_id,
        "" if nas_port is None else str(nas_port),
    )
    entry = find_login(fields.classes, username, calling)
    return AcctRecord(
        status=status,
        nas_id=nas_id,
        event_time=event_time,
        unique_id=unique,
        acct_session_id=session_id[:TEXT_LIMIT],
        username=username[:TEXT_LIMIT],
        login_id=entry.login_id if entry is not None else None,
        subscriber_id=entry.subscriber_id if entry is not None else None,
        framed_ip=_ipv4(fields.framed_ip),
        calling_station_id=calling[:TEXT_LIMIT],
        nas_port_id=nas_port_id[:TEXT_LIMIT],
        session_time=session_time,
        input_octets=input_octets,
        output_octets=output_octets,
        # Octets without Gigawords: a NAS counting in 32 bits, which wrap (accounting.grown_counter).
        counters_32bit=(fields.input_octets is not None or fields.output_octets is not None)
        and fields.input_gigawords is None
        and fields.output_gigawords is None,
        terminate_cause=terminate_cause,
    )


def _text(value: str) -> str:
    # PostgreSQL refuses NUL in text; a NAS (or an attacker) sending one must not stop our writes.
    return value.replace("\x00", "\ufffd")


def _number(value: Number, attribute: str) -> int | None:
    if isinstance(value, Invalid):
        raise MalformedRecord(attribute)
    return value


def _bounded(value: Number, attribute: str, limit: int) -> int:
    number = _number(value, attribute)
    return max(0, min(number or 0, limit))


def _counter(gigawords: Number, octets: Number, prefix: str) -> int:
    """A 64-bit total: Gigawords count the 2^32 wraps of the four-byte octet counter. A total of 2^63 octets or
    more (Gigawords ≥ 2^31, a value no NAS counts) does not fit the database's bigint: the record is malformed,
    dropped alone rather than failing the batch it would be written with."""
    wraps = _number(gigawords, f"{prefix}-Gigawords") or 0
    count = _number(octets, f"{prefix}-Octets") or 0
    if not 0 <= wraps < 1 << 31:
        raise MalformedRecord(f"{prefix}-Gigawords")
    if not 0 <= count < 1 << 32:
        raise MalformedRecord(f"{prefix}-Octets")
    return (wraps << 32) | count


@functools.lru_cache(maxsize=65_536)  # a NAS's address on every record, a session's on each of its records
def _ipv4(value: str | None) -> str | None:
    """The address in its canonical dotted form, or None. inet_pton and inet_ntoa first: abonent radius's
    addresses (from four bytes) are canonical already, and ipaddress's parser cost about 5 µs an address, a
    fifth of a record's handling; anything else is judged by ipaddress as before."""
    if not value:
        return None
    try:
        if socket.inet_ntoa(socket.inet_pton(socket.AF_INET, value)) == value:
            return value
    except OSError:
        pass
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        return None


def _terminate_cause(value: int | str | Invalid | None) -> str:
    """The cause's name (``User-Request``); a number the dictionary does not name, as digits."""
    if value is None:
        return ""
    if isinstance(value, str):  # FreeRADIUS sends the name it decoded
        return _text(value)[:CAUSE_LIMIT]
    number = _number(value, "Acct-Terminate-Cause")
    if not 0 <= number < 1 << 32:
        raise MalformedRecord("Acct-Terminate-Cause")
    return TERMINATE_CAUSES.get(number, str(number))


def _terminate_causes() -> dict[int, str]:
    """RFC 2866 §5.10's names, from our dictionary's VALUE lines (a data file: no pyrad here)."""
    text = (Path(__file__).parent / "radius" / "dictionary").read_text(encoding="utf-8")
    pattern = re.compile(r"^VALUE\s+Acct-Terminate-Cause\s+(\S+)\s+(\d+)\s*$", re.MULTILINE)
    return {int(number): name for name, number in pattern.findall(text)}


TERMINATE_CAUSES = _terminate_causes()
