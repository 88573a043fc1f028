"""Writes of the helpdesk. Each is atomic; checks its actor; validates everything before it writes anything;
writes an audit row; tells the subscriber of a staff reply or a status change (the ``ticket_updated`` notification,
queued in the same transaction); emits ``ticket.created`` / ``ticket.updated`` after commit.

``acting_user=None`` is the ticket's own subscriber, in the portal or its API (ADR 0017): the portal has already
narrowed to the subscriber's own tickets, so no staff permission applies, but a subscriber's limits do (tickets and
replies per day, text lengths, what they may do to a status). Staff need ``ticket.manage`` and the subscriber's
branch.
"""

from __future__ import annotations

import datetime as dt
import functools
from contextvars import ContextVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from abonent.core import audit, clock, events, sequences
from abonent.core.models import AuditEvent
from abonent.notifications.models import Event
from abonent.notifications.queueing import notify
from abonent.notifications.selectors import preference_of
from abonent.staff.permissions import Perm, check_branch, check_perm
from abonent.subscribers.models import Subscriber

from . import attachments as files
from . import rules, sla
from .models import (
    FINISHED_STATUSES,
    OPEN_STATUSES,
    CommentAuthor,
    Ticket,
    TicketAttachment,
    TicketComment,
    TicketSource,
    TicketStatus,
)
from .validation import TicketData, clean_text, clean_ticket

__all__ = [
    "REOPENED_STATUS",
    "TicketData",
    "clean_text",
    "clean_ticket",
    "do_change_ticket_status",
    "do_comment_ticket",
    "do_open_ticket",
    "ticket_label",
]

TICKET_SEQUENCE = "helpdesk_ticket"
# The same request or reply from a subscriber again within this time is a double submit or a client's retry: the
# first one is returned, nothing is written.
REPEAT_WINDOW = dt.timedelta(minutes=2)
# A subscriber's reopened ticket is new again: it waits for staff like one just opened.
REOPENED_STATUS = TicketStatus.NEW


# --- shared steps -------------------------------------------------------------------------------------------


def _check_staff(user, subscriber_id: int) -> None:
    check_perm(user, Perm.TICKET_MANAGE)
    check_branch(user, Subscriber.objects.values_list("branch_id", flat=True).get(pk=subscriber_id))


def _lock_subscriber(subscriber_id: int) -> None:
    # A subscriber's writes one at a time, so that two requests sent at once cannot both pass the day's limit.
    Subscriber.objects.select_for_update().filter(pk=subscriber_id).values_list("pk", flat=True).get()


