"""Writes of the notifications app. Queueing a message is ``notify`` / ``notify_many`` (``queueing``), called by
every app inside its own transaction. The staff's actions below are each atomic, check the actor's permission
(and the subscriber's branch), validate everything before writing, and write an audit row: templates saved and
reset, a subscriber's preferences, a failed message sent again, a bulk message created and cancelled. Expanding
a bulk message into messages is ``bulk.expand_bulk`` (a periodic job)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.staff.permissions import Perm, allowed_branch_ids, check_branch, check_perm, has_perm
from abonent.subscribers.models import Subscriber

from .audiences import audience as audience_of
from .calculations import SECRET_CODE_EVENTS
from .models import BulkMessage, BulkStatus, Channel, Event, Message, MessageStatus, Preference, Template
from .placeholders import check_template
from .queueing import Notice, notify, notify_many
from .selectors import visible_bulks

__all__ = [
    "Notice",
    "PreferenceData",
    "do_cancel_bulk",
    "do_create_bulk",
    "do_reset_template",
    "do_retry_message",
    "do_save_template",
    "do_update_preferences",
    "notify",
    "notify_many",
]

TEMPLATE_FIELDS = ["subject", "body", "is_active"]
PREFERENCE_FIELDS = ["email", "sms", "telegram", "language", "time_zone", "quiet_from", "quiet_to"]
MAX_PER_MINUTE = 100_000  # BulkMessage's check constraint
REPEAT_WINDOW = dt.timedelta(minutes=10)


def _check_key(event: str, channel: str, language: str) -> None:
    if event not in Event.values or event == Event.BULK:
        raise ValidationError({"event": ValidationError(_("Unknown event."), code="event_invalid")})
    if channel not in Channel.values:
        raise ValidationError({"channel": ValidationError(_("Unknown channel."), code="channel_invalid")})
    if language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": ValidationError(_("Unknown language."), code="language_invalid")})


def _check_texts(event: str, channel: str, subject: str, body: str) -> tuple[str, str]:
    subject = (subject or "").strip() if channel == Channel.EMAIL else ""
    body = (body or "").strip()
    errors = {}
    if not body:
        errors["body"] = ValidationError(_("Write the text of the message."), code="required")
    if len(body) > 4000:
        errors["body"] = ValidationError(_("The text is longer than 4000 characters."), code="max_length")
    if len(subject) > 200:
        errors["subject"] = ValidationError(_("The subject is longer than 200 characters."), code="max_length")
    elif any(ch in subject for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
        # An e-mail header is one line: a pasted line break would fail every e-mail of this text (or, unchecked,
        # add a header such as "Bcc:").
        errors["subject"] = ValidationError(_("The subject must be one line."), code="subject_line_break")
    # Each text on its own, so the error lands on the field that has the unknown placeholder.
    for name, text in (("subject", subject), ("body", body)):
        if name in errors:
            continue
        try:
            check_template(event, text)
        except ValidationError as exc:
            errors[name] = exc
    if errors:
        raise ValidationError(errors)
    return subject, body


@transaction.atomic
def do_save_template(event: str, channel: str, language: str, *, subject: str, body: str, acting_user) -> Template:
    """The staff's text for an event on a channel in a language, in use from now on instead of the built-in one.
    Placeholders are checked against the event's list (``unknown_placeholder`` on the field that has one)."""
    check_perm(acting_user, Perm.NOTIFICATION_MANAGE)
    _check_key(event, channel, language)
    subject, body = _check_texts(event, channel, subject, body)
    template = Template.objects.select_for_update().filter(event=event, channel=channel, language=language).first()
    before = audit.snapshot(template, TEMPLATE_FIELDS) if template else {}
    if template is None:
        template = Template(event=event, channel=channel, language=language)
    template.subject, template.body, template.is_active = subject, body, True
    template.updated_at, template.updated_by = clock.now(), acting_user
    template.save()
    old, new = audit.diff(before, audit.snapshot(template, TEMPLATE_FIELDS))
    audit.record(actor=acting_user, action="notifications.template_saved", obj=template, before=old, after=new)
    return template


@transaction.atomic
def do_reset_template(event: str, channel: str, language: str, *, acting_user) -> Template | None:
    """Back to the built-in text: the staff's template is kept (not in use), so it can be looked at again."""
    check_perm(acting_user, Perm.NOTIFICATION_MANAGE)
    _check_key(event, channel, language)
    template = Template.objects.select_for_update().filter(event=event, channel=channel, language=language).first()
    if template is None or not template.is_active:
        return template
    template.is_active, template.updated_at, template.updated_by = False, clock.now(), acting_user
    template.save(update_fields=["is_active", "updated_at", "updated_by"])
    audit.record(
        actor=acting_user,
        action="notifications.template_reset",
        obj=template,
        before={"is_active": True},
        after={"is_active": False},
    )
    return template


