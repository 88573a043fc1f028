"""``abonent radius``: the asyncio UDP server for authentication (1812) and accounting (1813).

One event loop per process. Access-Requests are answered from the in-memory policy (``network.policy``)
without a database round trip. Accounting-Requests are queued and written in batches by one database
thread; each is answered only after its batch commits, or after it is appended and fsynced to the disk
spool when the database is unreachable (replayed in order when it is back). Every packet is checked before
decoding: unknown NAS, wrong lengths, malformed attributes, bad authenticators and a missing
Message-Authenticator are dropped with a counter and a log line, never answered and never written.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import os
import secrets as pysecrets
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from abonent.core import clock
from abonent.core.secrets import SecretError

from .. import accounting, selectors
from .. import policy as policy_mod
from ..accounting import AcctRecord
from ..models import AuthAttempt, AuthOutcome, LoginKind, Nas, RejectReason
from ..policy import CLASS_PREFIX, NAS_MANAGEMENT_SERVICE_TYPES, option82_key
from ..vendors import profile_for
from ..vendors.base import DebtorSettings
from . import auth, codec
from .codec import DICTIONARY, MalformedPacket, Request, parse_packet
from .dbpipe import BatchPipe

logger = logging.getLogger("abonent.radius")

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT = 1, 2, 3
ACCOUNTING_REQUEST, ACCOUNTING_RESPONSE = 4, 5
STATUS_SERVER = 12
MAX_ACCT_DELAY = 3600  # seconds of Acct-Delay-Time believed
MAX_SESSION_SECONDS = 10 * 366 * 86400  # Acct-Session-Time believed: ten years
PPP = LOGIN_USER = (1).to_bytes(4, "big")
MS_VENDOR = 311
MS_CHAP_RESPONSE, MS_CHAP_CHALLENGE, MS_CHAP2_RESPONSE = (MS_VENDOR, 1), (MS_VENDOR, 11), (MS_VENDOR, 25)
AGENT_CIRCUIT_ID, AGENT_REMOTE_ID = (3561, 1), (3561, 2)  # RFC 4679, option 82 as a BNG sends it
NAS_MANAGEMENT_SERVICES = frozenset(value.to_bytes(4, "big") for value in NAS_MANAGEMENT_SERVICE_TYPES)
RECV_BUFFER = 8 * 1024 * 1024
# RFC 5080 §2.2.2: a reply is kept and replayed for a retransmission of the same request. NAS retransmit
# for 3–30 s; at the 10,000 requests/s this server is built for that is up to 300,000 entries.
DEDUP_SECONDS = 30.0
DEDUP_MAX_ENTRIES = 300_000


class Stats:
    """Counters per NAS and in total, read by the monitoring snapshot."""

    def __init__(self) -> None:
        self.counters: collections.Counter[tuple[str, str]] = collections.Counter()
        self.last_packet: dict[str, float] = {}

    def inc(self, nas: str, name: str, n: int = 1) -> None:
        self.counters[(nas, name)] += n

    def total(self, name: str) -> int:
        return sum(v for (_nas, key), v in self.counters.items() if key == name)


class DedupCache:
    """Replies by (source address, port, identifier, authenticator), kept for ``lifetime`` seconds.

    Entries go in in time order, so expiry only ever looks at the oldest ones; it runs every 256 insertions
    rather than on each (it was 15 % of the time per request when it ran on each, measured with py-spy).
    """

    PENDING = b""

    def __init__(self, lifetime: float = DEDUP_SECONDS, max_entries: int = DEDUP_MAX_ENTRIES) -> None:
        self.lifetime = lifetime
        self.max_entries = max_entries
        self._entries: dict[tuple, tuple[float, bytes]] = {}
        self._puts = 0

    def get(self, key: tuple) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: tuple, reply: bytes) -> None:
        now = time.monotonic()
        self._entries[key] = (now + self.lifetime, reply)
        self._puts += 1
        if self._puts & 255 == 0:
            self._expire(now)

    def _expire(self, now: float) -> None:
        entries = self._entries
        excess = len(entries) - self.max_entries
        stale = []
        for key, (expires, _reply) in entries.items():
            if expires >= now and excess <= 0:
                break
            stale.append(key)
            excess -= 1
        for key in stale:
            del entries[key]

    def forget(self, key: tuple) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


ACCOUNTING_COUNTERS = {
    1: "accounting_start",
    2: "accounting_stop",
    3: "accounting_interim",
    7: "accounting_on",
    8: "accounting_off",
}


class PendingAnswer:
    """The answer to one Accounting-Request, sent once its record is committed (or spooled)."""

    __slots__ = ("addr", "dedup", "key", "reply", "send")

    def __init__(self, dedup: DedupCache, key: tuple, reply: bytes, send, addr) -> None:
        self.dedup, self.key, self.reply, self.send, self.addr = dedup, key, reply, send, addr

    def __call__(self) -> None:
        self.dedup.put(self.key, self.reply)
        self.send(self.reply, self.addr)

    def forget(self) -> None:
        """Neither written nor spooled: let the NAS's retransmission through instead of swallowing it."""
        self.dedup.forget(self.key)


