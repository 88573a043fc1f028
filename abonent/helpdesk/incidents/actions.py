"""Writes of mass incidents. Each is atomic; checks its actor (``incident.manage``); validates everything before it
writes anything; locks the incident's row, so two changes of one incident run one after the other; writes an audit
row; emits its event after commit.

Opening or changing an open incident recomputes who it affects (``affected.store_affected``: set-based SQL) and links
their tickets. An incident is not a branch's: a NAS and a street serve several. A branch-limited operator may open one
and sees its affected subscribers of their branches only; a message they send reaches their branches only (the bulk
message carries its author's branches). The compensation is in ``compensation.py``.
"""

from __future__ import annotations

import hashlib

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events
from abonent.core.deadlines import db_deadline
from abonent.notifications.actions import BulkData, do_create_bulk
from abonent.notifications.models import Channel
from abonent.notifications.selectors import audience_ids
from abonent.staff.permissions import Perm, allowed_branch_ids, check_perm

from . import affected
from .models import Incident, IncidentArea, IncidentMessage, IncidentStatus
from .validation import IncidentData, clean_ends_at, clean_incident

AUDITED_FIELDS = ["title", "description", "kind", "status", "starts_at", "ends_at", "affected_count"]
AUDIENCE = "incident"  # the notifications audience of an incident's affected (audiences.py)
MESSAGES_PER_MINUTE = 600


def _lock(incident: Incident) -> Incident:
    db_deadline(lock=10, statement=60)
    return Incident.objects.select_for_update().get(pk=incident.pk)


def _scope(incident: Incident) -> dict:
    return {
        "nas": sorted(incident.nas.values_list("pk", flat=True)),
        "areas": [str(a) for a in incident.areas.all()],
    }


def _write_scope(incident: Incident, data: IncidentData) -> None:
    incident.nas.set(data.nas_ids)
    incident.areas.all().delete()
    IncidentArea.objects.bulk_create(
        [
            IncidentArea(incident=incident, city=a.city, street=a.street, house_from=a.house_from, house_to=a.house_to)
            for a in data.areas
        ]
    )


def _recompute(incident: Incident, now) -> None:
    incident.affected_count = affected.store_affected(incident, now)
    incident.save(update_fields=["affected_count"])
    affected.unlink_stale_tickets(incident)
    affected.link_tickets(incident, now)


@transaction.atomic
def do_open_incident(data: IncidentData, *, acting_user) -> Incident:
    """A new open incident over ``data``'s NAS and areas; its affected subscribers stored and their tickets linked."""
    check_perm(acting_user, Perm.INCIDENT_MANAGE)
    data = clean_incident(data)
    db_deadline(lock=10, statement=60)
    now = clock.now()
    incident = Incident.objects.create(
        title=data.title,
        description=data.description,
        kind=data.kind,
        starts_at=data.starts_at,
        created_by=acting_user,
        created_at=now,
        updated_at=now,
    )
    _write_scope(incident, data)
    _recompute(incident, now)
    audit.record(
        actor=acting_user,
        action="incident.opened",
        obj=incident,
        after={**audit.snapshot(incident, AUDITED_FIELDS), **_scope(incident)},
    )
    events.emit("incident.opened", incident_id=incident.pk)
    return incident


@transaction.atomic
def do_update_incident(incident: Incident, data: IncidentData, *, acting_user) -> Incident:
    """Change an open incident's text, start and scope; who it affects is computed again (those no longer in it are
    dropped from it, the new ones added)."""
    check_perm(acting_user, Perm.INCIDENT_MANAGE)
    data = clean_incident(data)
    incident = _lock(incident)
    if not incident.is_open:
        raise ValidationError(_("A resolved incident cannot be changed."), code="incident_resolved")
    before = {**audit.snapshot(incident, AUDITED_FIELDS), **_scope(incident)}
    now = clock.now()
    incident.title, incident.description, incident.kind = data.title, data.description, data.kind
    incident.starts_at, incident.updated_at = data.starts_at, now
    incident.save(update_fields=["title", "description", "kind", "starts_at", "updated_at"])
    _write_scope(incident, data)
    _recompute(incident, now)
    old, new = audit.diff(before, {**audit.snapshot(incident, AUDITED_FIELDS), **_scope(incident)})
    if new:
        audit.record(actor=acting_user, action="incident.updated", obj=incident, before=old, after=new)
    events.emit("incident.updated", incident_id=incident.pk)
    return incident