def _lock(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _apply_status(ticket: Ticket, status: str, now: dt.datetime) -> list[str]:
    """Move to ``status``; returns the fields changed (the SLA clock's too: helpdesk/sla.py)."""
    # ``closed_at`` is when the ticket was finished: kept from resolved to closed, cleared when it opens again.
    if status in FINISHED_STATUSES and ticket.closed_at is None:
        ticket.closed_at = now
    elif status in OPEN_STATUSES:
        ticket.closed_at = None
    before, ticket.status = ticket.status, status
    return ["status", "closed_at", *sla.on_status_change(ticket, before, status, now)]


# The files the running action has written (``_removes_files_on_failure``), so that a failure anywhere after they were
# written, up to and including the commit of the action's transaction, removes them again.
_WRITTEN: ContextVar[list[str] | None] = ContextVar("helpdesk_written_files", default=None)


def _removes_files_on_failure(action):
    """Wrap an action outside its ``transaction.atomic``: the files it stored are removed when it raises, whether the
    failure came while writing them, after (the save, the audit row, the notification) or at the commit."""

    @functools.wraps(action)
    def wrapper(*args, **kwargs):
        written: list[str] = []
        token = _WRITTEN.set(written)
        try:
            return action(*args, **kwargs)
        except BaseException:
            for name in written:
                files.remove(name)
            raise
        finally:
            _WRITTEN.reset(token)

    return wrapper


def _attach(ticket: Ticket, comment: TicketComment, checked: list, now: dt.datetime) -> list[int]:
    """Store the checked files of ``comment``. A file written for a transaction that then rolls back is removed
    again (``transaction.on_commit`` is never called for it; the ``except`` below is, and the action's
    ``_removes_files_on_failure`` for a failure after this returned)."""
    stored: list[str] = _WRITTEN.get()
    if stored is None:
        stored = []
    ids = []
    try:
        for upload in checked:
            stored_name, digest = files.store(upload)
            stored.append(stored_name)
            ids.append(
                TicketAttachment.objects.create(
                    ticket=ticket,
                    comment=comment,
                    file_name=upload.name,
                    stored_name=stored_name,
                    content_type=upload.content_type,
                    size_bytes=upload.size_bytes,
                    sha256=digest,
                    created_at=now,
                ).pk
            )
    except BaseException:
        for name in stored:
            files.remove(name)
        raise
    return ids


def _same_files(comment: TicketComment, checked: list) -> bool:
    """Whether ``comment`` carries the very files of ``checked`` (by content): only then is a message sent again a
    double submit; the same words with another photo are a new message."""
    stored = sorted(TicketAttachment.objects.filter(comment=comment).values_list("sha256", flat=True))
    return stored == sorted(upload.sha256 for upload in checked)


def ticket_label(number: int) -> str:
    return _("#%(number)s") % {"number": number}


def _link(ticket: Ticket) -> str:
    base = settings.ABONENT_PUBLIC_URL
    if not base:
        return ""
    try:
        return base + reverse("portal:request", args=[ticket.pk])
    except NoReverseMatch:
        return ""


def _tell_subscriber(ticket: Ticket, *, key: str) -> None:
    """Queue ``ticket_updated`` for the ticket's subscriber, its values in the language their messages are in."""
    preference = preference_of(ticket.subscriber)
    language = (preference.language if preference else "") or settings.LANGUAGE_CODE
    with translation.override(language):
        context = {
            "ticket": ticket_label(ticket.number),
            "ticket_status": rules.subscriber_status_label(ticket.status),
            "ticket_link": _link(ticket),
        }
    notify(ticket.subscriber_id, Event.TICKET_UPDATED, key=key, context=context)


def _too_many(count: int, message: str, code: str) -> ValidationError:
    return ValidationError(message % {"count": count}, code=code)


def _reopenings_since(subscriber_id: int, since: dt.datetime) -> int:
    """Tickets the subscriber reopened (the reopen button, not a reply) since ``since``. Read from the audit log,
    which records every status change in the same transaction: a subscriber's own is the one without a staff
    actor, and the only one of theirs that ends in ``REOPENED_STATUS`` is a reopening."""
    return AuditEvent.objects.filter(
        subscriber_id=subscriber_id,
        action="ticket.status_changed",
        actor__isnull=True,
        created_at__gt=since,
        after__status=REOPENED_STATUS,
    ).count()


def _subscriber_writes(subscriber_id: int, now: dt.datetime) -> int:
    """The subscriber's messages and reopenings in the last day: one budget (``rules.comments_per_day``), since
    each puts a ticket in front of the staff again and tells the CRM (``ticket.updated``)."""
    since = now - rules.DAY
    written = TicketComment.objects.filter(
        ticket__subscriber_id=subscriber_id, author_kind=CommentAuthor.SUBSCRIBER, created_at__gt=since
    ).count()
    return written + _reopenings_since(subscriber_id, since)


# --- actions ------------------------------------------------------------------------------------------------


@_removes_files_on_failure
@transaction.atomic
def do_open_ticket(
    subscriber: Subscriber, data: TicketData, *, source: str, acting_user, uploads: list | None = None
) -> Ticket:
    """A new ticket of ``subscriber`` whose first comment is ``data.text``, with ``uploads`` (``attachments.Upload``)
    on it; its SLA timers start (``sla.schedule``). From the portal (``acting_user=None``):
    at most ``rules.tickets_per_day()`` in any 24 hours (``too_many_tickets``), priority normal; the same request
    again within ``REPEAT_WINDOW`` returns the first."""
    by_subscriber = acting_user is None
    if not by_subscriber:
        _check_staff(acting_user, subscriber.pk)
    if source not in TicketSource.values:
        raise ValidationError({"source": ValidationError(_("Unknown source."), code="source_invalid")})
    data = clean_ticket(data, by_subscriber=by_subscriber)
    checked = files.check(uploads or [])
    _lock_subscriber(subscriber.pk)
    now = clock.now()
    if by_subscriber:
        repeats = Ticket.objects.filter(
            subscriber_id=subscriber.pk,
            created_by__isnull=True,
            created_at__gt=now - REPEAT_WINDOW,
            category=data.category,
            subject=data.subject,
            address=data.address,
        ).order_by("created_at", "id")
        for repeat in repeats:
            first = repeat.comments.order_by("created_at", "id").first()
            if first is not None and first.text == data.text and _same_files(first, checked):
                return repeat
        limit = rules.tickets_per_day()
        opened = Ticket.objects.filter(
            subscriber_id=subscriber.pk, created_by__isnull=True, created_at__gt=now - rules.DAY
        ).count()
        if opened >= limit:
            raise _too_many(
                limit,
                ngettext(
                    "You have opened %(count)s request in the last 24 hours, the most we take. Add to an open "
                    "request or call us.",
                    "You have opened %(count)s requests in the last 24 hours, the most we take. Add to an open "
                    "request or call us.",
                    limit,
                ),
                "too_many_tickets",
            )
    ticket = Ticket.objects.create(
        number=sequences.allocate(TICKET_SEQUENCE)[0],
        subscriber=subscriber,
        category=data.category,
        subject=data.subject,
        address=data.address,
        priority=data.priority,
        source=source,
        created_by=acting_user,
        created_at=now,
        updated_at=now,
        public_updated_at=now,
    )
    ticket.save(update_fields=sla.schedule(ticket))
    comment = TicketComment.objects.create(
        ticket=ticket,
        author_kind=CommentAuthor.SUBSCRIBER if by_subscriber else CommentAuthor.STAFF,
        author=acting_user,
        text=data.text,
        is_public=True,
        created_at=now,
    )
    attached = _attach(ticket, comment, checked, now)
    audit.record(
        actor=acting_user,
        action="ticket.opened",
        obj=ticket,
        subscriber_id=subscriber.pk,
        after={
            **audit.snapshot(ticket, ["number", "category", "subject", "address", "priority", "source"]),
            **({"attachments": attached} if attached else {}),
        },
    )
    events.emit("ticket.created", ticket_id=ticket.pk, subscriber_id=subscriber.pk)
    return ticket


@_removes_files_on_failure
@transaction.atomic
def do_comment_ticket(
    ticket: Ticket,
    *,
    text: str,
    acting_user,
    is_public: bool = True,
    status: str | None = None,
    uploads: list | None = None,
) -> TicketComment:
    """Add to the thread. Staff: a public reply (the subscriber is told) or an internal note, optionally moving the
    ticket to ``status`` in the same step (one message to the subscriber). The subscriber (``acting_user=None``):
    always public, at most ``rules.comments_per_day()`` in any 24 hours (``too_many_comments``), the same text again
    within ``REPEAT_WINDOW`` returns the first; a reply moves a
    ticket waiting for them back to "in progress", and reopens a finished one within the reopen window
    (after it: ``ticket_closed``)."""
    by_subscriber = acting_user is None
    if by_subscriber:
        if status is not None or not is_public:
            raise ValueError("a subscriber's comment is public and sets no status")
        _lock_subscriber(ticket.subscriber_id)
    else:
        _check_staff(acting_user, ticket.subscriber_id)
        if status is not None and status not in TicketStatus.values:
            raise ValidationError({"status": ValidationError(_("Unknown status."), code="status_invalid")})
    text = clean_text(text)
    # Files are checked before anything is written: one too large or of a refused type saves nothing of the message.
    checked = files.check(uploads or [])
    ticket = _lock(ticket)
    now = clock.now()
    before = ticket.status
    after = status or before
    if by_subscriber:
        repeats = TicketComment.objects.filter(
            ticket=ticket, author_kind=CommentAuthor.SUBSCRIBER, text=text, created_at__gt=now - REPEAT_WINDOW
        ).order_by("created_at", "id")
        for repeat in repeats:
            if _same_files(repeat, checked):
                return repeat
        limit = rules.comments_per_day()
        if _subscriber_writes(ticket.subscriber_id, now) >= limit:
            raise _too_many(
                limit,
                ngettext(
                    "You have written %(count)s message in the last 24 hours, the most we take. Please call us.",
                    "You have written %(count)s messages in the last 24 hours, the most we take. Please call us.",
                    limit,
                ),
                "too_many_comments",
            )
        if before in FINISHED_STATUSES:
            if not rules.can_reopen(ticket, now):
                raise ValidationError(_("This request is closed. Please open a new one."), code="ticket_closed")
            after = REOPENED_STATUS
        elif before == TicketStatus.WAITING_SUBSCRIBER:
            after = TicketStatus.IN_PROGRESS
    comment = TicketComment.objects.create(
        ticket=ticket,
        author_kind=CommentAuthor.SUBSCRIBER if by_subscriber else CommentAuthor.STAFF,
        author=acting_user,
        text=text,
        is_public=is_public,
        created_at=now,
    )
    attached = _attach(ticket, comment, checked, now)
    fields = ["updated_at"]
    ticket.updated_at = now
    if is_public or after != before:
        # An internal note alone changes nothing the subscriber sees, so it does not move "updated" for them.
        ticket.public_updated_at = now
        fields.append("public_updated_at")
    if not by_subscriber and is_public and ticket.first_response_at is None:
        ticket.first_response_at = now
        fields += ["first_response_at", *sla.on_first_response(ticket, now)]
    if after != before:
        fields += _apply_status(ticket, after, now)
    ticket.save(update_fields=fields)
    changed = {"status": after} if after != before else {}
    audit.record(
        actor=acting_user,
        action="ticket.commented",
        obj=ticket,
        subscriber_id=ticket.subscriber_id,
        before={"status": before} if changed else {},
        after={
            "comment": comment.pk,
            "is_public": is_public,
            **changed,
            **({"attachments": attached} if attached else {}),
        },
    )
    if not by_subscriber and (is_public or changed):
        _tell_subscriber(ticket, key=f"ticket:{ticket.pk}:comment:{comment.pk}")
    events.emit(
        "ticket.updated", ticket_id=ticket.pk, subscriber_id=ticket.subscriber_id, comment_id=comment.pk, status=after
    )
    return comment


@transaction.atomic
def do_change_ticket_status(ticket: Ticket, *, status: str, acting_user, reason: str = "") -> Ticket:
    """Move ``ticket`` to ``status``; the same status again writes nothing (a double submit). Staff: any status, the
    subscriber is told. The subscriber (``acting_user=None``): close their ticket, or reopen a finished one within
    the reopen window (``REOPENED_STATUS``); anything else is ``status_not_allowed``."""
    by_subscriber = acting_user is None
    if status not in TicketStatus.values:
        raise ValidationError({"status": ValidationError(_("Unknown status."), code="status_invalid")})
    if by_subscriber:
        _lock_subscriber(ticket.subscriber_id)
    else:
        _check_staff(acting_user, ticket.subscriber_id)
    ticket = _lock(ticket)
    if ticket.status == status:
        return ticket
    now = clock.now()
    if by_subscriber:
        closing = status == TicketStatus.CLOSED
        reopening = status == REOPENED_STATUS and ticket.status in FINISHED_STATUSES
        if not (closing or reopening):
            raise ValidationError(_("This change is made by our staff."), code="status_not_allowed")
        if reopening and not rules.can_reopen(ticket, now):
            raise ValidationError(
                _("This request was closed too long ago to reopen. Please open a new one."), code="reopen_expired"
            )
        # Closing is always allowed; reopening counts with the messages, or a script's close-reopen loop would put
        # the ticket back at the top of the staff's list and fire two webhooks a round, without end.
        limit = rules.comments_per_day()
        if reopening and _subscriber_writes(ticket.subscriber_id, now) >= limit:
            raise _too_many(
                limit,
                ngettext(
                    "You have written or reopened requests %(count)s time in the last 24 hours, the most we take. "
                    "Please call us.",
                    "You have written or reopened requests %(count)s times in the last 24 hours, the most we take. "
                    "Please call us.",
                    limit,
                ),
                "too_many_reopens",
            )
    before = ticket.status
    fields = _apply_status(ticket, status, now)
    ticket.updated_at = ticket.public_updated_at = now
    ticket.save(update_fields=[*fields, "updated_at", "public_updated_at"])
    event = audit.record(
        actor=acting_user,
        action="ticket.status_changed",
        obj=ticket,
        subscriber_id=ticket.subscriber_id,
        before={"status": before},
        after={"status": status},
        reason=(reason or "").strip()[:500],
    )
    if not by_subscriber:
        _tell_subscriber(ticket, key=f"ticket:{ticket.pk}:status:{event.pk}")
    events.emit(
        "ticket.updated", ticket_id=ticket.pk, subscriber_id=ticket.subscriber_id, comment_id=None, status=status
    )
    return ticket