@dataclass
class PreferenceData:
    email: bool = True
    sms: bool = True
    telegram: bool = True
    language: str = ""
    time_zone: str = ""
    quiet_from: dt.time | None = None
    quiet_to: dt.time | None = None


def quiet_hours_half() -> ValidationError:
    return ValidationError(
        _("Give both ends of the quiet hours, or neither (then the default ones apply)."), code="quiet_hours_half"
    )


def _clean_preferences(data: PreferenceData) -> PreferenceData:
    errors = {}
    if data.language and data.language not in dict(settings.LANGUAGES):
        errors["language"] = ValidationError(_("Unknown language."), code="language_invalid")
    zone = (data.time_zone or "").strip()
    if zone:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = ValidationError(
                _("Unknown time zone: give a name such as Europe/Moscow."), code="time_zone_invalid"
            )
    if (data.quiet_from is None) != (data.quiet_to is None):
        errors["quiet_to"] = quiet_hours_half()
    if errors:
        raise ValidationError(errors)
    return PreferenceData(
        email=bool(data.email),
        sms=bool(data.sms),
        telegram=bool(data.telegram),
        language=data.language or "",
        time_zone=zone,
        quiet_from=data.quiet_from,
        quiet_to=data.quiet_to,
    )


@transaction.atomic
def do_update_preferences(subscriber: Subscriber, data: PreferenceData, *, acting_user, reason: str = "") -> Preference:
    """How the subscriber wants to be reached: channels on or off, language, time zone, quiet hours (equal ends:
    none). Messages already queued keep their time; new ones follow these. ``acting_user=None``: the subscriber in
    the portal (ADR 0017)."""
    if acting_user is not None:
        check_perm(acting_user, Perm.SUBSCRIBER_EDIT)
        check_branch(acting_user, subscriber.branch_id)
    data = _clean_preferences(data)
    Subscriber.objects.select_for_update().filter(pk=subscriber.pk).values_list("pk", flat=True).get()
    preference = Preference.objects.filter(subscriber=subscriber).first()
    before = audit.snapshot(preference, PREFERENCE_FIELDS) if preference else {}
    if preference is None:
        preference = Preference(subscriber=subscriber)
    for name in PREFERENCE_FIELDS:
        setattr(preference, name, getattr(data, name))
    preference.updated_at = clock.now()
    preference.save()
    old, new = audit.diff(before, audit.snapshot(preference, PREFERENCE_FIELDS))
    if old or new:
        audit.record(
            actor=acting_user,
            action="notifications.preferences_updated",
            obj=preference,
            subscriber_id=subscriber.pk,
            before=old,
            after=new,
            reason=reason,
        )
    return preference


def can_retry(user) -> bool:
    # Those who may send messages to subscribers (bulk) or manage the delivery settings.
    return has_perm(user, Perm.NOTIFICATION_BULK) or has_perm(user, Perm.NOTIFICATION_MANAGE)


@transaction.atomic
def do_retry_message(message: Message, *, acting_user) -> Message:
    """A failed message queued again, due now, with a fresh count of tries. Only a failed one: an undeliverable
    address stays so until it is fixed, and a sent one is not sent twice."""
    if not can_retry(acting_user):
        check_perm(acting_user, Perm.NOTIFICATION_MANAGE)
    message = Message.objects.select_for_update(of=("self",)).select_related("subscriber").get(pk=message.pk)
    if message.subscriber is not None:
        check_branch(acting_user, message.subscriber.branch_id)
    if message.status != MessageStatus.FAILED:
        raise ValidationError(_("Only a failed message can be sent again."), code="not_failed")
    if message.event in SECRET_CODE_EVENTS:
        # Its code is no longer in the stored text (delivery.redact_codes), and may have expired: the subscriber
        # asks for a new one.
        raise ValidationError(_("A login code is not sent again: the subscriber asks for a new one."), code="secret")
    before = {"status": message.status, "attempts": message.attempts, "error": message.error}
    message.status, message.attempts, message.next_attempt_at = MessageStatus.QUEUED, 0, clock.now()
    message.finished_at = None
    message.save(update_fields=["status", "attempts", "next_attempt_at", "finished_at"])
    audit.record(
        actor=acting_user,
        action="notifications.message_retried",
        obj=message,
        subscriber_id=message.subscriber_id,
        before=before,
        after={"status": message.status},
    )
    return message


@dataclass
class BulkData:
    audience: str
    audience_id: int
    channel: str
    subject: str
    body: str
    marketing: bool
    per_minute: int