@transaction.atomic
def do_refresh_incident(incident: Incident) -> Incident:
    """The system's recomputation of an open incident (the periodic job ``incidents.refresh_affected``): a subscriber
    who connected to its NAS after it was opened comes in, their tickets are linked. Audited only when the count
    moved, so a quiet incident leaves no row every five minutes. A resolved one is left as it is."""
    incident = _lock(incident)
    if not incident.is_open:
        return incident
    before = incident.affected_count
    _recompute(incident, clock.now())
    if incident.affected_count != before:
        audit.record(
            actor=None,
            action="incident.refreshed",
            obj=incident,
            before={"affected_count": before},
            after={"affected_count": incident.affected_count},
        )
    return incident


@transaction.atomic
def do_resolve_incident(incident: Incident, *, acting_user, ends_at=None) -> Incident:
    """Close an incident at ``ends_at`` (default now). Its affected set is kept as it was (the compensation reads
    it); the portal's banner goes away. Resolving a resolved one changes nothing."""
    check_perm(acting_user, Perm.INCIDENT_MANAGE)
    incident = _lock(incident)
    if not incident.is_open:
        return incident
    now = clock.now()
    ends_at = clean_ends_at(incident.starts_at, ends_at, now)
    incident.status, incident.ends_at, incident.updated_at = IncidentStatus.RESOLVED, ends_at, now
    incident.save(update_fields=["status", "ends_at", "updated_at"])
    audit.record(
        actor=acting_user,
        action="incident.resolved",
        obj=incident,
        before={"status": IncidentStatus.OPEN},
        after={"status": incident.status, "ends_at": audit.snapshot(incident, ["ends_at"])["ends_at"]},
    )
    events.emit("incident.resolved", incident_id=incident.pk)
    return incident


def message_digest(channel: str, subject: str, body: str, branch_ids=None) -> str:
    """The key of one message: its channel, its text as the channel sends it (a subject only by e-mail: an SMS with
    a subject typed in is the same SMS) and the branches it reaches (``None``: all). The branches are part of it
    because a branch-limited author's message reaches their branches only: another branch's operator sending the
    same text is another message, to other people, not "sent already"."""
    subject = subject.strip() if channel == Channel.EMAIL else ""
    scope = "*" if branch_ids is None else ",".join(str(pk) for pk in sorted(branch_ids))
    return hashlib.sha256("\x1f".join([channel, subject, body.strip(), scope]).encode()).hexdigest()


@transaction.atomic
def do_message_incident(
    incident: Incident, *, channel: str, subject: str, body: str, acting_user, per_minute: int = MESSAGES_PER_MINUTE
) -> tuple[IncidentMessage, bool]:
    """One message to everyone the incident affects, as a bulk message (throttled, quiet hours kept, the author's
    branches only). Keyed by its channel and text: sending the same message again, twice in a row or from two
    requests at once, returns the first with ``created=False`` and queues nothing more. Needs ``incident.manage``
    and ``notification.bulk``."""
    check_perm(acting_user, Perm.INCIDENT_MANAGE)
    check_perm(acting_user, Perm.NOTIFICATION_BULK)
    if channel not in Channel.values:
        raise ValidationError({"channel": ValidationError(_("Unknown channel."), code="channel_invalid")})
    incident = _lock(incident)
    branch_ids = allowed_branch_ids(acting_user)
    digest = message_digest(channel, subject or "", body or "", branch_ids)
    # Sent already to everyone (by one without a branch limit) covers this author's branches too.
    everyone = message_digest(channel, subject or "", body or "", None)
    existing = (
        IncidentMessage.objects.filter(incident=incident, digest__in={digest, everyone}).order_by("created_at").first()
    )
    if existing is not None:
        return existing, False
    bulk = do_create_bulk(
        BulkData(AUDIENCE, incident.pk, channel, subject or "", body or "", False, per_minute),
        # whom it will reach: the author's branches' affected (the whole set's count for one without a limit)
        recipients=incident.affected_count
        if branch_ids is None
        else audience_ids(AUDIENCE, incident.pk, branch_ids=branch_ids).count(),
        acting_user=acting_user,
    )
    message = IncidentMessage.objects.create(
        incident=incident, digest=digest, bulk=bulk, created_by=acting_user, created_at=clock.now()
    )
    audit.record(
        actor=acting_user,
        action="incident.messaged",
        obj=incident,
        after={"channel": channel, "bulk": bulk.pk, "recipients": bulk.recipients},
    )
    return message, True
