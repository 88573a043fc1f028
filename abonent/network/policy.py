"""Authorisation policy held in memory by each RADIUS process.

Answering an Access-Request from the database costs a round trip or more per request; FreeRADIUS with
rlm_sql does 3,300–3,600/s here that way. The RADIUS process instead keeps every login's policy in memory
(about 300 bytes per login), loaded once and then kept fresh from small feeds:

- the policy-change feed (``PolicyChange``, by id): logins, subscriptions, plans of the subscribers listed;
- every few seconds, the access states dunning keeps (``dunning.selectors``: who is redirected to the payment
  page, who is denied access), the logins at their simultaneous-use limit and the subscribers over their
  traffic quota.

The same snapshot is the outage cache: if the database is unreachable, requests are answered from it and
it is written to disk so a restarted process answers too (``radius/snapshot.py``; docs/radius.md,
"Resilience"). A policy older than ``ABONENT_RADIUS_SNAPSHOT_MAX_AGE`` lets in only logins that had a session.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import math
import re
import time
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Q

from abonent.billing.rating.time_budget import seconds_left
from abonent.core import clock, secrets
from abonent.dunning.selectors import denied_subscribers, redirected_subscribers

from . import selectors
from .models import LoginKind, PolicyChange, RejectReason
from .policy_devices import KnownDevices
from .policy_sessions import SimultaneousUse, alive_intervals
from .radius.auth import password_hashes
from .selectors import LoginPolicy, PlanSpeeds
from .vendors import Speed

logger = logging.getLogger(__name__)

DEFAULT_SESSION_TIMEOUT = 24 * 3600
# Seconds after which a session this process saw start or stop is surely in the database (and so in a time budget
# read later): accounting writes within a second or two.
SEEN_WRITE_GRACE = 30
SEEN_KEPT_SECONDS = 3600
PASSWORD_KINDS = (LoginKind.PPPOE, LoginKind.HOTSPOT)
# How far behind its last id the policy-change feed is read again (see ``apply_changes``).
FEED_OVERLAP = 1000
# Seconds between re-reads of the sets: the access states (who is redirected to the payment page, who is denied
# access; read together, and CoA covers a live session at once), who is at the simultaneous-use limit, who is
# over the traffic quota.
SET_PERIODS = {"debtors": 5.0, "at_limit": 15.0, "over_quota": 60.0}
# The reject of a subscriber dunning denies access, by its access state.
DENIED_REASONS = {
    "suspended": RejectReason.SUSPENDED,
    "blocked": RejectReason.BLOCKED,
    "terminated": RejectReason.TERMINATED,
}

# Service-Type values (RFC 2865 §5.6) asking for the NAS's own command line or administration, refused before
# the password is checked: a router whose management logins go to the same RADIUS server would otherwise let
# any subscriber with a PPPoE password into its console. Login-User is not among them: MikroTik's hotspot
# sends it for subscribers.
NAS_MANAGEMENT_SERVICE_TYPES = {
    6: "Administrative-User",
    7: "NAS-Prompt-User",
    9: "Callback-NAS-Prompt",
    11: "Callback-Administrative",
}

# Class = "abonent:<login id>:<tag>", issued in every Access-Accept and echoed by the NAS in accounting.
CLASS_PREFIX = b"abonent:"


def login_id_from_class(values) -> int | None:
    for value in values or ():
        if value.startswith(CLASS_PREFIX):
            try:
                return int(value[len(CLASS_PREFIX) :].split(b":", 1)[0])
            except ValueError:
                return None
    return None


@dataclass(slots=True)
class Decision:
    accept: bool
    reason: str = ""
    restricted: bool = False
    speed: Speed | None = None
    session_timeout: int = DEFAULT_SESSION_TIMEOUT


def normalise_mac(value: str) -> str:
    """``AA-BB-CC-DD-EE-FF``, ``aa:bb:cc:dd:ee:ff``, ``aabb.ccdd.eeff``, ``aabb-ccdd-eeff``, ``aabbccddeeff``
    and, as MikroTik prints octets, ``0:e1:c:38:c8:f8`` → ``aa:bb:cc:dd:ee:ff``; "" for anything else. Six
    groups (or three of four) when separated: taking any twelve hex digits read a DHCP client id
    (``1:a0:e1:c:38:c8:f8``) as another device's MAC."""
    value = value.strip().lower()
    hexdigits = "0123456789abcdef"
    if "." in value:
        parts = value.split(".")
        if len(parts) == 3 and all(len(p) == 4 and all(ch in hexdigits for ch in p) for p in parts):
            return normalise_mac("".join(parts))
        return ""
    parts = re.split(r"[:\- ]", value)
    if len(parts) == 1:
        if len(value) == 12 and all(ch in hexdigits for ch in value):
            return ":".join(value[i : i + 2] for i in range(0, 12, 2))
        return ""
    if len(parts) == 6 and all(0 < len(p) <= 2 and all(ch in hexdigits for ch in p) for p in parts):
        return ":".join(p.zfill(2) for p in parts)
    if len(parts) == 3 and all(len(p) == 4 for p in parts):  # aabb-ccdd-eeff (HPE, Huawei)
        return normalise_mac("".join(parts))
    return ""