@dataclass
class NasEntry:
    """A NAS as the server keeps it: the decrypted secret and the rendered reply settings."""

    id: int
    name: str
    secret: bytes
    vendor: str
    interim_interval: int
    require_ma: bool
    debtor: DebtorSettings

    @classmethod
    def from_model(cls, nas: Nas) -> NasEntry:
        return cls(
            id=nas.pk,
            name=nas.name,
            secret=nas.secret.encode(),
            vendor=nas.vendor,
            interim_interval=nas.interim_interval,
            require_ma=nas.require_message_authenticator,
            debtor=DebtorSettings(address_list=nas.debtor_address_list, pool=nas.debtor_pool),
        )


def _text(raw: list[bytes] | None) -> str:
    if not raw:
        return ""
    # PostgreSQL refuses NUL in text; a NAS (or an attacker) sending one must not stop our writes.
    return raw[0].decode("utf-8", "replace").replace("\x00", "\ufffd")


def _int(raw: list[bytes] | None) -> int:
    if not raw:
        return 0
    return struct.unpack("!I", raw[0])[0]


def _octets(gigawords: list[bytes] | None, octets: list[bytes] | None) -> int:
    """A 64-bit total: Gigawords count the 2^32 wraps of the octet counter. Above 2^63 − 1 (8 EiB, a value no
    NAS counts) it does not fit the database's bigint: the record is malformed and dropped, alone, rather than
    failing the batch it would be written with."""
    wraps = _int(gigawords)
    if wraps >= 1 << 31:
        raise ValueError(f"Gigawords {wraps}: a counter of 2^63 octets or more")
    return (wraps << 32) | _int(octets)


