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

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.staff.permissions import Perm, allowed_branch_ids, check_perm
from abonent.subscribers.models import Subscriber

from .accounting import MAX_COUNTER, _add_usage
from .models import Session, UsageRecord

MAX_BATCH = 1000
# The rating re-checks periods this many days back (``billing.rating.traffic``, same setting): older traffic would
# never be charged, so it is refused rather than taken silently.
DEFAULT_LOOKBACK_DAYS = 40
# A collector's day may start before the operator's (its own time zone): a session's traffic is taken from the day
# before the session's local start day on.
SESSION_DAY_SLACK = dt.timedelta(days=1)


def lookback_days() -> int:
    return int(getattr(settings, "ABONENT_USAGE_RATING_LOOKBACK_DAYS", DEFAULT_LOOKBACK_DAYS))


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
    sessions = _sessions(records, errors, acting_user)
    for n, r in enumerate(records):
        session = sessions.get(_session_key(r))
        if (
            session is not None
            and f"records.{n}.day" not in errors
            and r.day < timezone.localtime(session.started_at).date() - SESSION_DAY_SLACK
        ):
            _error(errors, n, "day", _("The day is before the session started."), "out_of_window")
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
    _check_resent(records, [row for row in rows if (row[0], row[1]) not in added])
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
    elif r.day < today - dt.timedelta(days=lookback_days()):
        _error(errors, n, "day", _("The day is too long ago: its traffic can no longer be rated."), "out_of_window")
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


def _sessions(records: list[UsageRecordData], errors, user) -> dict:
    """The sessions the records name, each with its subscriber; a name matching none (or one of no known
    subscriber, or of a subscriber in a branch the user may not work in: not told apart from an unknown one)
    is an error of that record. An Acct-Session-Id a NAS reused names its newest session."""
    by_id = Session.objects.in_bulk([r.session_id for r in records if r.session_id is not None])
    wanted = {(r.nas_id, r.acct_session_id) for r in records if r.session_id is None and r.nas_id and r.acct_session_id}
    by_nas: dict[tuple[int, str], Session] = {}
    if wanted:
        found = Session.objects.filter(
            nas_id__in={nas for nas, _a in wanted}, acct_session_id__in={a for _n, a in wanted}
        ).order_by("started_at", "id")
        for session in found:
            by_nas[(session.nas_id, session.acct_session_id)] = session
    branches = allowed_branch_ids(user)
    hidden: set[int] = set()
    if branches is not None:
        named = {s.subscriber_id for s in [*by_id.values(), *by_nas.values()] if s.subscriber_id is not None}
        hidden = set(
            Subscriber.objects.filter(pk__in=named).exclude(branch_id__in=branches).values_list("pk", flat=True)
        )
    result = {}
    for n, r in enumerate(records):
        key = _session_key(r)
        if key[0] == "id":
            session = by_id.get(r.session_id)
        elif r.nas_id and r.acct_session_id:
            session = by_nas.get((r.nas_id, r.acct_session_id))
        else:
            continue  # reported by _check_record
        if session is None or session.subscriber_id in hidden:
            _error(errors, n, "session", _("No such session."), "unknown_session")
        elif session.subscriber_id is None:
            _error(errors, n, "session", _("The session belongs to no known subscriber."), "no_subscriber")
        else:
            result[key] = session
    return result


def _check_resent(records: list[UsageRecordData], known) -> None:
    """Records already received must come back the same: a collector that reuses a record id for other traffic
    (restarted, its counter reset) would otherwise lose that traffic silently. Refuses the batch (422)."""
    if not known:
        return
    stored = {
        (source, record_id): rest
        for source, record_id, *rest in UsageRecord.objects.filter(
            source__in={row[0] for row in known}, record_id__in={row[1] for row in known}
        ).values_list("source", "record_id", "session_id", "day", "input_octets", "output_octets")
    }
    errors: dict[str, list[ValidationError]] = {}
    position = {}
    for n, r in enumerate(records):
        position.setdefault((r.source, r.record_id), n)
    for source, record_id, session_id, _subscriber, day, r in known:
        if stored.get((source, record_id)) != [session_id, day, r.input_octets, r.output_octets]:
            message = _("A record with this id was received before with other traffic.")
            _error(errors, position[(source, record_id)], "record_id", message, "record_id_conflict")
    if errors:
        raise ValidationError(errors)


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
