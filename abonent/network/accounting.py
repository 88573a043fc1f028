"""Writing accounting records: sessions upserted idempotently, traffic deltas into daily usage, online days
for billing, NAS reboots closing sessions, and the sweeper for sessions whose Stop never came.

A batch of records from the RADIUS server is written in one database transaction; the server answers the
NAS only after it commits (or after the records are safely in the disk spool). Counters are cumulative
totals and only grow (``GREATEST``), a closed session stays closed, and the traffic delta is the new total
minus the stored one, so a retransmitted, repeated or reordered record never counts twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass

import psycopg
from django import db
from django.conf import settings
from django.db import DataError, connection, transaction
from django.db.models import F, Max
from django.db.models.functions import Greatest
from django.utils import timezone

from abonent.billing.actions import do_record_online_days
from abonent.core import clock

from .models import AccessMark, Session, SessionStatus

logger = logging.getLogger(__name__)

START, STOP, INTERIM, ACCOUNTING_ON, ACCOUNTING_OFF = 1, 2, 3, 7, 8
# terminate_cause of sessions the sweeper closed: the only closed sessions a later record may reopen.
STALE = "Stale"
NAS_REBOOT = "NAS-Reboot"


@dataclass(slots=True)
class AcctRecord:
    """One Accounting-Request, reduced to what is stored. Times are UTC ISO strings in the spool."""

    status: int
    nas_id: int
    event_time: dt.datetime
    unique_id: str = ""
    acct_session_id: str = ""
    username: str = ""
    login_id: int | None = None
    subscriber_id: int | None = None
    framed_ip: str | None = None
    calling_station_id: str = ""
    nas_port_id: str = ""
    session_time: int = 0
    input_octets: int = 0
    output_octets: int = 0
    terminate_cause: str = ""
    # No Gigawords in the record: its counters are the NAS's 32-bit ones, which wrap (``grown_counter``).
    counters_32bit: bool = False

    def to_json(self) -> dict:
        data = asdict(self)
        data["event_time"] = self.event_time.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict) -> AcctRecord:
        """The record ``to_json`` gave, checked strictly: each field of its own type (an integer is neither a bool
        nor a string of digits), the event time an ISO time with its UTC offset. Anything else raises ValueError:
        a record another version wrote, or a damaged one, would fail later in ``mergeable`` (TypeError) or in
        the database, at every replay, instead of being quarantined once (the spool, ``spoolfile.read``)."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        for name, value in data.items():
            types = _JSON_TYPES.get(name)
            if types is None:
                raise ValueError(f"unknown field {name!r}")
            if type(value) not in types:
                raise ValueError(f"{name} is a JSON {type(value).__name__}")
        missing = _JSON_REQUIRED - data.keys()
        if missing:
            raise ValueError(f"missing {', '.join(sorted(missing))}")
        event_time = dt.datetime.fromisoformat(data["event_time"])
        if event_time.utcoffset() is None:
            raise ValueError("event_time has no UTC offset")
        return cls(**{**data, "event_time": event_time})

    @property
    def started_at(self) -> dt.datetime:
        return self.event_time - dt.timedelta(seconds=self.session_time)

    @property
    def stopped(self) -> bool:
        return self.status == STOP


# Each field's type in JSON, from its annotation (a field with an annotation not listed here fails at import).
_JSON_TYPE_OF = {
    "int": (int,),
    "str": (str,),
    "bool": (bool,),
    "dt.datetime": (str,),
    "int | None": (int, type(None)),
    "str | None": (str, type(None)),
}
_JSON_TYPES = {f.name: _JSON_TYPE_OF[f.type] for f in dataclasses.fields(AcctRecord)}
_JSON_REQUIRED = {f.name for f in dataclasses.fields(AcctRecord) if f.default is dataclasses.MISSING}


