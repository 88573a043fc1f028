"""Traffic from external collectors (NetFlow, IPTV): batches of per-session records added to ``UsageDay``.

A record names its session (``session_id``, or the NAS and its Acct-Session-Id) and a local day, with the bytes
from the subscriber (``input_octets``) and to the subscriber (``output_octets``). Idempotent by ``(source,
record_id)``: a batch resent adds only what was not there yet, by the unique constraint (``INSERT … ON CONFLICT
DO NOTHING RETURNING``: a concurrent resend waits for the first, then finds its rows). A batch is taken whole
or not at all: any invalid record refuses it with a field code per record (``records.<n>.<field>``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.staff.permissions import Perm, check_perm

from .accounting import MAX_COUNTER, _add_usage
from .models import Session, UsageRecord

MAX_BATCH = 1000


@dataclass(frozen=True)
class UsageRecordData:
    source: str
    record_id: str
    day: dt.date
    input_octets: int
    output_octets: int
    session_id: int | None = None
    nas_id: int | None = None
    acct_session_id: str | None = None


@transaction.atomic
def do_add_usage_records(records: list[UsageRecordData], *, acting_user) -> dict[str, int]:
    """Add a batch of collector records; returns how many were received, added and already known."""
    check_perm(acting_user, Perm.NETWORK_MANAGE)
    if len(records) > MAX_BATCH:
        raise ValidationError(
            {
                "records": ValidationError(
                    _("At most %(limit)d records in one batch.") % {"limit": MAX_BATCH}, code="too_many"
                )
            }
        )
    errors: dict[str, list[ValidationError]] = {}
    today = timezone.localtime(clock.now()).date()
    for n, r in enumerate(records):
        _check_record(n, r, today, errors)
    sessions = _sessions(records, errors)
    seen: dict[tuple[str, str], UsageRecordData] = {}
    for n, r in enumerate(records):
        earlier = seen.setdefault((r.source, r.record_id), r)
        if earlier is not r and earlier != r:
            _error(errors, n, "record_id", _("The batch has this record twice with different content."), "duplicate")
    if errors:
        raise ValidationError(errors)
    unique = list(seen.values())
    if not unique:
        return {"received": 0, "added": 0, "duplicates": 0}
    now = clock.now()
    rows = [
        (r.source, r.record_id, sessions[_session_key(r)].pk, sessions[_session_key(r)].subscriber_id, r.day, r)
        for r in unique
    ]
    added = _insert(rows, now)
    fresh = [row for row in rows if (row[0], row[1]) in added]
    _add_usage([(subscriber, day, r.input_octets, r.output_octets) for _s, _i, _p, subscriber, day, r in fresh])
    if fresh:
        first = UsageRecord.objects.filter(source=fresh[0][0], record_id=fresh[0][1]).first()
        audit.record(
            actor=acting_user,
            action="network.usage_records_added",
            obj=first,
            after={"records": len(records), "added": len(fresh), "sources": sorted({r[0] for r in fresh})},
        )
    return {"received": len(records), "added": len(fresh), "duplicates": len(records) - len(fresh)}


def _error(errors, n: int, field: str, message: str, code: str) -> None:
    errors.setdefault(f"records.{n}.{field}", []).append(ValidationError(message, code=code))


def _check_record(n: int, r: UsageRecordData, today: dt.date, errors) -> None:
    if not r.source.strip() or len(r.source) > 50:
        _error(errors, n, "source", _("Name the source in 1 to 50 characters."), "invalid")
    if not r.record_id.strip() or len(r.record_id) > 200:
        _error(errors, n, "record_id", _("Give the record an id of 1 to 200 characters."), "invalid")
    if r.day > today:
        _error(errors, n, "day", _("Traffic cannot be recorded for a day in the future."), "future")
    for field in ("input_octets", "output_octets"):
        value = getattr(r, field)
        if value < 0:
            _error(errors, n, field, _("A byte counter cannot be negative."), "negative")
        elif value > MAX_COUNTER:
            _error(errors, n, field, _("The byte counter is beyond what can be stored."), "too_large")
    if r.session_id is None and (r.nas_id is None or not r.acct_session_id):
        _error(errors, n, "session", _("Name the session: its id, or the NAS and the Acct-Session-Id."), "required")


def _session_key(r: UsageRecordData):
    return ("id", r.session_id) if r.session_id is not None else ("nas", r.nas_id, r.acct_session_id)


def _sessions(records: list[UsageRecordData], errors) -> dict:
    """The sessions the records name, each with its subscriber; a name matching none (or one of no known
    subscriber) is an error of that record. An Acct-Session-Id a NAS reused names its newest session."""
    by_id = Session.objects.in_bulk([r.session_id for r in records if r.session_id is not None])
    wanted = {(r.nas_id, r.acct_session_id) for r in records if r.session_id is None and r.nas_id and r.acct_session_id}
    by_nas: dict[tuple[int, str], Session] = {}
    if wanted:
        found = Session.objects.filter(
            nas_id__in={nas for nas, _a in wanted}, acct_session_id__in={a for _n, a in wanted}
        ).order_by("started_at", "id")
        for session in found:
            by_nas[(session.nas_id, session.acct_session_id)] = session
    result = {}
    for n, r in enumerate(records):
        key = _session_key(r)
        if key[0] == "id":
            session = by_id.get(r.session_id)
        elif r.nas_id and r.acct_session_id:
            session = by_nas.get((r.nas_id, r.acct_session_id))
        else:
            continue  # reported by _check_record
        if session is None:
            _error(errors, n, "session", _("No such session."), "unknown_session")
        elif session.subscriber_id is None:
            _error(errors, n, "session", _("The session belongs to no known subscriber."), "no_subscriber")
        else:
            result[key] = session
    return result


def _insert(rows, now: dt.datetime) -> set[tuple[str, str]]:
    """Insert the records, skipping the ones already there; returns the keys this call inserted."""
    pg = connection.vendor == "postgresql"
    created_at = now if pg else connection.ops.adapt_datetimefield_value(now)
    added: set[tuple[str, str]] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(part))
            params = []
            for source, record_id, session_id, subscriber_id, day, r in part:
                day_value = day if pg else day.isoformat()
                params += [source, record_id, session_id, subscriber_id, day_value, r.input_octets, r.output_octets]
                params.append(created_at)
            cursor.execute(
                "INSERT INTO network_usagerecord (source, record_id, session_id, subscriber_id, day, input_octets, "
                f"output_octets, created_at) VALUES {values} ON CONFLICT (source, record_id) DO NOTHING "
                "RETURNING source, record_id",
                params,
            )
            added.update((source, record_id) for source, record_id in cursor.fetchall())
    return added