@dataclass
class RadiusServer:
    """Packet handling shared by the auth and accounting sockets of one process."""

    store: policy_mod.PolicyStore
    nas_table: dict[str, NasEntry] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    auth_dedup: DedupCache = field(default_factory=DedupCache)
    acct_dedup: DedupCache = field(default_factory=DedupCache)
    writer: AccountingWriter | None = None
    attempts: list[AuthAttempt] = field(default_factory=list)
    _unknown_logged: dict[str, float] = field(default_factory=dict)
    _bodies: dict[tuple, bytes] = field(default_factory=dict)
    _now_second: int = -1
    # Class = "abonent:<login>:<process tag><serial>": unique per accept without a random draw per request.
    _class_tag: str = field(default_factory=lambda: pysecrets.token_hex(4) + "-")
    _class_serial: int = 0
    _now_local: dt.datetime | None = None

    # --- common checks -----------------------------------------------------------------------------------

    def _drop(self, nas: str, reason: str, addr, detail: str = "") -> None:
        self.stats.inc(nas, "dropped_" + reason)
        # One line per source and reason per minute: a flood must not become a flood of log lines.
        key = f"{addr[0]}:{reason}"
        now = time.monotonic()
        if len(self._unknown_logged) > 10_000:  # spoofed sources must not grow it without end
            self._unknown_logged.clear()
        if now - self._unknown_logged.get(key, -120.0) >= 60.0:
            self._unknown_logged[key] = now
            logger.warning("radius drop: %s from %s:%s (nas %s) %s", reason, addr[0], addr[1], nas, detail)

    def _nas(self, data: bytes, addr) -> tuple[NasEntry | None, Request | None]:
        host = addr[0]
        if host.startswith("::ffff:"):  # an IPv4 NAS on a dual-stack socket
            host = host[7:]
        nas = self.nas_table.get(host)
        if nas is None:
            self._drop("unknown", "unknown_nas", addr)
            return None, None
        self.stats.last_packet[nas.name] = time.time()
        try:
            return nas, parse_packet(data)
        except MalformedPacket as exc:
            self._drop(nas.name, exc.reason, addr, str(exc))
            return None, None

    # --- authentication ------------------------------------------------------------------------------------

    def handle_auth(self, data: bytes, addr) -> bytes | None:
        nas, request = self._nas(data, addr)
        if nas is None:
            return None
        code = request.code
        if code not in (ACCESS_REQUEST, STATUS_SERVER):
            self._drop(nas.name, "unexpected_code", addr, f"code {code} on the auth port")
            return None
        key = (addr, data[1], data[4:20])
        cached = self.auth_dedup.get(key)
        if cached is not None:
            self.stats.inc(nas.name, "duplicates")
            return cached
        if not self._message_authenticator_ok(request, nas, addr):
            return None
        if code == STATUS_SERVER:  # RFC 5997: "are you alive?", answered with Access-Accept
            raw = codec.finish_reply(ACCESS_ACCEPT, request.id, request.authenticator, nas.secret, b"")
            self.auth_dedup.put(key, raw)
            return raw
        try:
            raw = self._authorize(request, nas)
        except MalformedPacket as exc:  # a request padded with Proxy-State would make our reply oversized
            self._drop(nas.name, exc.reason, addr, str(exc))
            return None
        except (struct.error, UnicodeError, ValueError, KeyError, IndexError) as exc:
            self._drop(nas.name, "malformed", addr, str(exc))
            return None
        self.auth_dedup.put(key, raw)
        return raw

    def _message_authenticator_ok(self, request: Request, nas: NasEntry, addr) -> bool:
        if request.ma_at:
            if not codec.message_authenticator_ok(request.raw, request.ma_at, nas.secret):
                # Also what a wrong shared secret looks like.
                self._drop(nas.name, "bad_message_authenticator", addr, "wrong shared secret?")
                return False
            return True
        if 33 in request:
            self._drop(nas.name, "proxy_state_without_ma", addr, "BlastRADIUS (CVE-2024-3596)")
            return False
        if request.code == STATUS_SERVER:  # RFC 5997 §3: its authenticator is random, only MA proves the secret
            self._drop(nas.name, "missing_message_authenticator", addr, "Status-Server (RFC 5997)")
            return False
        if nas.require_ma and request.code == ACCESS_REQUEST:
            self._drop(nas.name, "missing_message_authenticator", addr, "BlastRADIUS (CVE-2024-3596)")
            return False
        return True

    def _authorize(self, request: Request, nas: NasEntry) -> bytes:
        raw_get = dict.get
        attributes = request.attributes
        codec.check_access_request(attributes)
        username = _text(raw_get(attributes, 1))
        calling = _text(raw_get(attributes, 31))
        option82 = option82_key(
            (raw_get(attributes, 245) or [b""])[0],
            (raw_get(attributes, AGENT_CIRCUIT_ID) or [b""])[0],
            (raw_get(attributes, AGENT_REMOTE_ID) or [b""])[0],
        )
        # Framed-Protocol = PPP, Service-Type = Login-User (a hotspot page): the User-Name was typed (find()).
        ppp = raw_get(attributes, 7) == [PPP]
        hotspot = raw_get(attributes, 6) == [LOGIN_USER]
        entry = self.store.find(username, calling, option82, ppp=ppp, hotspot=hotspot)
        mschap_success = None
        reason = ""
        if entry is None:
            reason = RejectReason.UNKNOWN_LOGIN
        elif any(value in NAS_MANAGEMENT_SERVICES for value in raw_get(attributes, 6) or ()):
            reason = RejectReason.NAS_MANAGEMENT  # before the password: the answer tells nothing about it
        elif entry.kind in (LoginKind.PPPOE, LoginKind.HOTSPOT):
            try:
                password = self.store.password_of(entry)
            except SecretError:
                # Stored under another ABONENT_FIELD_KEY: nothing can match it. Loud, because every such
                # subscriber is locked out until the key is put back.
                logger.error(
                    "radius: the password of login %s cannot be decrypted (field key changed?)", entry.login_id
                )
                password = None
            if password is None:
                ok = False
            elif 2 in attributes:
                plain = codec.decrypt_user_password(attributes[2][0], nas.secret, request.authenticator)
                ok = auth.check_pap(password, plain)
            elif 3 in attributes:
                challenge = (raw_get(attributes, 60) or [request.authenticator])[0]
                ok = auth.check_chap(password, raw_get(attributes, 3)[0], challenge)
            elif MS_CHAP2_RESPONSE in attributes:
                challenge = (raw_get(attributes, MS_CHAP_CHALLENGE) or [b""])[0]
                mschap_success = auth.check_mschap2(
                    password, username, challenge, raw_get(attributes, MS_CHAP2_RESPONSE)[0]
                )
                ok = mschap_success is not None
            elif MS_CHAP_RESPONSE in attributes:
                challenge = (raw_get(attributes, MS_CHAP_CHALLENGE) or [b""])[0]
                ok = auth.check_mschap1(password, challenge, raw_get(attributes, MS_CHAP_RESPONSE)[0])
            else:
                ok = False
                reason = RejectReason.UNSUPPORTED_AUTH
            if not ok and not reason:
                reason = RejectReason.BAD_PASSWORD
        decision = None
        if not reason:
            decision = self.store.decide(entry, self._local_now())
            reason = decision.reason
        # Proxy-State is returned unmodified and in order (RFC 2865 §5.33).
        tail = b"".join(codec.raw_attribute(33, v) for v in raw_get(attributes, 33) or ())
        if reason:
            self.stats.inc(nas.name, "rejects_" + str(reason))
            self._attempt(nas, username, entry, AuthOutcome.REJECT, reason, calling)
            body = tail
            response = raw_get(attributes, MS_CHAP2_RESPONSE)
            if response and response[0]:
                # RFC 2759 §6: the client shows "error 691" (authentication failure) rather than a bare failure;
                # R=0: retrying with the same credentials will not help.
                challenge = (raw_get(attributes, MS_CHAP_CHALLENGE) or [b""])[0].hex().upper()
                error = response[0][:1] + f"E=691 R=0 C={challenge} V=3 M=Authentication failure".encode()
                body = codec.vendor_attribute(MS_VENDOR, 2, error) + tail
            return codec.finish_reply(ACCESS_REJECT, request.id, request.authenticator, nas.secret, body)
        body = self._accept_body(nas, entry, decision)
        self._class_serial += 1
        body += codec.raw_attribute(
            25, CLASS_PREFIX + f"{entry.login_id}:{self._class_tag}{self._class_serial:x}".encode()
        )
        if mschap_success is not None:
            body += codec.encode_attributes([("MS-CHAP2-Success", mschap_success)])
        if decision.restricted:
            self.stats.inc(nas.name, "accepts_restricted")
            self._attempt(nas, username, entry, AuthOutcome.RESTRICTED, "", calling)
        else:
            self.stats.inc(nas.name, "accepts")
        return codec.finish_reply(ACCESS_ACCEPT, request.id, request.authenticator, nas.secret, body + tail)

    def _accept_body(self, nas: NasEntry, entry, decision) -> bytes:
        """The encoded attributes every accept with the same settings shares, encoded once by pyrad."""
        key = (
            nas.id,
            nas.vendor,
            nas.interim_interval,
            nas.debtor,
            entry.static_ip,
            entry.pool,
            decision.speed,
            decision.restricted,
            decision.session_timeout,
        )
        body = self._bodies.get(key)
        if body is not None:
            return body
        profile = profile_for(nas.vendor)
        pairs = [("Session-Timeout", decision.session_timeout), ("Acct-Interim-Interval", nas.interim_interval)]
        # A debtor goes to the NAS's debtor pool when it has one, from a static address too: the NAS gives a
        # Framed-IP-Address precedence over a pool, and the redirect lives on the pool's addresses.
        if not (decision.restricted and nas.debtor.pool):
            if entry.static_ip:
                pairs.append(("Framed-IP-Address", entry.static_ip))
            elif entry.pool:
                pairs.append(("Framed-Pool", entry.pool))
        pairs += profile.speed(decision.speed)
        if decision.restricted:
            pairs += profile.debtor(nas.debtor)
        body = codec.encode_attributes(pairs)
        if len(self._bodies) > 10_000:  # static IPs make keys unique; keep the cache bounded
            self._bodies.clear()
        self._bodies[key] = body
        return body

    def _local_now(self) -> dt.datetime:
        """Local time, recomputed once a second: the time zone conversion is dear at this rate."""
        second = int(time.time())
        if second != self._now_second:
            self._now_second = second
            self._now_local = timezone.localtime(clock.now())
        return self._now_local

    def _attempt(self, nas: NasEntry, username: str, entry, outcome: str, reason: str, calling: str) -> None:
        if len(self.attempts) < 100_000:  # bounded if the database stays away
            self.attempts.append(
                AuthAttempt(
                    created_at=clock.now(),
                    nas_id=nas.id,
                    username=username[:253],
                    subscriber_id=entry.subscriber_id if entry else None,
                    outcome=outcome,
                    reason=reason,
                    calling_station_id=calling[:253],
                )
            )

    # --- accounting ----------------------------------------------------------------------------------------

    def handle_acct(self, data: bytes, addr, send) -> None:
        nas, request = self._nas(data, addr)
        if nas is None:
            return
        if data[0] == STATUS_SERVER:
            # RFC 5997 §3: answered with an Accounting-Response, only when Message-Authenticator proves the secret.
            if not request.ma_at:
                self._drop(nas.name, "missing_message_authenticator", addr, "Status-Server (RFC 5997)")
                return
            if not codec.message_authenticator_ok(request.raw, request.ma_at, nas.secret):
                self._drop(nas.name, "bad_message_authenticator", addr, "wrong shared secret?")
                return
            send(codec.finish_reply(ACCOUNTING_RESPONSE, request.id, request.authenticator, nas.secret, b""), addr)
            return
        if data[0] != ACCOUNTING_REQUEST:
            self._drop(nas.name, "unexpected_code", addr, f"code {data[0]} on the accounting port")
            return
        key = (addr, data[1], data[4:20])
        cached = self.acct_dedup.get(key)
        if cached is not None:
            self.stats.inc(nas.name, "duplicates")
            if cached:  # an empty entry: the first copy is still being written, it will be answered
                send(cached, addr)
            return
        try:
            if not codec.accounting_request_ok(request, nas.secret):
                self._drop(nas.name, "bad_authenticator", addr, "wrong shared secret?")
                return
            if request.ma_at and not codec.message_authenticator_ok(request.raw, request.ma_at, nas.secret, bytes(16)):
                self._drop(nas.name, "bad_message_authenticator", addr)
                return
            record = self._acct_record(request, nas, addr)
        except (struct.error, UnicodeError, ValueError, KeyError, IndexError) as exc:
            self._drop(nas.name, "malformed", addr, str(exc))
            return
        # Proxy-State is returned unmodified and in order (RFC 2866 §4.1 via RFC 2865 §5.33).
        states = request.get(33)
        tail = b"".join([codec.raw_attribute(33, v) for v in states]) if states else b""
        reply = codec.plain_reply(ACCOUNTING_RESPONSE, request.id, request.authenticator, nas.secret, tail)
        if record is None:
            # A status we do not record (Tunnel-*, Failed): acknowledged, or the NAS would resend it forever.
            self.acct_dedup.put(key, reply)
            send(reply, addr)
            return
        if record.login_id is not None:
            if record.status == accounting.STOP:
                self.store.session_stopped(record.login_id, record.unique_id)
            elif record.status == accounting.START:
                self.store.session_started(record.login_id, record.unique_id)
        self.acct_dedup.put(key, DedupCache.PENDING)
        self.stats.counters[(nas.name, ACCOUNTING_COUNTERS[record.status])] += 1
        self.writer.submit(record, PendingAnswer(self.acct_dedup, key, reply, send, addr))

    def _acct_record(self, request: Request, nas: NasEntry, addr) -> AcctRecord | None:
        raw_get = dict.get
        status = _int(raw_get(request.attributes, 40))
        if status not in (1, 2, 3, 7, 8):
            self.stats.inc(nas.name, "accounting_ignored")
            return None
        # Server time minus the NAS's own delay: a NAS with a wrong clock cannot move sessions in time. A delay
        # over an hour is taken as an hour (a NAS that held a record longer has lost the moment anyway).
        delay = min(_int(raw_get(request.attributes, 41)), MAX_ACCT_DELAY)
        event_time = clock.now() - dt.timedelta(seconds=delay)
        if status in (7, 8):
            return AcctRecord(status=status, nas_id=nas.id, event_time=event_time)
        username = _text(raw_get(request.attributes, 1))
        session_id = _text(raw_get(request.attributes, 44))
        if not session_id:
            raise ValueError("Accounting-Request without Acct-Session-Id")
        nas_ip = raw_get(request.attributes, 4)
        nas_ip_text = socket.inet_ntoa(nas_ip[0]) if nas_ip and len(nas_ip[0]) == 4 else addr[0]
        port = raw_get(request.attributes, 5)
        unique = accounting.unique_session_id(
            username,
            session_id,
            nas_ip_text,
            _text(raw_get(request.attributes, 32)),
            _text(raw_get(request.attributes, 87)),
            str(_int(port)) if port else "",
        )
        calling = _text(raw_get(request.attributes, 31))
        entry = self.store.accounting_login(raw_get(request.attributes, 25), username, calling)
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
            nas_port_id=_text(raw_get(request.attributes, 87))[:253],
            # The start is this record's time minus the session time: bounded, so a garbage value cannot date a
            # session to the 19th century.
            session_time=min(_int(raw_get(request.attributes, 46)), MAX_SESSION_SECONDS),
            input_octets=_octets(raw_get(request.attributes, 52), raw_get(request.attributes, 42)),
            output_octets=_octets(raw_get(request.attributes, 53), raw_get(request.attributes, 43)),
            # Counters without Gigawords: 32 bits that wrap (accounting.grown_counter).
            counters_32bit=(42 in request.attributes or 43 in request.attributes)
            and 52 not in request.attributes
            and 53 not in request.attributes,
            terminate_cause=_terminate_cause(raw_get(request.attributes, 49)),
        )