def station_mac(calling_station_id: str) -> str:
    """The MAC a Calling-Station-Id reports, also as a DHCP client identifier (hardware type 1, then the MAC:
    ``1:aa:bb:cc:dd:ee:ff``, as MikroTik's DHCP server sends it); "" when it reports none."""
    if not calling_station_id:
        return ""
    kind, _sep, rest = calling_station_id.strip().partition(":")
    if kind in ("1", "01") and rest.count(":") == 5:
        return normalise_mac(rest)
    return normalise_mac(calling_station_id)


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True


def option82_key(raw: bytes = b"", circuit_id: bytes = b"", remote_id: bytes = b"") -> str:
    """An option 82 payload as IPoE logins by option 82 are stored: its hex. From RFC 4679's
    ADSL-Agent-Circuit-Id / ADSL-Agent-Remote-Id when the NAS sends those instead of the whole option: they are
    its sub-options 1 and 2, laid out as the relay put them."""
    if not raw and 0 < len(circuit_id) < 256:  # a sub-option's length is one octet
        raw = bytes((1, len(circuit_id))) + circuit_id
        if 0 < len(remote_id) < 256:
            raw += bytes((2, len(remote_id))) + remote_id
    return raw.hex()


def option82_candidates(key: str) -> tuple[str, ...]:
    """The option 82 a login may be stored as: the whole payload, its Circuit ID and Remote ID sub-options, or
    its Circuit ID alone (an operator who names the port only)."""
    if not key:
        return ()
    try:
        raw = bytes.fromhex(key)
    except ValueError:
        return (key,)
    at = 0
    found: dict[int, str] = {}
    while at + 2 <= len(raw):  # sub-options: code, length, value (RFC 3046 §2)
        code, length = raw[at], raw[at + 1]
        if code in (1, 2) and at + 2 + length <= len(raw):
            found[code] = raw[at : at + 2 + length].hex()
        at += 2 + length
    # The whole option, then its Circuit ID and Remote ID alone (a relay may add sub-options later, such as
    # RFC 4243's vendor options), then the Circuit ID alone (a login that names the port only).
    candidates = [key]
    for candidate in (found.get(1, "") + found.get(2, ""), found.get(1, "")):
        if candidate and candidate not in candidates:
            candidates.append(candidate)
    return tuple(candidates)


def _seconds_until(now: dt.datetime, moment: dt.time) -> int:
    """Seconds from ``now`` (aware, local) to the next wall-clock ``moment``. Subtracted in UTC: Python
    subtracts two times of one zone as wall clocks, an hour off across a daylight-saving change."""
    target = now.replace(hour=moment.hour, minute=moment.minute, second=moment.second, microsecond=0)
    if target <= now:
        target += dt.timedelta(days=1)
    return int((target.astimezone(dt.UTC) - now.astimezone(dt.UTC)).total_seconds())


