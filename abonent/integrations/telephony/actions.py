"""Writes of telephony.

Call events (``do_register_*``) come from the PBX, not from a person: no permission or audit row per event (Asterisk
sends thousands an hour), but each is idempotent: the call is found or created by its unique ``(source,
pbx_call_id)`` and every event sets only its own fields with a filtered UPDATE, so a replayed or reordered event
never undoes another's. Operators' changes (an extension, a call linked to a request) are audited actions.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.staff.permissions import Perm, check_branch, check_perm

from . import selectors
from .models import FINAL_STATUSES, Call, CallDirection, CallStatus, Extension

logger = logging.getLogger(__name__)

_UNKNOWN = object()
CALL_ID_MAX = 100  # Call.pbx_call_id's max_length

# 2-20 digits, optionally with a leading "*" or "#": what PBXs use as extensions.
_EXTENSION_CHARS = set("0123456789*#")


def ensure_call(
    source: str,
    pbx_call_id: str,
    *,
    caller_number: str = "",
    called_number: str = "",
    at: dt.datetime | None = None,
    direction: str = CallDirection.INBOUND,
) -> tuple[Call, bool]:
    """The call ``(source, pbx_call_id)``, created with the caller matched to subscribers when it is new. Two
    processes may create it at once: the unique constraint lets one win, the other reads the winner's row. An id
    longer than the column (Asterisk's may be 150 characters) is cut the same way for every event of the call."""
    pbx_call_id = pbx_call_id[:CALL_ID_MAX]
    found = Call.objects.filter(source=source, pbx_call_id=pbx_call_id).first()
    if found is not None:
        if caller_number and not found.caller_number:
            _fill_numbers(found, caller_number, called_number)
        return found, False
    moment = at or clock.now()
    e164 = selectors.normalize_number(caller_number) if direction == CallDirection.INBOUND else ""
    try:
        with transaction.atomic():
            call = Call.objects.create(
                source=source,
                pbx_call_id=pbx_call_id,
                direction=direction,
                caller_number=caller_number[:40],
                caller_e164=e164,
                called_number=called_number[:40],
                started_at=moment,
                created_at=clock.now(),
            )
    except IntegrityError:
        return Call.objects.get(source=source, pbx_call_id=pbx_call_id), False
    if e164:
        through = Call.subscribers.through
        through.objects.bulk_create(
            [through(call_id=call.pk, subscriber_id=s.pk) for s in selectors.match_subscribers(e164)]
        )
    return call, True


def _fill_numbers(call: Call, caller_number: str, called_number: str) -> None:
    """A row made by an event without numbers (a Hangup heard first, after ``abonent telephony`` restarted
    mid-call) takes them from a later one (the CDR), with the caller's subscribers: else the call was on no card."""
    e164 = selectors.normalize_number(caller_number) if call.direction == CallDirection.INBOUND else ""
    fields = {"caller_number": caller_number[:40], "caller_e164": e164}
    if called_number and not call.called_number:
        fields["called_number"] = called_number[:40]
    if Call.objects.filter(pk=call.pk, caller_number="").update(**fields) and e164:
        through = Call.subscribers.through
        through.objects.bulk_create(
            [through(call_id=call.pk, subscriber_id=s.pk) for s in selectors.match_subscribers(e164)],
            ignore_conflicts=True,
        )
    for name, value in fields.items():
        setattr(call, name, value)


@transaction.atomic
def do_register_ring(
    source: str,
    pbx_call_id: str,
    *,
    extension: str,
    caller_number: str = "",
    called_number: str = "",
    at=None,
    operator=_UNKNOWN,
) -> Call:
    """``extension`` rings for the call: it becomes the call's operator until someone answers. (The screen-pop is
    ``pops.send_pop``, sent apart so that this bookkeeping never delays it.) ``operator``: the extension's user
    when the caller already knows it (a cache), else looked up."""
    call, _created = ensure_call(source, pbx_call_id, caller_number=caller_number, called_number=called_number, at=at)
    if operator is _UNKNOWN:
        operator = selectors.operator_of(extension)
    Call.objects.filter(pk=call.pk, answered_at__isnull=True).update(extension=extension[:20], operator=operator)
    return call


@transaction.atomic
def do_register_outbound(source: str, pbx_call_id: str, *, extension: str, called_number: str = "", at=None) -> Call:
    """An operator dials out from ``extension``: the call is theirs from the start and pops no screen."""
    call, _created = ensure_call(
        source,
        pbx_call_id,
        caller_number=extension,
        called_number=called_number,
        at=at,
        direction=CallDirection.OUTBOUND,
    )
    Call.objects.filter(pk=call.pk, operator__isnull=True).update(
        extension=extension[:20], operator=selectors.operator_of(extension)
    )
    return call


@transaction.atomic
def do_register_answer(source: str, pbx_call_id: str, *, extension: str = "", at=None, operator=_UNKNOWN) -> Call:
    """Someone answered: the answering extension is the call's operator (a transfer answered elsewhere moves it
    there). A ring after the answer does not move it (``do_register_ring`` updates only unanswered calls)."""
    call, _created = ensure_call(source, pbx_call_id, at=at)
    moment = at or clock.now()
    Call.objects.filter(pk=call.pk, answered_at__isnull=True).update(status=CallStatus.ANSWERED, answered_at=moment)
    if extension:
        # Whoever answered is the operator, even when the CDR came first (it carries no extension of ours).
        if operator is _UNKNOWN:
            operator = selectors.operator_of(extension)
        Call.objects.filter(pk=call.pk).update(extension=extension[:20], operator=operator)
    return call


@transaction.atomic
def do_register_end(source: str, pbx_call_id: str, *, at=None, status: str | None = None) -> Call:
    """The call ended. ``status`` (busy, failed, missed) when the PBX said why it was not answered; a call that
    was never answered is missed. An answered call stays answered."""
    call, _created = ensure_call(source, pbx_call_id, at=at)
    moment = at or clock.now()
    Call.objects.filter(pk=call.pk, ended_at__isnull=True).update(ended_at=moment)
    unanswered = status if status in FINAL_STATUSES and status != CallStatus.ANSWERED else CallStatus.MISSED
    Call.objects.filter(pk=call.pk, status=CallStatus.RINGING).update(status=unanswered)
    return call


@transaction.atomic
def do_register_cdr(
    source: str,
    pbx_call_id: str,
    *,
    status: str,
    duration_seconds: int | None,
    recording_file: str = "",
    caller_number: str = "",
    called_number: str = "",
    started_at=None,
    answered_at=None,
    ended_at=None,
) -> Call:
    """The PBX's final record of the call: its status, talk time and recording are the authority over what the
    live events said (a CDR replayed sets the same values again). Returns the call as it was before."""
    call, _created = ensure_call(
        source, pbx_call_id, caller_number=caller_number, called_number=called_number, at=started_at
    )
    final = status if status in FINAL_STATUSES else CallStatus.MISSED
    fields: dict = {}
    if stored := recording_path(recording_file):
        fields["recording_file"] = stored
    if answered_at is not None:
        fields["answered_at"] = answered_at
    if ended_at is not None:
        fields["ended_at"] = ended_at
    if fields:
        Call.objects.filter(pk=call.pk).update(**fields)
    outcome: dict = {"status": final}
    if duration_seconds is not None:
        outcome["duration_seconds"] = max(0, duration_seconds)
    rows = Call.objects.filter(pk=call.pk)
    if final != CallStatus.ANSWERED:
        # A ring group writes one CDR per leg: a leg that rang out after a colleague answered says nothing of the call.
        rows = rows.exclude(status=CallStatus.ANSWERED)
    rows.update(**outcome)
    return call


@transaction.atomic
def do_register_recording(source: str, pbx_call_id: str, *, recording_file: str, at=None) -> Call:
    """A cloud PBX says the recording is ready (after the call's end)."""
    call, _created = ensure_call(source, pbx_call_id, at=at)
    if stored := recording_path(recording_file):
        Call.objects.filter(pk=call.pk).update(recording_file=stored)
        call.recording_file = stored
    return call


def recording_path(value: str) -> str:
    """The recording's path relative to ABONENT_RECORDINGS_DIR, or "" when it is not one: an absolute path outside
    the directory, "..", a NUL or an absurd length is dropped with a log line (the call is kept)."""
    text = (value or "").strip()
    if not text:
        return ""
    root = PurePosixPath(settings.ABONENT_RECORDINGS_DIR)
    path = PurePosixPath(text)
    if path.is_absolute():
        try:
            path = path.relative_to(root)
        except ValueError:
            logger.warning("telephony: recording %.200r is outside ABONENT_RECORDINGS_DIR; not kept", text)
            return ""
    if "\x00" in text or len(str(path)) > 255 or ".." in path.parts or not path.parts:
        logger.warning("telephony: recording name %.200r refused", text)
        return ""
    return str(path)


# --- operators' actions (audited) ------------------------------------------------------------------------------


@transaction.atomic
def do_set_extension(user, number: str, *, acting_user) -> Extension | None:
    """Give ``user`` the extension ``number`` (empty: take it away). An extension belongs to one operator: taking
    another's is refused, not silently moved."""
    check_perm(acting_user, Perm.TELEPHONY_MANAGE)
    number = (number or "").strip()
    current = Extension.objects.select_for_update().filter(user=user).first()
    before = {"extension": current.number if current else ""}
    if number and (len(number) > 20 or not set(number) <= _EXTENSION_CHARS):
        raise ValidationError(
            {"number": ValidationError(_("An extension is digits, * and # only (at most 20)."), code="invalid")}
        )
    if number and Extension.objects.filter(number=number).exclude(user=user).exists():
        raise ValidationError(
            {"number": ValidationError(_("This extension belongs to another operator."), code="taken")}
        )
    if not number:
        if current:
            current.delete()
        result = None
    elif current:
        current.number = number
        try:
            with transaction.atomic():
                current.save(update_fields=["number"])
        except IntegrityError:
            raise ValidationError(
                {"number": ValidationError(_("This extension belongs to another operator."), code="taken")}
            ) from None
        result = current
    else:
        try:
            with transaction.atomic():
                result = Extension.objects.create(user=user, number=number, created_at=clock.now())
        except IntegrityError:
            raise ValidationError(
                {"number": ValidationError(_("This extension belongs to another operator."), code="taken")}
            ) from None
    audit.record(
        actor=acting_user, action="telephony.extension_set", obj=user, before=before, after={"extension": number}
    )
    return result


@transaction.atomic
def do_link_call_ticket(call: Call, ticket, *, acting_user) -> Call:
    """Link ``call`` to the request it was about (the KPIs' calls per ticket). The ticket's subscriber must be
    in the user's branches."""
    check_perm(acting_user, Perm.TICKET_MANAGE)
    check_perm(acting_user, Perm.CALL_VIEW)  # an engineer handles requests but may not see (or change) calls
    call = Call.objects.select_for_update().get(pk=call.pk)
    check_branch(acting_user, ticket.subscriber.branch_id)
    if call.subscribers.exists() and not call.subscribers.filter(pk=ticket.subscriber_id).exists():
        # The KPIs count calls per request: a call of one subscriber about another's request is a mistake (or a
        # forged form), and the other card would show this call's link.
        raise ValidationError(
            {"ticket": ValidationError(_("The request is not of a subscriber of this call."), code="foreign_ticket")}
        )
    before = {"ticket": call.ticket_id}
    call.ticket = ticket
    call.save(update_fields=["ticket"])
    audit.record(
        actor=acting_user,
        action="telephony.call_linked",
        obj=call,
        subscriber_id=ticket.subscriber_id,
        before=before,
        after={"ticket": ticket.pk},
    )
    return call