def _terminate_cause(raw: list[bytes] | None) -> str:
    if not raw:
        return ""
    try:
        return DICTIONARY.attributes["Acct-Terminate-Cause"].values.GetBackward(raw[0])
    except KeyError:
        return str(struct.unpack("!I", raw[0])[0])


class _Lane:
    """One database connection (on its own thread) writing the batches of a share of the sessions."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.pending: list[tuple[int, AcctRecord, object]] = []
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"radius-db-{index}")
        self.wake: asyncio.Event | None = None
        self.busy = False
        self.pipe: BatchPipe | None = None
        # A written batch whose answer waits for the lane's task (a failure: the batch is split or spooled).
        self.settling: tuple | None = None


class AccountingWriter:
    """Batches accounting records into database transactions; answers after commit.

    While a batch is being written, new records gather into the next one, so batches grow with the load
    and a quiet server still answers at once. There is one lane (connection) by default; with more
    (``ABONENT_RADIUS_DB_LANES``) a session always goes to the same lane, so its records stay in order and two
    writers never meet on one row. Each lane's connection (``BatchPipe``) is read from the loop's reader
    callback, and polled between accounting datagrams (``poll``), which answers the batch and sends the lane's
    next one there and then; what needs a thread (a failure: the batch is split or spooled) is settled by the
    lane's task before the lane sends anything else. The days online are recorded by the same statement.
    Accounting-On/Off is a barrier: it is written after everything received before it, and before anything
    received after it.

    If the database fails, the batch goes to the disk spool (appended and fsynced) and is answered;
    everything after it is spooled too, until the spool has been replayed in order.
    """

    def __init__(
        self, spool: Spool, stats: Stats, max_batch: int = 2000, lanes: int | None = None, use_async: bool | None = None
    ) -> None:
        self.spool = spool
        self.stats = stats
        self.max_batch = max_batch
        if lanes is None:
            # One: with its answer taken between datagrams (poll), a lane's batches are as large as the load
            # allows and PostgreSQL commits once per batch; two lanes measured 5,600/s against one's 6,000.
            lanes = int(os.environ.get("ABONENT_RADIUS_DB_LANES", 1))
        self.lanes = [_Lane(i) for i in range(lanes)]
        self.executor = self.lanes[0].executor  # spool replay runs here
        # On PostgreSQL the lanes write from the event loop itself, on psycopg's asyncio connections: a
        # batch then costs one round trip and no thread hand-off (each hand-off waited for the GIL).
        if use_async is None:
            use_async = connection.vendor == "postgresql"
        self.conninfo = self._conninfo() if use_async else None
        self._seq = 0
        self._barriers: list[tuple[int, AcctRecord, object]] = []
        self._barrier_wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._barrier_wake = asyncio.Event()
        for lane in self.lanes:
            lane.wake = asyncio.Event()
            self._tasks.append(loop.create_task(self._run_lane(lane)))
        self._tasks.append(loop.create_task(self._run_barriers()))

    def submit(self, record: AcctRecord, done) -> None:
        self._seq += 1
        if record.status in (accounting.ACCOUNTING_ON, accounting.ACCOUNTING_OFF):
            self._barriers.append((self._seq, record, done))
            self._barrier_wake.set()
            return
        lane = self.lanes[hash((record.nas_id, record.unique_id)) % len(self.lanes)]
        lane.pending.append((self._seq, record, done))
        lane.wake.set()

    @staticmethod
    def _conninfo() -> str:
        params = connection.get_connection_params()
        keep = {k: v for k, v in params.items() if k not in ("cursor_factory", "context", "prepare_threshold")}
        return psycopg.conninfo.make_conninfo(**{k: v for k, v in keep.items() if v not in (None, "")})

    @property
    def depth(self) -> int:
        return sum(len(lane.pending) for lane in self.lanes) + len(self._barriers)

    def close(self) -> None:
        """Close each lane's connection on its own thread, then stop the threads."""
        for lane in self.lanes:
            # A lambda: ``connection.close`` evaluated here would be this thread's connection.
            lane.executor.submit(lambda: connection.close()).result()
            lane.executor.shutdown(wait=True)

    def _finish(self, batch, ok: bool) -> None:
        if ok:
            for _seq, _record, done in batch:
                done()
            self.stats.inc("all", "accounting_committed", len(batch))
            self.stats.inc("all", "accounting_batches")
        else:
            for _seq, _record, done in batch:
                getattr(done, "forget", lambda: None)()

    def poll(self) -> None:
        """Answered batches taken without waiting for the loop's next turn (called between datagrams)."""
        for lane in self.lanes:
            if lane.busy and lane.pipe is not None:
                lane.pipe.poll()

    def _take(self, lane: _Lane) -> list | None:
        """The lane's next batch: what is pending, up to the first Accounting-On/Off still to be written."""
        limit = self._barriers[0][0] if self._barriers else None
        count = 0
        for seq, _record, _done in lane.pending[: self.max_batch]:
            if limit is not None and seq > limit:
                break
            count += 1
        if not count:
            return None  # everything here came after a barrier still to be written
        batch, lane.pending = lane.pending[:count], lane.pending[count:]
        return batch

    def _pump(self, lane: _Lane) -> None:
        """Send the lane's next batch down its connection. Called by the lane's task and, above all, from the
        connection's reader callback the moment a batch is answered, so PostgreSQL does not sit idle while
        the loop serves a turn's worth of datagrams first."""
        if lane.busy or lane.settling is not None or not lane.pending:
            return
        if lane.pipe is None or not lane.pipe.usable or self.spool.has_backlog():
            lane.wake.set()  # the lane's task reconnects, or keeps order behind the spool
            return
        batch = self._take(lane)
        if batch is None:
            return
        records = [r for _s, r, _d in batch]
        count = accounting.mergeable(records)
        if count < len(records):  # a 32-bit counter wraps inside the batch: the rest goes in the next one
            batch, records, lane.pending = batch[:count], records[:count], batch[count:] + lane.pending
        lane.busy = True
        started = time.perf_counter()
        try:
            lane.pipe.send(
                accounting.write_document(accounting.merge(records)),
                settings.TIME_ZONE,
                lambda error: self._written(lane, batch, started, error),
            )
        except Exception as exc:  # psycopg's, or a bug building the document: the task settles it, nothing hangs
            self._written(lane, batch, started, exc)

    def _written(self, lane: _Lane, batch, started: float, error) -> None:
        lane.busy = False
        # Time spent writing, against wall time: how close the database is to being the limit.
        self.stats.counters[("all", "accounting_write_us")] += int((time.perf_counter() - started) * 1e6)
        if error is None:
            self._pump(lane)  # the next batch first: PostgreSQL works on it while this one is answered
            self._finish(batch, True)
            if not lane.busy:
                self._barrier_wake.set()
            return
        # A failure needs a thread (to split the batch, or to spool it), so the lane's task settles the batch
        # before the lane sends anything else.
        lane.settling = (batch, error)
        lane.wake.set()

    async def _settle(self, lane: _Lane, batch, error) -> bool:
        loop = asyncio.get_running_loop()
        records = [r for _s, r, _d in batch]
        if isinstance(error, psycopg.errors.DataError):
            # One bad row, not an outage: the thread path writes the others one by one and counts it.
            return await loop.run_in_executor(lane.executor, self._write, records)
        await self._close_pipe(lane)
        logger.error("accounting: database unavailable (%s); spooling %d records", error, len(records))
        return await loop.run_in_executor(lane.executor, self._spool_now, records)

    async def _close_pipe(self, lane: _Lane) -> None:
        pipe, lane.pipe = lane.pipe, None
        if pipe is not None:
            await pipe.close()

    async def _run_lane(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await lane.wake.wait()
            lane.wake.clear()
            if lane.settling is not None:
                batch, error = lane.settling
                try:
                    ok = await self._settle(lane, batch, error)
                except Exception:  # the lane must outlive any failure: unanswered, the NAS retransmits
                    logger.exception("accounting: settling a batch of %d failed", len(batch))
                    ok = False
                lane.settling = None
                self._finish(batch, ok)
            while lane.pending and not lane.busy:
                if self.conninfo is not None and not self.spool.has_backlog():
                    if lane.pipe is None or not lane.pipe.usable:
                        await self._close_pipe(lane)
                        pipe = BatchPipe(self.conninfo)
                        try:
                            await pipe.open()
                        except Exception as exc:  # psycopg.Error, or OSError: the lane must outlive both
                            await pipe.close()
                            batch = self._take(lane)
                            if batch is None:
                                break
                            logger.error("accounting: database unavailable (%s); spooling %d records", exc, len(batch))
                            # Busy while spooling, so an Accounting-On/Off waits for this batch.
                            lane.busy = True
                            try:
                                ok = await loop.run_in_executor(
                                    lane.executor, self._spool_now, [r for _s, r, _d in batch]
                                )
                            finally:
                                lane.busy = False
                            self._finish(batch, ok)
                            continue
                        lane.pipe = pipe
                    self._pump(lane)  # the connection's callbacks carry on from here
                    break
                # The thread path: SQLite, or a spool backlog that what follows must queue behind.
                batch = self._take(lane)
                if batch is None:
                    break
                lane.busy = True
                started = time.perf_counter()
                try:
                    ok = await loop.run_in_executor(lane.executor, self._write, [r for _s, r, _d in batch])
                except Exception:  # the lane must outlive any failure: unanswered, the NAS retransmits
                    logger.exception("accounting: writing a batch of %d failed", len(batch))
                    ok = False
                finally:
                    lane.busy = False
                    self.stats.counters[("all", "accounting_write_us")] += int((time.perf_counter() - started) * 1e6)
                self._finish(batch, ok)
            if not lane.busy:
                self._barrier_wake.set()

    async def _run_barriers(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._barrier_wake.wait()
            self._barrier_wake.clear()
            while self._barriers:
                seq = self._barriers[0][0]
                if any(
                    lane.busy or lane.settling is not None or (lane.pending and lane.pending[0][0] < seq)
                    for lane in self.lanes
                ):
                    break  # a lane still has earlier records: it wakes us when it is done
                item = self._barriers[0]  # stays at the head while written: the lanes hold back what follows
                try:
                    ok = await loop.run_in_executor(self.lanes[0].executor, self._write, [item[1]])
                except Exception:
                    logger.exception("accounting: writing an Accounting-On/Off failed")
                    ok = False
                self._barriers.pop(0)
                self._finish([item], ok)
                for lane in self.lanes:
                    lane.wake.set()

    def _spool_now(self, records: list[AcctRecord]) -> bool:
        try:
            self.spool.append(records)
        except OSError:
            logger.exception("accounting: spool write failed; %d records left unanswered", len(records))
            return False  # not answered: the NAS retransmits, nothing is lost
        self.stats.inc("all", "accounting_spooled", len(records))
        return True

    async def aclose(self) -> None:
        for lane in self.lanes:
            await self._close_pipe(lane)

    def _write(self, records: list[AcctRecord]) -> bool:
        try:
            if self.spool.has_backlog():
                return self._spool_now(records)  # behind the backlog, in order
            # No close_old_connections() here: it would add a health-check round trip to every batch. A
            # broken connection raises below and is closed there; the next batch reconnects.
            accounting.write_batch_isolating(records, self._refused)
            return True
        except (DatabaseError, psycopg.Error) as exc:  # psycopg's own, from the raw cursor of the upsert
            connection.close()
            logger.error("accounting: database unavailable (%s); spooling %d records", exc, len(records))
            return self._spool_now(records)

    def _refused(self, record: AcctRecord, exc: Exception) -> None:
        self.stats.inc("all", "accounting_rejected_rows")
        logger.error("accounting: record refused by the database (%s): %r", exc, record)

    def replay(self) -> int:
        """Write the spool to the database in order (on the database thread)."""
        return self.executor.submit(self.spool.replay).result()


class Spool:
    """Accounting records kept on disk while the database is away: JSON lines, fsynced before the NAS is
    answered, replayed in order and then removed."""

    def __init__(self, directory: Path, name: str) -> None:
        self.path = directory / f"{name}.jsonl"
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def has_backlog(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def append(self, records: list[AcctRecord]) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record.to_json()) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def replay(self, chunk: int = 2000) -> int:
        """Write the spool in order, a chunk per transaction. What committed is cut from the file at once,
        so a failure part-way resumes where it stopped; a record the database refuses outright (DataError)
        is set aside in ``<name>.rejected.jsonl`` with a log line instead of blocking the spool forever."""
        if not self.has_backlog():
            return 0
        with self._lock:
            with open(self.path, encoding="utf-8") as fh:
                records = [AcctRecord.from_json(json.loads(line)) for line in fh if line.strip()]
            close_old_connections()
            done = 0
            try:
                for start in range(0, len(records), chunk):
                    part = records[start : start + chunk]
                    accounting.write_batch_isolating(part, self._set_aside)
                    done = start + len(part)
            finally:
                self._keep(records[done:])
        logger.info("accounting: replayed %d spooled records", done)
        return done

    def _keep(self, records: list[AcctRecord]) -> None:
        if not records:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record.to_json()) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def _set_aside(self, record: AcctRecord, exc: Exception) -> None:
        logger.error("accounting: spooled record refused by the database, set aside (%s): %r", exc, record)
        with open(self.path.with_suffix(".rejected.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record.to_json()) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def load_nas_table() -> dict[str, NasEntry]:
    return {ip: NasEntry.from_model(nas) for ip, nas in selectors.nas_by_address().items()}