def in_window(now: dt.time, start: dt.time, end: dt.time) -> bool:
    if start <= end:
        return start <= now < end
    return now >= start or now < end  # the window crosses midnight


@dataclass
class PolicyStore(SimultaneousUse, KnownDevices):
    by_login: dict[tuple[str, str], LoginPolicy] = field(default_factory=dict)
    by_subscriber: dict[int, list[LoginPolicy]] = field(default_factory=dict)
    plans: dict[int, PlanSpeeds] = field(default_factory=dict)
    debtors: set[int] = field(default_factory=set)  # redirected to the payment page (dunning's ``restricted``)
    denied: dict[int, str] = field(default_factory=dict)  # subscriber → access state refused (``DENIED_REASONS``)
    over_quota: set[int] = field(default_factory=set)
    last_change_id: int = 0
    refreshed_at: float = 0.0
    by_login_id: dict[int, LoginPolicy] = field(default_factory=dict)
    _passwords: dict[str, str] = field(default_factory=dict)  # encrypted token → clear text
    _hashes: dict[str, bytes] = field(default_factory=dict)  # encrypted token → MS-CHAP's hashes (auth.py)
    _seen_ids: set[int] = field(default_factory=set)
    _due: dict[str, float] = field(default_factory=dict)
    _warm: bool = False
    # Unix time the policy was last read from the database (a restored snapshot's, until the database is back),
    # and from when it is too old for new logins (``max_age`` seconds later; 0: never).
    as_of: float = 0.0
    max_age: float = 0.0
    stale_at: float = math.inf
    restored: bool = False  # answering from a snapshot: reloaded whole once the database is back
    # Sessions of logins on time plans this process saw start or stop (login → unique id → [start, stop or None],
    # Unix seconds): a reconnect is answered with the time they used before the database's numbers know it
    # (``_time_pending``). Dropped once a budget read after them has them.
    _time_seen: dict[int, dict[str, list]] = field(default_factory=dict)
    # False for a store rendering a CoA: the session it is for is itself one of those online.
    reserve_open: bool = True

    # --- loading -------------------------------------------------------------------------------------

    def load_all(self) -> None:
        started = time.time()
        # Read the feed's head first: a change committed while loading is then read again, never missed.
        self.last_change_id = PolicyChange.objects.order_by("-id").values_list("id", flat=True).first() or 0
        policies = selectors.login_policies()
        self._index(policies)
        self.plans = selectors.plan_speeds()
        self.refresh_sets()
        self.restored = False
        self.mark_fresh(started)
        logger.info("radius policy loaded: %d logins, %d plans", len(self.by_login), len(self.plans))

    def _index(self, policies) -> None:
        self.by_login, self.by_subscriber, self.by_login_id, self._passwords = {}, {}, {}, {}
        self._hashes = {}
        for policy in policies:
            self._put(policy)

    def install_snapshot(
        self, policies, plans, debtors, over_quota, last_change_id: int, online, as_of: float, denied=None
    ):
        """Answer from a snapshot (``radius/snapshot.py``) read from the database at ``as_of``. Nobody is at
        the simultaneous-use limit (the sessions it knew may be long gone); ``online`` is who had a session.
        ``denied`` None: a snapshot written before the access states, which denied nobody."""
        self._index(policies)
        self.plans, self.debtors, self.over_quota = plans, set(debtors), set(over_quota)
        self.denied = dict(denied or {})
        self.last_change_id = last_change_id
        self.at_limit, self.open_below_limit, self._on_nas, self._spread = set(), {}, {}, {}
        self._started_on_nas, self._online_read, self._online_since, self._online = {}, {}, set(online), None
        self.restored = True
        self.mark_fresh(as_of)

    def mark_fresh(self, as_of: float) -> None:
        """The policy is what the database said at ``as_of`` (Unix time)."""
        self.as_of = as_of
        self.stale_at = as_of + self.max_age if self.max_age > 0 else math.inf

    def age(self) -> float:
        return time.time() - self.as_of if self.as_of else 0.0

    def _put(self, policy: LoginPolicy) -> None:
        self._warm = False
        self.by_login[(self._group(policy.kind), policy.username)] = policy
        self.by_login_id[policy.login_id] = policy
        self.by_subscriber.setdefault(policy.subscriber_id, []).append(policy)

    @staticmethod
    def _group(kind: str) -> str:
        return "password" if kind in PASSWORD_KINDS else kind

    def apply_changes(self) -> int:
        """Reload the subscribers listed in the policy-change feed since the last call.

        The feed is read again from a little behind its last id: an id is taken when the row is inserted,
        but a transaction that took a lower id can commit after one that took a higher id; re-reading the
        trailing window (a reload is idempotent) catches it.
        """
        since = max(0, self.last_change_id - FEED_OVERLAP)
        rows = list(PolicyChange.objects.filter(id__gt=since).order_by("id").values_list("id", "subscriber_id")[:5000])
        subscriber_ids = {subscriber_id for row_id, subscriber_id in rows if row_id not in self._seen_ids}
        if not subscriber_ids:
            return 0
        # Read first, then swap: a request between the two sees the old policy or the new, never none.
        fresh = selectors.login_policies(subscriber_ids)
        plans = selectors.plan_speeds()
        for subscriber_id in subscriber_ids:
            for old in self.by_subscriber.pop(subscriber_id, []):
                self.by_login.pop((self._group(old.kind), old.username), None)
                self.by_login_id.pop(old.login_id, None)
        for policy in fresh:
            self._put(policy)
        self.plans = plans
        self._seen_ids = {row_id for row_id, _ in rows}
        self.last_change_id = max(self.last_change_id, rows[-1][0])
        return len(subscriber_ids)

    def refresh_sets(self, *, force: bool = True) -> None:
        """Re-read the sets, each when its period is up (all of them when ``force``). Each is a scan on the
        database; every 2 s all three took half of what accounting could write on this 2-core machine
        (2,500 → 4,100 interims/s measured), so they run only as often as their answer changes."""
        now = time.monotonic()
        due = self._due
        if force or now >= due.get("debtors", 0):
            self.debtors, self.denied = redirected_subscribers(), denied_subscribers()
            due["debtors"] = now + SET_PERIODS["debtors"]
        if force or now >= due.get("at_limit", 0):
            self.reread_session_limits()
            self._forget_seen_sessions()
            due["at_limit"] = now + SET_PERIODS["at_limit"]
        if force or now >= due.get("over_quota", 0):
            self.over_quota = selectors.subscribers_over_quota(clock.today().replace(day=1))
            due["over_quota"] = now + SET_PERIODS["over_quota"]
        self.refresh_devices(force=force)  # the devices known to the limits (policy_devices.py), on their own periods
        self.refreshed_at = now

    def refresh(self) -> None:
        """One tick of the refresher thread. Closes the connection on the way out when it failed, so the
        next tick reconnects after an outage."""
        started = time.time()
        try:
            if self.restored:  # back from a snapshot, perhaps hours old: the feed may not reach back that far
                self.load_all()
                logger.warning("radius policy reloaded from the database (had run from a snapshot)")
                return
            self.apply_changes()
            self.refresh_sets(force=False)
        except Exception:
            connection.close()
            raise
        self.mark_fresh(started)

    def session_started(
        self, login_id: int, unique_id: str, nas_id: int = 0, started_at: dt.datetime | None = None
    ) -> None:
        super().session_started(login_id, unique_id, nas_id, started_at)
        entry = self.by_login_id.get(login_id)
        if entry is not None and entry.time_budget is not None:
            start = (started_at or clock.now()).timestamp()
            self._time_seen.setdefault(login_id, {}).setdefault(unique_id, [start, None])

    def session_stopped(
        self,
        login_id: int,
        unique_id: str,
        started_at: dt.datetime | None = None,
        stopped_at: dt.datetime | None = None,
    ) -> None:
        super().session_stopped(login_id, unique_id)
        entry = self.by_login_id.get(login_id)
        if entry is None or entry.time_budget is None:
            return
        seen = self._time_seen.setdefault(login_id, {})
        known = seen.get(unique_id)
        if known is None:
            if started_at is None:
                return  # a Stop of a session whose start this process never learnt: the database's numbers have it
            known = seen[unique_id] = [started_at.timestamp(), None]
        known[1] = (stopped_at or clock.now()).timestamp()

    def _forget_seen_sessions(self) -> None:
        """A session seen stopping an hour ago is charged by now and its budget reloaded by the rating pass (every
        5 minutes); one seen starting is kept while it may still be online (its Session-Timeout is 24 h at most):
        then no longer, for logins that do not come back."""
        now = clock.now().timestamp()
        for login_id, seen in list(self._time_seen.items()):
            for unique_id, (start, stop) in list(seen.items()):
                gone = stop < now - SEEN_KEPT_SECONDS if stop is not None else start < now - 2 * DEFAULT_SESSION_TIMEOUT
                if gone:
                    del seen[unique_id]
            if not seen:
                del self._time_seen[login_id]

    def _time_pending(self, policy: LoginPolicy, now: float) -> tuple[tuple, bool]:
        """The pending sessions of the policy's time budget, with those this process saw start or stop since the
        budget was read, and whether sessions may run side by side (an open one then keeps its time)."""
        budget = policy.time_budget
        siblings = [p for p in self.by_subscriber.get(policy.subscriber_id, ()) if p.time_budget is budget]
        side_by_side = self.reserve_open and (policy.simultaneous_use > 1 or len(siblings) > 1)
        if not self._time_seen:
            return budget.pending, side_by_side
        pending = [list(p) for p in budget.pending]
        # Seen this long before the read, the database had the session (accounting writes within seconds).
        known_before = budget.as_of - SEEN_WRITE_GRACE
        for sibling in siblings:
            seen = self._time_seen.get(sibling.login_id)
            if not seen:
                continue
            for unique_id, (start, stop) in list(seen.items()):
                if (stop if stop is not None else start) < known_before:
                    del seen[unique_id]
                    continue
                same = next((p for p in pending if abs(p[0] - start) < 2), None)
                if same is None:
                    pending.append([start, stop, 0])
                elif same[1] is None and stop is not None:
                    same[1] = stop  # its Stop is not in the numbers yet
        return tuple(tuple(p) for p in pending), side_by_side

    @classmethod
    def for_subscribers(cls, subscriber_ids, *, with_state: bool = True, session_limit: bool = True) -> PolicyStore:
        """A store of these subscribers' logins only, with the same sets ``refresh_sets`` reads for everyone,
        narrowed to them: for answers given one at a time (rlm_rest, a CoA rendered when it is queued).
        ``session_limit=False`` leaves the simultaneous-use set empty: a CoA is for a session that is itself
        one of those counted."""
        subscriber_ids = set(subscriber_ids)
        store = cls(as_of=time.time(), reserve_open=session_limit)
        if not subscriber_ids:
            return store
        for policy in selectors.login_policies(subscriber_ids):
            store._put(policy)
        store.plans = selectors.plan_speeds()
        if with_state:
            store.debtors = redirected_subscribers(subscriber_ids)
            store.denied = denied_subscribers(subscriber_ids)
            if session_limit:
                store.at_limit = selectors.session_limits(alive_intervals(), subscriber_ids).at_limit
            store.over_quota = selectors.subscribers_over_quota(clock.today().replace(day=1), subscriber_ids)
            store.refreshed_at = time.monotonic()
        return store

    # --- answering -------------------------------------------------------------------------------------

    def find(
        self,
        username: str,
        calling_station_id: str = "",
        option82: str = "",
        *,
        ppp: bool = False,
        hotspot: bool = False,
    ) -> LoginPolicy | None:
        """The login an Access-Request is for: a PPPoE/hotspot login by User-Name, else IPoE by MAC
        (Calling-Station-Id or a User-Name that is a MAC), else IPoE by option 82.

        An IPoE login has no password to check, so only what the network says may name it, never what the
        subscriber typed:
        - a PPP request (Framed-Protocol = PPP) is only ever a password login: otherwise a PPPoE client that
          copies an IPoE subscriber's MAC would get in with any name and password, billed to that subscriber;
        - on a hotspot login page (Service-Type = Login-User) the User-Name is typed, so it names an IPoE login
          only as the MAC the NAS itself reports (MAC authentication: the same MAC in Calling-Station-Id);
        - anywhere, a User-Name that is a MAC does not name an IPoE login when Calling-Station-Id reports a
          different MAC: the device asking is another one.
        """
        policy = self.by_login.get(("password", username))
        if policy is not None or ppp:
            return policy
        station = station_mac(calling_station_id)
        named = normalise_mac(username) if username else ""
        if hotspot:
            macs = (station,) if station and named == station else ()
        else:
            # A MAC as the name stands unless the NAS reports another device as the caller: another MAC, or an
            # IP address (a VPN NAS). A caller that is neither (a DHCP client id that is a DUID or a host name,
            # from MikroTik's DHCP server, whose User-Name is the MAC it read itself) leaves the name standing.
            other = station != named if station else _is_ip_address(calling_station_id)
            macs = (station, "" if other else named)
        for mac in macs:
            if mac:
                policy = self.by_login.get((LoginKind.IPOE_MAC, mac))
                if policy is not None:
                    return policy
        for candidate in (*option82_candidates(option82), "" if hotspot else username):
            if candidate:
                policy = self.by_login.get((LoginKind.IPOE_OPT82, candidate))
                if policy is not None:
                    return policy
        return None

    def accounting_login(self, class_values, username: str, calling_station_id: str) -> LoginPolicy | None:
        """The login an Accounting-Request is for. The Class we issued at Access-Accept names it even where
        the accounting packet cannot (option 82 is not in accounting; some NAS rewrite User-Name); without a
        usable Class, the login is looked up as at authentication."""
        login_id = login_id_from_class(class_values)
        entry = self.by_login_id.get(login_id) if login_id is not None else None
        return entry if entry is not None else self.find(username, calling_station_id)

    def password_of(self, policy: LoginPolicy) -> str:
        password = self._passwords.get(policy.password_encrypted)
        if password is None:
            password = secrets.decrypt(policy.password_encrypted)
            self._passwords[policy.password_encrypted] = password
        return password

    def password_hashes_of(self, policy: LoginPolicy) -> bytes:
        """What MS-CHAP checks against (``auth.password_hashes``), computed once per password."""
        hashes = self._hashes.get(policy.password_encrypted)
        if hashes is None:
            hashes = self._hashes[policy.password_encrypted] = password_hashes(self.password_of(policy))
        return hashes

    def warm_passwords(self, budget_seconds: float = 0.5) -> int:
        """Decrypt passwords and compute their MS-CHAP hashes ahead of the requests, on the maintenance thread: a
        Fernet decrypt costs more than answering a request, after a restart every NAS re-authenticates its
        subscribers at once, and a hash computed on a request would make its answer slower for a login that
        exists (credentials.py). Works for ``budget_seconds`` per call and returns how many are still to do."""
        if self._warm:
            return 0  # nothing new since the last complete pass: no walk over every login on each tick
        deadline = time.monotonic() + budget_seconds
        todo = 0
        for policy in list(self.by_login.values()):
            token = policy.password_encrypted
            if not token or token in self._hashes:
                continue
            if time.monotonic() > deadline:
                todo += 1
                continue
            # Undecryptable tokens are reported (and rejected) when the login is used: see password_of.
            with contextlib.suppress(secrets.SecretError):
                self.password_hashes_of(policy)
        self._warm = todo == 0
        return todo

    def decide(self, policy: LoginPolicy, now: dt.datetime) -> Decision:
        """Who may connect and how, once the password (if any) is verified. ``now`` is local time."""
        if not policy.is_active:
            return Decision(False, RejectReason.LOGIN_DISABLED)
        if policy.subscriber_closed:
            return Decision(False, RejectReason.SUBSCRIBER_CLOSED)
        if policy.subscription_status is None or policy.plan_id not in self.plans:
            return Decision(False, RejectReason.NO_SUBSCRIPTION)
        if policy.subscription_status == "frozen":
            return Decision(False, RejectReason.FROZEN)
        denied = self.denied.get(policy.subscriber_id)
        if denied is not None:
            # Only once the password is verified, as the rejects above: the reason tells that the login exists.
            return Decision(False, DENIED_REASONS.get(denied, RejectReason.BLOCKED))
        if policy.login_id in self.at_limit:
            return Decision(False, RejectReason.TOO_MANY_SESSIONS)
        if time.time() >= self.stale_at and not self.had_session(policy.login_id):
            # The database has been away longer than ABONENT_RADIUS_SNAPSHOT_MAX_AGE: whoever was online then is
            # let back in, but a login never seen online may since have been closed, disabled or moved.
            return Decision(False, RejectReason.POLICY_TOO_OLD)
        plan = self.plans[policy.plan_id]
        speed = plan.day
        timeout = DEFAULT_SESSION_TIMEOUT
        if plan.fup is not None and policy.subscriber_id in self.over_quota:
            speed = plan.fup
        elif plan.night is not None and plan.night_from is not None and plan.night_until is not None:
            # Re-authenticate at the next boundary of the night window, where the speed changes.
            if in_window(now.time(), plan.night_from, plan.night_until):
                speed = plan.night
                timeout = min(timeout, _seconds_until(now, plan.night_until))
            else:
                timeout = min(timeout, _seconds_until(now, plan.night_from))
        turbo = policy.turbo
        if turbo is not None and now < policy.turbo_until and turbo.down_kbps >= speed.down_kbps:
            # Bought speed wins over day, night and after-quota speed (unless the night is faster still)
            # until it runs out; the worker's CoA then gives the plan's speed back, and a request after the
            # end gets it even before that.
            speed = turbo
        floor = 60
        if policy.time_budget is not None:
            # Pay as you go: the session lasts as long as the package time and money left buy (checked last, as
            # the other rejects that tell the login exists).
            now_ts = clock.now().timestamp()  # the clock tests travel with; as cheap as time.time()
            pending, side_by_side = self._time_pending(policy, now_ts)
            left = seconds_left(
                policy.time_budget._replace(pending=pending),
                now_ts,
                open_reserve=DEFAULT_SESSION_TIMEOUT if side_by_side else 0,
            )
            if left is not None:
                if left <= 0:
                    return Decision(False, RejectReason.NO_TIME_LEFT, session_timeout=0)
                timeout, floor = min(timeout, left), 1
        return Decision(
            True,
            restricted=policy.subscriber_id in self.debtors,
            speed=speed,
            session_timeout=max(timeout, floor),
        )


def store_for_request(
    username: str,
    calling_station_id: str = "",
    option82: str = "",
    *,
    with_state: bool = True,
) -> PolicyStore:
    """A ``PolicyStore`` holding only the logins one request can be for, read from the database now.

    For FreeRADIUS in front (``network.api``, rlm_rest), which asks per request instead of keeping every login
    in memory: ``find``, ``password_of`` and ``decide`` then answer exactly as they do in ``abonent radius``.
    ``with_state=False`` skips the access-state, session-limit and quota sets (accounting only needs ``find``).
    """
    from .models import Login

    macs = {mac for mac in (station_mac(calling_station_id), normalise_mac(username)) if mac}
    circuits = {value for value in (*option82_candidates(option82), username) if value}
    wanted = Q(kind__in=PASSWORD_KINDS, username=username) if username else Q(pk__in=[])
    if macs:
        wanted |= Q(kind=LoginKind.IPOE_MAC, username__in=macs)
    if circuits:
        wanted |= Q(kind=LoginKind.IPOE_OPT82, username__in=circuits)
    subscriber_ids = set(Login.objects.filter(wanted).values_list("subscriber_id", flat=True))
    return PolicyStore.for_subscribers(subscriber_ids, with_state=with_state)