def unique_session_id(
    username: str, acct_session_id: str, nas_ip: str, nas_identifier: str, port_id: str, port: str
) -> str:
    """FreeRADIUS's Acct-Unique-Session-Id recipe: Acct-Session-Id alone repeats across NAS and reboots."""
    key = "\x00".join((username, acct_session_id, nas_ip, nas_identifier, port_id, port))
    return hashlib.md5(key.encode()).hexdigest()  # noqa: S324 - an identifier, not a secret


WRAP = 1 << 32
# The largest total a counter, a session's or a day's, can hold: the database's bigint. Every sum saturates here.
MAX_COUNTER = (1 << 63) - 1


def grown_counter(before: int, after: int, before_secs: int, after_secs: int, counters_32bit: bool) -> int:
    """A session counter's total after a record: counters only grow, so a retransmitted, repeated or
    reordered record never counts twice. A NAS that sends no Gigawords reports the counter's low 32 bits,
    which wrap at 4 GiB (every 5 minutes at 115 Mbit/s): a newer record (more session time) with a smaller
    value is that wrap, not an old record, and the total goes on from the wrap instead of stopping there. One
    wrap between two records is all that can be seen. The total saturates at ``MAX_COUNTER`` and never goes
    below ``before``: a wrap on top of a total near 2^63 (Gigawords 2^31 - 1, which the reader accepts) would
    pass bit 63 (issue 12). Migration 0012 does the same on PostgreSQL."""
    if counters_32bit and after < before and after_secs > before_secs:
        high = before >> 32
        if after < before & (WRAP - 1):
            high += 1
        return max(before, min((high << 32) | after, MAX_COUNTER))
    return max(before, after)


def saturating_add(total: int, delta: int) -> int:
    """``total + delta`` for byte counts (both >= 0), held at ``MAX_COUNTER``: a day's usage is a bigint."""
    return min(total + delta, MAX_COUNTER)


def mergeable(records: list[AcctRecord]) -> int:
    """How many leading records ``merge`` may fold into one statement: all of them, unless a record's 32-bit
    counter wrapped between it and an earlier record of its session in the batch (a spool replayed after an
    outage brings several interims of a session at once): a newer record with a smaller counter, or an older
    one, arriving later, with a larger counter. Merged, the largest counter would go with the latest session
    time and the wrap would be lost; so that record, and what follows it, go in a statement of their own,
    after, where the statement's own wrap rule (migration 0008) sees it against the stored row."""
    latest: dict[tuple[int, str], AcctRecord] = {}  # per session, the record with the most session time
    for index, r in enumerate(records):
        key = (r.nas_id, r.unique_id)
        last = latest.get(key)
        if last is None:
            latest[key] = r
            continue
        if r.counters_32bit or last.counters_32bit:
            smaller = r.input_octets < last.input_octets or r.output_octets < last.output_octets
            larger = r.input_octets > last.input_octets or r.output_octets > last.output_octets
            if (r.session_time > last.session_time and smaller) or (r.session_time < last.session_time and larger):
                return index
        if r.session_time >= last.session_time:
            latest[key] = r
    return len(records)


def merge(records: list[AcctRecord]) -> list[AcctRecord]:
    """One row per session per statement (ON CONFLICT cannot touch a row twice): the largest counters,
    the earliest start, the latest update, and a Stop wins."""
    merged: dict[tuple[int, str], AcctRecord] = {}
    copied: set[tuple[int, str]] = set()
    for record in records:
        key = (record.nas_id, record.unique_id)
        seen = merged.get(key)
        if seen is None:
            merged[key] = record  # copied only if a second record for the session comes to be merged into it
            continue
        if key not in copied:
            seen = merged[key] = dataclasses.replace(seen)
            copied.add(key)
        start = min(seen.started_at, record.started_at)
        # The largest counters: ``mergeable`` leaves no 32-bit wrap inside what is merged.
        seen.input_octets = max(seen.input_octets, record.input_octets)
        seen.output_octets = max(seen.output_octets, record.output_octets)
        seen.counters_32bit = seen.counters_32bit or record.counters_32bit
        seen.session_time = max(seen.session_time, record.session_time)
        if record.stopped and not seen.stopped:
            seen.status, seen.terminate_cause = STOP, record.terminate_cause
        seen.event_time = max(seen.event_time, record.event_time)
        seen.session_time = max(seen.session_time, int((seen.event_time - start).total_seconds()))
        seen.framed_ip = record.framed_ip or seen.framed_ip
        seen.login_id = seen.login_id or record.login_id
        seen.subscriber_id = seen.subscriber_id or record.subscriber_id
    return list(merged.values())


