"""``abonent radius``: the asyncio UDP server for authentication (1812) and accounting (1813).

One event loop per process. Access-Requests are answered from the in-memory policy (``network.policy``)
without a database round trip. Accounting-Requests are queued and written in batches by one database
thread; each is answered only after its batch commits, or after it is appended and fsynced to the disk
spool when the database is unreachable (replayed in order when it is back). Every packet is checked before
decoding: unknown NAS, wrong lengths, malformed attributes, bad authenticators and a missing
Message-Authenticator are dropped with a counter and a log line, never answered and never written.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets as pysecrets
import struct
import time
from dataclasses import dataclass, field

from django.utils import timezone

from abonent.core import clock
from abonent.core.secrets import SecretError

from .. import accounting
from .. import policy as policy_mod
from ..models import AuthAttempt, AuthOutcome, RejectReason
from ..policy import CLASS_PREFIX, NAS_MANAGEMENT_SERVICE_TYPES, PASSWORD_KINDS, option82_key
from ..vendors import profile_for
from . import codec, credentials, mppe, records
from .attemptlog import RATE_LIMITED_PER_KEY, AttemptBudget
from .codec import MalformedPacket, Request, parse_packet
from .dedup import DedupCache, PendingAnswer
from .nas import NasEntry
from .ratelimit import BadAuthLimiter
from .records import attr_text
from .stats import ACCOUNTING_COUNTERS, Stats
from .writer import AccountingWriter

logger = logging.getLogger("abonent.radius")


ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT = 1, 2, 3
ACCOUNTING_REQUEST, ACCOUNTING_RESPONSE = 4, 5
STATUS_SERVER = 12
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
# Rejected unchecked, over a limit of bad authentications (ratelimit.py): counted; written as an attempt only
# for a login that exists, once a minute (attemptlog.py).
RATE_LIMITED = RejectReason.RATE_LIMITED
# Rejects that count as bad authentications when the request carried a password.
BAD_AUTHENTICATIONS = frozenset((RejectReason.UNKNOWN_LOGIN, RejectReason.BAD_PASSWORD, RejectReason.NAS_MANAGEMENT))
MAX_PENDING_ATTEMPTS = 100_000  # rows waiting while the database is away


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
    limiter: BadAuthLimiter = field(default_factory=BadAuthLimiter.from_settings)
    attempt_budget: AttemptBudget = field(default_factory=AttemptBudget.from_settings)
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
        username = attr_text(raw_get(attributes, 1))
        calling = attr_text(raw_get(attributes, 31))
        option82 = option82_key(
            (raw_get(attributes, 245) or [b""])[0],
            (raw_get(attributes, AGENT_CIRCUIT_ID) or [b""])[0],
            (raw_get(attributes, AGENT_REMOTE_ID) or [b""])[0],
        )
        # Framed-Protocol = PPP, Service-Type = Login-User (a hotspot page): the User-Name was typed (find()).
        ppp = raw_get(attributes, 7) == [PPP]
        hotspot = raw_get(attributes, 6) == [LOGIN_USER]
        entry = self.store.find(username, calling, option82, ppp=ppp, hotspot=hotspot)
        checked = credentials.NOT_CARRIED
        reason = ""
        password_login = entry is None or entry.kind in PASSWORD_KINDS
        carried = password_login and credentials.carries_password(attributes)
        device = known = None
        if carried and calling:
            # The device asking: known when the login connected from it through this NAS (ratelimit.py).
            device = (nas.id, calling)
            if self.limiter.accepted_here(username, device) or (
                entry is not None and self.store.device_known(entry.login_id, nas.id, calling)
            ):
                known = device
        if carried and self.limiter.throttled(nas.name, username, known):
            reason = RATE_LIMITED  # answered as a wrong password is, without the check
        else:
            if password_login:
                # A login that does not exist is checked against a dummy password, so its reject costs what a
                # wrong password costs (credentials.py).
                checked = self._check(attributes, entry, username, nas, request)
            if entry is None:
                reason = RejectReason.UNKNOWN_LOGIN
            elif any(value in NAS_MANAGEMENT_SERVICES for value in raw_get(attributes, 6) or ()):
                reason = RejectReason.NAS_MANAGEMENT  # whatever the password: the answer tells nothing about it
            elif entry.kind in PASSWORD_KINDS:
                if not checked.carried:
                    reason = RejectReason.UNSUPPORTED_AUTH
                elif not checked.ok:
                    reason = RejectReason.BAD_PASSWORD
            if checked.carried:
                if reason in BAD_AUTHENTICATIONS:
                    self.limiter.failed(nas.name, username, known)
                else:
                    self.limiter.succeeded(username, device)
        decision = None
        if not reason:
            decision = self.store.decide(entry, self._local_now())
            reason = decision.reason
        # Proxy-State is returned unmodified and in order (RFC 2865 §5.33).
        tail = b"".join(codec.raw_attribute(33, v) for v in raw_get(attributes, 33) or ())
        if reason:
            self.stats.inc(nas.name, "rejects_" + str(reason))
            if reason != RATE_LIMITED:
                self._attempt(nas, username, entry, AuthOutcome.REJECT, reason, calling)
            elif entry is not None and self.attempt_budget.admit(
                (RATE_LIMITED, username), known=True, per_key=RATE_LIMITED_PER_KEY
            ):
                self._write_attempt(nas, username, entry, AuthOutcome.REJECT, reason, calling)
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
        if checked.mschap2 is not None:
            body += codec.encode_attributes([("MS-CHAP2-Success", checked.mschap2.success)])
            # Keys of this request's exchange: added here, never to the shared accept body.
            body += mppe.attributes(checked.mschap2, nas.secret, request.authenticator)
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

    def _check(self, attributes: dict, entry, username: str, nas: NasEntry, request: Request) -> credentials.Checked:
        try:
            return credentials.check(attributes, self.store, entry, username, nas.secret, request.authenticator)
        except SecretError:
            # Stored under another ABONENT_FIELD_KEY: nothing can match it. Loud, because every such subscriber
            # is locked out until the key is put back.
            logger.error("radius: the password of login %s cannot be decrypted (field key changed?)", entry.login_id)
            return credentials.check(attributes, self.store, None, username, nas.secret, request.authenticator)

    def _attempt(self, nas: NasEntry, username: str, entry, outcome: str, reason: str, calling: str) -> None:
        # Bounded per minute and per (NAS, login, outcome, reason), logins that exist apart from names that do not
        # (attemptlog.py), and while the database is away.
        if not self.attempt_budget.admit((nas.id, username, outcome, reason), known=entry is not None):
            self.stats.inc(nas.name, "auth_attempts_dropped")
        else:
            self._write_attempt(nas, username, entry, outcome, reason, calling)

    def _write_attempt(self, nas: NasEntry, username: str, entry, outcome: str, reason: str, calling: str) -> None:
        if len(self.attempts) >= MAX_PENDING_ATTEMPTS:
            self.stats.inc(nas.name, "auth_attempts_dropped")
            return
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
        if self.writer.full:
            # Dropped unanswered before any work is spent on it, and before anything is noted of it (no pending
            # entry in the dedup cache, which would swallow the retransmission): the NAS resends it later.
            self.stats.inc(nas.name, "accounting_queue_full")
            return
        try:
            if not codec.accounting_request_ok(request, nas.secret):
                self._drop(nas.name, "bad_authenticator", addr, "wrong shared secret?")
                return
            if request.ma_at and not codec.message_authenticator_ok(request.raw, request.ma_at, nas.secret, bytes(16)):
                self._drop(nas.name, "bad_message_authenticator", addr)
                return
            record = records.acct_record(request, nas, addr, self.store)
        except (struct.error, UnicodeError, ValueError, KeyError, IndexError) as exc:
            self._drop(nas.name, "malformed", addr, str(exc))
            return
        # Proxy-State is returned unmodified and in order (RFC 2866 §4.1 via RFC 2865 §5.33).
        states = request.get(33)
        tail = b"".join([codec.raw_attribute(33, v) for v in states]) if states else b""
        reply = codec.plain_reply(ACCOUNTING_RESPONSE, request.id, request.authenticator, nas.secret, tail)
        if record is None:
            self.stats.inc(nas.name, "accounting_ignored")
            # A status we do not record (Tunnel-*, Failed): acknowledged, or the NAS would resend it forever.
            self.acct_dedup.put(key, reply)
            send(reply, addr)
            return
        if record.status in (accounting.ACCOUNTING_ON, accounting.ACCOUNTING_OFF):
            self.store.nas_restarted(nas.id, record.event_time)  # its subscribers may reconnect now
        elif record.login_id is not None:
            if record.status == accounting.STOP:
                self.store.session_stopped(record.login_id, record.unique_id, record.started_at, record.event_time)
            elif record.status == accounting.START:
                self.store.session_started(record.login_id, record.unique_id, nas.id, record.started_at)
        self.acct_dedup.put(key, DedupCache.PENDING)
        self.stats.counters[(nas.name, ACCOUNTING_COUNTERS[record.status])] += 1
        self.writer.submit(record, PendingAnswer(self.acct_dedup, key, reply, send, addr))