def check_bulk_texts(channel: str, subject: str, body: str) -> tuple[str, str]:
    """A bulk message's subject and text as ``clean_bulk`` takes them, or its ValidationError by field: for a page that
    composes a bulk message for an audience it makes itself (the subscriber list's bulk actions)."""
    return _check_texts(Event.BULK, channel, subject, body)


def clean_bulk(data: BulkData) -> tuple[BulkData, str]:
    """``data`` checked (the audience and its choice, the texts' placeholders, the rate); and the choice's label."""
    errors = {}
    found = audience_of(data.audience)
    label = ""
    if found is None:
        errors["audience"] = ValidationError(_("Unknown audience."), code="audience_invalid")
    else:
        label = found.label_for(data.audience_id)
        if not label:
            errors["audience_id"] = ValidationError(_("Choose one of the list."), code="audience_choice_invalid")
    if data.channel not in Channel.values:
        errors["channel"] = ValidationError(_("Unknown channel."), code="channel_invalid")
    if not 1 <= data.per_minute <= MAX_PER_MINUTE:
        errors["per_minute"] = ValidationError(
            _("From 1 to %(max)d messages a minute.") % {"max": MAX_PER_MINUTE}, code="rate_invalid"
        )
    try:
        subject, body = _check_texts(Event.BULK, data.channel, data.subject, data.body)
    except ValidationError as exc:
        errors.update(exc.error_dict)
        subject, body = data.subject, data.body
    if errors:
        raise ValidationError(errors)
    return BulkData(
        data.audience, data.audience_id, data.channel, subject, body, data.marketing, data.per_minute
    ), label


@transaction.atomic
def do_create_bulk(data: BulkData, *, recipients: int, acting_user) -> BulkMessage:
    """A bulk message confirmed by staff: the worker expands it into messages (``bulk.expand_bulk``), released at
    ``per_minute``. ``recipients`` is the count the preview showed."""
    check_perm(acting_user, Perm.NOTIFICATION_BULK)
    data, label = clean_bulk(data)
    # A double click on "Send" must not message thousands twice: the same text to the same recipients by the same
    # person within minutes is refused. The author's row is locked so two concurrent posts see each other.
    get_user_model().objects.select_for_update().filter(pk=acting_user.pk).values_list("pk", flat=True).first()
    repeat = BulkMessage.objects.filter(
        created_by=acting_user,
        audience=data.audience,
        audience_id=data.audience_id,
        channel=data.channel,
        body=data.body,
        created_at__gte=clock.now() - REPEAT_WINDOW,
    ).exclude(status=BulkStatus.CANCELLED)
    if repeat.exists():
        raise ValidationError(
            _("This message to these recipients was sent a few minutes ago; cancel it first to send it again."),
            code="bulk_repeated",
        )
    bulk = BulkMessage.objects.create(
        audience=data.audience,
        audience_id=data.audience_id,
        audience_label=label[:200],
        channel=data.channel,
        subject=data.subject,
        body=data.body,
        marketing=data.marketing,
        per_minute=data.per_minute,
        status=BulkStatus.QUEUED,
        recipients=max(recipients, 0),
        created_at=clock.now(),
        created_by=acting_user,
    )
    audit.record(
        actor=acting_user,
        action="notifications.bulk_created",
        obj=bulk,
        after={
            **audit.snapshot(bulk, ["audience", "audience_id", "audience_label", "channel", "marketing", "per_minute"]),
            "recipients": bulk.recipients,
            "branches": sorted(allowed_branch_ids(acting_user) or []),
        },
    )
    return bulk


@transaction.atomic
def do_cancel_bulk(bulk: BulkMessage, *, acting_user) -> int:
    """Stop a bulk message: what is not sent yet is cancelled, and no more is expanded. Returns the messages
    cancelled. The bulk row is locked, so a running expansion finishes its chunk first and then stops."""
    check_perm(acting_user, Perm.NOTIFICATION_BULK)
    if not visible_bulks(acting_user).filter(pk=bulk.pk).exists():
        raise PermissionDenied(_("This bulk message belongs to a branch you do not have access to."))
    bulk = BulkMessage.objects.select_for_update().get(pk=bulk.pk)
    if bulk.status in (BulkStatus.DONE, BulkStatus.CANCELLED):
        raise ValidationError(_("This bulk message is finished already."), code="bulk_finished")
    now = clock.now()
    cancelled = Message.objects.filter(bulk=bulk, status=MessageStatus.QUEUED).update(
        status=MessageStatus.CANCELLED, finished_at=now
    )
    before = bulk.status
    bulk.status = BulkStatus.CANCELLED
    bulk.save(update_fields=["status"])
    audit.record(
        actor=acting_user,
        action="notifications.bulk_cancelled",
        obj=bulk,
        before={"status": before},
        after={"status": bulk.status, "cancelled": cancelled},
    )
    return cancelled