def write_batch(records: list[AcctRecord]) -> None:
    """Write records in order, in one transaction. Accounting-On/Off split the batch: sessions reported
    before a NAS reboot are written before it closes them."""
    if (
        connection.vendor == "postgresql"
        and not any(r.status in (ACCOUNTING_ON, ACCOUNTING_OFF) for r in records)
        and mergeable(records) == len(records)
    ):
        # One statement (network_write_sessions) is its own transaction: no BEGIN and COMMIT round trips.
        _write_rows(merge(records))
        return
    with transaction.atomic():
        segment: list[AcctRecord] = []
        for record in records:
            if record.status in (ACCOUNTING_ON, ACCOUNTING_OFF):
                _write_sessions(segment)
                segment = []
                close_nas_sessions(record.nas_id, record.event_time, NAS_REBOOT)
            else:
                segment.append(record)
        _write_sessions(segment)


_OUTAGES = (db.OperationalError, db.InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
_REFUSALS = (DataError, db.IntegrityError, psycopg.DataError, psycopg.IntegrityError, OverflowError)


def is_refusal(exc: BaseException) -> bool:
    """Whether an error is about a record rather than the database: a data exception (SQLSTATE class 22: a value
    out of range, not an address) or an integrity violation (23: the foreign key to a NAS deleted since, a NOT
    NULL), whichever class the driver gave it; or OverflowError, SQLite's driver refusing an integer over 64 bits
    before the database sees it. Written again, such a record is refused again, forever. An OperationalError or
    InterfaceError is the database or the connection failing (an outage), never a refusal."""
    if isinstance(exc, _OUTAGES):
        return False
    if isinstance(exc, _REFUSALS):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc.__cause__, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in ("22", "23")


def write_batch_isolating(records: list[AcctRecord], refused, deadline: float | None = None) -> list[AcctRecord]:
    """``write_batch``; if the database refuses a row (``is_refusal``: one bad row fails the whole statement),
    the batch is bisected: each half is written on its own, and a half refused again is split again, down to the
    one record, for which ``refused(record, error)`` is called. One bad record must not hold back the rest, nor
    hold them long: it is found in about 2·log2(n) statements (22 for 2,000 records), where writing the records
    one by one took n commits. Halves are written in order, so a session's records keep theirs. Anything else
    (the database is away) is raised.

    Past ``deadline`` (``time.monotonic()``; checked before each statement) the records not yet written are
    returned, in order, for the caller to keep elsewhere (the RADIUS server spools them; the spool's replay
    isolates the bad one later). Without one, everything is written or refused, and nothing is returned.

    Called outside any transaction: a foreign key is checked at commit (Django's are DEFERRABLE INITIALLY
    DEFERRED), which is the end of the statement on PostgreSQL's single-statement path and the end of
    ``write_batch``'s atomic block elsewhere, so the error comes from ``write_batch`` itself either way."""
    try:
        write_batch(records)
        return []
    except Exception as exc:
        if not is_refusal(exc):
            raise
    parts = _halves(records)  # still to write, in order; each holds a refused record or is untried
    while parts:
        if deadline is not None and time.monotonic() >= deadline:
            return [record for part in parts for record in part]
        part = parts.pop(0)
        try:
            write_batch(part)
        except Exception as exc:
            if not is_refusal(exc):
                raise
            if len(part) == 1:
                refused(part[0], exc)
            else:
                parts[:0] = _halves(part)
    return []


def _halves(records: list[AcctRecord]) -> list[list[AcctRecord]]:
    middle = (len(records) + 1) // 2
    return [part for part in (records[:middle], records[middle:]) if part]


# (subscriber, day) pairs already recorded as online by this process (SQLite; PostgreSQL records them in
# network_write_sessions): nearly every record repeats one, and the insert would find it there anyway.
# Filled only after a commit, so a rolled-back batch is recorded again.
_online_seen: set[tuple[int, dt.date]] = set()


def _write_sessions(records: list[AcctRecord]) -> None:
    while records:
        count = mergeable(records)
        _write_rows(merge(records[:count]))
        records = records[count:]


def _write_rows(rows: list[AcctRecord]) -> None:
    if connection.vendor == "postgresql":
        _write_postgresql(rows)
        return
    usage = _upsert_generic(rows)
    _add_usage(usage)
    online = {(subscriber_id, day) for subscriber_id, day, _i, _o in usage}
    online |= {(r.subscriber_id, timezone.localtime(r.event_time).date()) for r in rows if r.subscriber_id}
    online -= _online_seen
    if online:
        # On the payment page, or denied access, is not online (migration 0010 reads the same marks): a debtor's
        # day is recorded once the NAS have been told access is back.
        redirected = set(
            AccessMark.objects.filter(subscriber_id__in={sub for sub, _day in online}).values_list(
                "subscriber_id", flat=True
            )
        )
        online = {(sub, day) for sub, day in online if sub not in redirected}
    if online:
        do_record_online_days(online)
        transaction.on_commit(lambda: _remember_online(online))


def _remember_online(pairs) -> None:
    if len(_online_seen) > 2_000_000:  # a new day: yesterday's pairs are no longer asked about
        _online_seen.clear()
    _online_seen.update(pairs)


def write_document(rows: list[AcctRecord]) -> str:
    """The batch argument of ``network_write_sessions`` (migrations 0004, 0005) for merged records: a JSON array of
    objects, sorted by key, which is the lock order, so two writers cannot deadlock. The event time goes once
    (the function derives the start and the stop from it) and empty values are left out: building this is
    on the server's hot path, and half the keys are empty in a typical interim."""
    out = []
    for r in sorted(rows, key=lambda r: (r.nas_id, r.unique_id)):
        item = {
            "nas": r.nas_id,
            "uid": r.unique_id,
            "sid": r.acct_session_id,
            "usr": r.username,
            "at": r.event_time.isoformat(),
            "secs": r.session_time,
            "octets_in": r.input_octets,
            "octets_out": r.output_octets,
        }
        if r.login_id is not None:
            item["login"] = r.login_id
        if r.subscriber_id is not None:
            item["sub"] = r.subscriber_id
        if r.framed_ip:
            item["ip"] = r.framed_ip
        if r.calling_station_id:
            item["calling"] = r.calling_station_id
        if r.nas_port_id:
            item["port"] = r.nas_port_id
        if r.counters_32bit:
            item["c32"] = 1  # counters without Gigawords: a smaller newer value is a wrap (migration 0008)
        if r.status == STOP:
            item["stop"] = 1
            item["cause"] = r.terminate_cause
        elif r.status == START:
            item["start"] = 1  # may set aside a session the NAS's reboot closed (migration 0005)
        out.append(item)
    return _ENCODER.encode(out)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def write_params(rows: list[AcctRecord]) -> list:
    return [write_document(rows), settings.TIME_ZONE]


def _write_postgresql(rows: list[AcctRecord]) -> None:
    """One call of ``network_write_sessions`` (migrations 0004, 0005): upsert, keeping each row's growth, add
    it to the day's traffic and record the days online."""
    # psycopg's own cursor, not Django's: it binds the document server-side instead of quoting it into the
    # SQL text, and prepares the call once. Same connection (and transaction, if any);
    # wrap_database_errors turns psycopg's errors into Django's, and the connection's execute wrappers see the
    # statement (the RADIUS server's deadlines, radius/deadlines.py), as everywhere else.
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:

        def execute(sql, params, many, context):
            cursor.execute(sql, params, prepare=True)

        for wrapper in reversed(connection.execute_wrappers):
            execute = functools.partial(wrapper, execute)
        execute(WRITE_SQL, write_params(rows), False, {"connection": connection, "cursor": cursor})


WRITE_SQL = "SELECT count(*) FROM network_write_sessions(%s::json, %s::text)"


def _upsert_generic(rows: list[AcctRecord]) -> list[tuple[int, dt.date, int, int]]:
    """The same upsert row by row, for SQLite (one writer, so no locking is needed)."""
    usage = []
    for r in rows:
        session = Session.objects.filter(nas_id=r.nas_id, unique_id=r.unique_id).first()
        if session is not None and r.status == START and _reused(session, r):
            session.unique_id = f"{session.unique_id[:40]}:{session.pk}"
            session.save(update_fields=["unique_id"])
            session = None
        before_in = before_out = 0
        if session is None:
            session = Session(
                nas_id=r.nas_id,
                unique_id=r.unique_id,
                acct_session_id=r.acct_session_id,
                login_id=r.login_id,
                subscriber_id=r.subscriber_id,
                username=r.username,
                framed_ip=r.framed_ip,
                calling_station_id=r.calling_station_id,
                nas_port_id=r.nas_port_id,
                started_at=r.started_at,
                updated_at=r.event_time,
            )
        else:
            before_in, before_out = session.input_octets, session.output_octets
            session.started_at = min(session.started_at, r.started_at)
            session.updated_at = max(session.updated_at, r.event_time)
            session.framed_ip = r.framed_ip or session.framed_ip
            session.login_id = session.login_id or r.login_id
            session.subscriber_id = session.subscriber_id or r.subscriber_id
        wraps = r.counters_32bit
        session.input_octets = grown_counter(
            session.input_octets, r.input_octets, session.session_time, r.session_time, wraps
        )
        session.output_octets = grown_counter(
            session.output_octets, r.output_octets, session.session_time, r.session_time, wraps
        )
        session.counters_32bit = session.counters_32bit or r.counters_32bit
        session.session_time = max(session.session_time, r.session_time)
        if session.status == SessionStatus.CLOSED and session.terminate_cause == STALE:
            # The sweeper closed it, but it was alive (delayed records, e.g. spooled through an outage).
            if r.stopped:
                session.stopped_at, session.terminate_cause = r.event_time, r.terminate_cause
            elif r.event_time > session.stopped_at:
                session.status, session.stopped_at, session.terminate_cause = SessionStatus.OPEN, None, ""
        elif r.stopped and session.status == SessionStatus.OPEN:
            session.status = SessionStatus.CLOSED
            session.stopped_at = r.event_time
            session.terminate_cause = session.terminate_cause or r.terminate_cause
        delta_in, delta_out = session.input_octets - before_in, session.output_octets - before_out
        session.last_delta_in, session.last_delta_out = delta_in, delta_out
        session.save()
        if session.subscriber_id and (delta_in > 0 or delta_out > 0):
            usage.append((session.subscriber_id, timezone.localtime(session.updated_at).date(), delta_in, delta_out))
    return usage


def _reused(session: Session, start: AcctRecord) -> bool:
    """A Start, dated after a NAS reboot or the sweeper closed the session with its id, is a new session that
    reuses the id (see migration 0005, which does the same on PostgreSQL)."""
    return (
        session.status == SessionStatus.CLOSED
        and session.terminate_cause in (NAS_REBOOT, STALE)
        and start.event_time > session.stopped_at
    )


def _add_usage(usage: list[tuple[int, dt.date, int, int]]) -> None:
    """Add traffic deltas to the days' totals (SQLite; PostgreSQL does it in network_write_sessions)."""
    totals: dict[tuple[int, dt.date], list[int]] = {}
    for subscriber_id, day, delta_in, delta_out in usage:
        pair = totals.setdefault((subscriber_id, day), [0, 0])
        pair[0] = saturating_add(pair[0], delta_in)
        pair[1] = saturating_add(pair[1], delta_out)
    # One upsert per 500 days (SQLite ≥ 3.24 has the syntax): two writers adding the first traffic of a day at
    # once (two collectors) both add theirs, the second waiting for the first's row instead of failing to insert
    # it. The sum saturates, compared before it is added (SQLite turns an integer sum past 2^63 into a float).
    pg = connection.vendor == "postgresql"
    rows = sorted(totals.items())
    # A day written to once it is over is marked for the traffic rating to re-check (UsageDay.late).
    today = timezone.localtime(clock.now()).date()
    added = ", ".join(
        f"{column} = CASE WHEN network_usageday.{column} > {MAX_COUNTER} - excluded.{column} THEN {MAX_COUNTER} "
        f"ELSE network_usageday.{column} + excluded.{column} END"
        for column in ("input_octets", "output_octets")
    )
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            params: list = []
            for (subscriber_id, day), (delta_in, delta_out) in part:
                params += [subscriber_id, day if pg else day.isoformat(), delta_in, delta_out, day < today]
            cursor.execute(
                "INSERT INTO network_usageday (subscriber_id, day, input_octets, output_octets, late) VALUES "
                + ", ".join(["(%s, %s, %s, %s, %s)"] * len(part))
                + f" ON CONFLICT (subscriber_id, day) DO UPDATE SET {added}, "
                "late = network_usageday.late OR excluded.late",
                params,
            )


def close_nas_sessions(nas_id: int, at: dt.datetime, cause: str) -> int:
    """Accounting-On/Off: the NAS restarted, so every session it had open then is over. Sessions started
    after the event (the reconnect storm that follows it) are left alone, so the event can be replayed."""
    return Session.objects.filter(nas_id=nas_id, status=SessionStatus.OPEN, started_at__lte=at).update(
        status=SessionStatus.CLOSED, stopped_at=Greatest(F("updated_at"), at), terminate_cause=cause
    )


def sweep_stale_sessions(*, intervals: int | None = None) -> int:
    """Close the open sessions that no longer count as alive (a lost Stop, a NAS that crashed): by the same rule
    as simultaneous use (``selectors.session_alive_seconds``: ``intervals`` interim intervals of their NAS,
    ABONENT_RADIUS_SESSION_ALIVE_INTERVALS by default, plus a grace, at most two hours). They end at their last
    update: that is the last moment we know they were online; a later record of one reopens it."""
    from .selectors import alive_seconds_by_nas

    if intervals is None:
        intervals = settings.ABONENT_RADIUS_SESSION_ALIVE_INTERVALS
    from .monitoring.sampler import note_stranded

    now = clock.now()
    closed = 0
    newest: dict[int, dt.datetime] = {}
    for seconds, nas_ids in alive_seconds_by_nas(intervals).items():
        stale = Session.objects.filter(
            nas_id__in=nas_ids, status=SessionStatus.OPEN, updated_at__lt=now - dt.timedelta(seconds=seconds)
        )
        # Which NAS lose sessions, and their newest update: monitoring flags a NAS left with none (a silent NAS).
        newest.update(stale.values("nas_id").annotate(at=Max("updated_at")).order_by().values_list("nas_id", "at"))
        closed += stale.update(status=SessionStatus.CLOSED, stopped_at=F("updated_at"), terminate_cause=STALE)
    note_stranded(newest, now)
    return closed
