"""Queueing messages: ``notify`` for one subscriber, ``notify_many`` for a sweep's thousands, both inside the
caller's transaction (the outbox: the message commits with what it tells).

For each notice and each channel the subscriber has an address on, one ``Message`` row, rendered now in the
subscriber's language: ``queued`` (due now, or after the quiet hours for SMS and Telegram), or ``skipped`` with
why (channel turned off, advertising without consent, the subscriber's contract closed). A subscriber with no
address at all gets one ``skipped`` row (``no_address``) so the card's log says why nothing went out. Rows are
unique by ``<key>:<channel>``: queueing the same notice again (a retried sweep, a replayed event) is a no-op.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings

from abonent.core import bulk, clock
from abonent.subscribers.models import ContactKind, ContactPoint, Subscriber, SubscriberStatus

from .calculations import pace_past_quiet_hours, shown_text
from .errors import MessageError
from .models import Channel, Event, Message, MessageStatus, Preference, TelegramChat, Template
from .placeholders import render
from .templates_default import default_template

logger = logging.getLogger(__name__)

# Subscribers per query when reading who the messages go to.
RECIPIENT_BATCH = 5000
QUIET_CHANNELS = frozenset({Channel.SMS, Channel.TELEGRAM})
# Events that still go to a closed contract (the last word on its money).
_FOR_CLOSED = frozenset(
    {Event.PAYMENT_RECEIVED, Event.DOCUMENT_ISSUED, Event.TICKET_UPDATED, Event.LOGIN_CODE, Event.CONTACT_CODE}
)
# Events the subscriber is waiting for right now (asked for it on the portal's page): no quiet hours, and a
# channel turned off for news does not hold back the code asked for on it.
URGENT_EVENTS = frozenset({Event.LOGIN_CODE, Event.CONTACT_CODE})


@dataclass
class Notice:
    subscriber_id: int
    event: str
    # The notice's natural key (``runout:3:<subscriber>:<date>``); each channel's row is ``<key>:<channel>``.
    key: str
    context: dict = field(default_factory=dict)
    marketing: bool = False
    channels: tuple[str, ...] | None = None  # None: every channel the subscriber can be reached on
    not_before: dt.datetime | None = None
    # A paced stream's start (a bulk message's throttle): a ``not_before`` that falls in the quiet hours keeps its
    # distance from this start in waking hours, so the pace holds after the quiet hours instead of all at once.
    paced_from: dt.datetime | None = None
    bulk_id: int | None = None
    # A bulk message's own text instead of the event's template.
    subject: str | None = None
    body: str | None = None
    # The one address to send to instead of the subscriber's on file (a new phone or e-mail being proven with a
    # code): used with exactly one channel in ``channels``.
    to: str | None = None


@dataclass(slots=True)
class _Who:
    """What a message needs of its subscriber, read as plain values (a sweep's 50,000 subscribers cost a model
    instance and a branch instance each as ORM objects)."""

    pk: int
    account_number: str
    display_name: str
    status: str
    consent_marketing: bool
    branch_time_zone: str


@dataclass
class _Recipient:
    subscriber: _Who
    preference: Preference | None
    phone: str = ""
    email: str = ""
    chats: list[int] = field(default_factory=list)

    @property
    def language(self) -> str:
        language = self.preference.language if self.preference and self.preference.language else ""
        return language or settings.LANGUAGE_CODE

    def wants(self, channel: str) -> bool:
        return self.preference is None or bool(getattr(self.preference, channel))

    def addresses(self, channel: str) -> list[str]:
        if channel == Channel.EMAIL:
            return [self.email] if self.email else []
        if channel == Channel.SMS:
            return [self.phone] if self.phone else []
        return [str(chat) for chat in self.chats]

    def time_zone(self) -> zoneinfo.ZoneInfo:
        names = (
            self.preference.time_zone if self.preference else "",
            self.subscriber.branch_time_zone,
            settings.TIME_ZONE,
        )
        for name in names:
            if name:
                try:
                    return zoneinfo.ZoneInfo(name)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    continue
        return zoneinfo.ZoneInfo("UTC")

    def quiet(self, default: tuple[dt.time, dt.time] | None) -> tuple[dt.time, dt.time] | None:
        if self.preference and self.preference.quiet_from is not None:
            return (self.preference.quiet_from, self.preference.quiet_to or self.preference.quiet_from)
        return default


def quiet_window_of(subscriber: Subscriber, preference: Preference | None, default) -> tuple:
    """``(time zone, quiet hours)`` of a subscriber (``subscriber.branch`` loaded), as queueing applies them."""
    # Only the time zone matters here: the other fields are left empty, so that a subscriber read with
    # ``.only("pk", "branch")`` (the worker's send-time check) costs no query per field.
    who = _Who(subscriber.pk, "", "", "", False, getattr(subscriber.branch, "time_zone", "") or "")
    recipient = _Recipient(who, preference)
    return recipient.time_zone(), recipient.quiet(default)


def parse_quiet_hours(value: str) -> tuple[dt.time, dt.time] | None:
    """ "21:00-09:00" → the two times; empty → None; ``ValueError`` for anything else."""
    value = (value or "").strip()
    if not value:
        return None
    start, sep, end = value.partition("-")
    if not sep:
        raise ValueError(f"not HH:MM-HH:MM: {value!r}")
    return dt.time.fromisoformat(start.strip()), dt.time.fromisoformat(end.strip())


def quiet_hours_default() -> tuple[dt.time, dt.time] | None:
    """``ABONENT_QUIET_HOURS`` ("21:00-09:00"; empty: none). A malformed value (the system check reports it at
    start) means none, logged: queueing every notice must not fail on it."""
    try:
        return parse_quiet_hours(settings.ABONENT_QUIET_HOURS)
    except (TypeError, ValueError):
        logger.error("ABONENT_QUIET_HOURS=%r is not HH:MM-HH:MM: no quiet hours apply", settings.ABONENT_QUIET_HOURS)
        return None


def after_quiet_hours(
    moment: dt.datetime, zone: zoneinfo.ZoneInfo, quiet: tuple[dt.time, dt.time] | None
) -> dt.datetime:
    """``moment``, or the end of the quiet hours it falls in, in ``zone`` (a window may cross midnight)."""
    if quiet is None or quiet[0] == quiet[1]:
        return moment
    start, end = quiet
    local = moment.astimezone(zone)
    now = local.timetz().replace(tzinfo=None)
    if start < end:
        inside = start <= now < end
        end_day = local.date()
    else:
        inside = now >= start or now < end
        end_day = local.date() + dt.timedelta(days=1) if now >= start else local.date()
    if not inside:
        return moment
    return dt.datetime.combine(end_day, end, tzinfo=zone).astimezone(dt.UTC)


def _recipients(subscriber_ids: set[int]) -> dict[int, _Recipient]:
    ids = sorted(subscriber_ids)
    recipients: dict[int, _Recipient] = {}
    for start in range(0, len(ids), RECIPIENT_BATCH):
        chunk = ids[start : start + RECIPIENT_BATCH]
        subscribers = Subscriber.objects.filter(pk__in=chunk).values_list(
            "pk", "account_number", "display_name", "status", "consent_marketing", "branch__time_zone"
        )
        preferences = {p.subscriber_id: p for p in Preference.objects.filter(subscriber_id__in=chunk)}
        for pk, account, name, status, consent, zone in subscribers:
            recipients[pk] = _Recipient(_Who(pk, account, name, status, consent, zone or ""), preferences.get(pk))
        contacts = (
            ContactPoint.objects.filter(subscriber_id__in=chunk)
            .order_by("subscriber_id", "kind", "-is_primary", "id")
            .values_list("subscriber_id", "kind", "value")
        )
        for subscriber_id, kind, value in contacts:
            recipient = recipients.get(subscriber_id)
            if recipient is None:
                continue
            if kind == ContactKind.PHONE and not recipient.phone:
                recipient.phone = value
            elif kind == ContactKind.EMAIL and not recipient.email:
                recipient.email = value
        chats = TelegramChat.objects.filter(subscriber_id__in=chunk, blocked_at__isnull=True).order_by("id")
        for subscriber_id, chat_id in chats.values_list("subscriber_id", "chat_id"):
            if subscriber_id in recipients:
                recipients[subscriber_id].chats.append(chat_id)
    return recipients


def _templates(events: set[str]) -> dict[tuple[str, str, str], Template]:
    rows = Template.objects.filter(event__in=sorted(events), is_active=True)
    return {(t.event, t.channel, t.language): t for t in rows}


def pay_link(account: str) -> str:
    pattern = settings.ABONENT_PAY_LINK
    return pattern.replace("{account}", account) if pattern else ""


def subscriber_values(subscriber: Subscriber) -> dict:
    return {
        "name": subscriber.display_name,
        "account": subscriber.account_number,
        "pay_link": pay_link(subscriber.account_number),
        "provider": settings.ABONENT_COMPANY_NAME,
    }


def render_for(event: str, channel: str, language: str, values: dict, overrides=None) -> tuple[str, str]:
    """(subject, body) of ``event`` on ``channel`` in ``language``: the staff's template if one is in use,
    else the built-in one."""
    template = (overrides or {}).get((event, channel, language))
    if template is None and overrides is None:
        template = Template.objects.filter(event=event, channel=channel, language=language, is_active=True).first()
    subject, body = (template.subject, template.body) if template else _default(event, channel, language)
    return render_subject(subject, values), render(body, values)


def render_subject(subject: str, values: dict) -> str:
    """A subject is one line: a value with a line break in it (a ticket's title) is flattened. The subject's own
    line break (a caller's text) is left for ``_rows_for`` to refuse: it cannot be an e-mail header."""
    if not subject:
        return ""
    return render(subject, {k: " ".join(v.split()) if isinstance(v, str) else v for k, v in values.items()})


@functools.lru_cache(maxsize=1024)
def _default(event: str, channel: str, language: str) -> tuple[str, str]:
    # The built-in texts are fixed for the life of the process (gettext catalogs); building them costs a
    # translation of every event's text, which a sweep's 60,000 messages paid one by one.
    return default_template(event, channel, language)


def notify_many(notices: Iterable[Notice]) -> int:
    """Queue ``notices`` (see the module docstring); returns the rows written (repeats not counted)."""
    notices = list(notices)
    if not notices:
        return 0
    recipients = _recipients({n.subscriber_id for n in notices})
    templates = _templates({n.event for n in notices})
    quiet_default = quiet_hours_default()
    now = clock.now()
    rows: list[Message] = []
    for notice in notices:
        recipient = recipients.get(notice.subscriber_id)
        if recipient is None:
            continue
        rows.extend(_rows_for(notice, recipient, templates, quiet_default, now))
    # The unique key keeps a repeat out; RETURNING says which rows were new (the count is for the caller's report).
    return len(bulk.insert(rows, on_conflict="ON CONFLICT (dedup_key) DO NOTHING", returning="dedup_key"))


def _rows_for(notice: Notice, recipient: _Recipient, templates, quiet_default, now) -> list[Message]:
    subscriber = recipient.subscriber
    language = recipient.language
    values = {**subscriber_values(subscriber), **notice.context}
    channels = notice.channels or tuple(Channel.values)
    base = {
        "subscriber_id": subscriber.pk,
        "event": notice.event,
        "language": language,
        "marketing": notice.marketing,
        "bulk_id": notice.bulk_id,
        "created_at": now,
    }
    rows = []
    for channel in channels:
        addresses = [notice.to] if notice.to else recipient.addresses(channel)
        for index, address in enumerate(addresses):
            if notice.body is not None:
                # A bulk message's own text, with this subscriber's values in its placeholders.
                subject, body = render_subject(notice.subject or "", values), render(notice.body, values)
            else:
                subject, body = render_for(notice.event, channel, language, values, templates)
            key = f"{notice.key}:{channel}" if index == 0 else f"{notice.key}:{channel}:{address}"
            skip = _skip_reason(notice, recipient, channel)
            due = notice.not_before or now
            if channel in QUIET_CHANNELS and not skip and notice.event not in URGENT_EVENTS:
                zone, quiet = recipient.time_zone(), recipient.quiet(quiet_default)
                if notice.paced_from is not None and due >= notice.paced_from:
                    due = pace_past_quiet_hours(notice.paced_from, due - notice.paced_from, zone, quiet)
                else:
                    due = after_quiet_hours(due, zone, quiet)
            # The row fails at once (``bad_header``), alone: nothing else is held back by it.
            bad_subject = channel == Channel.EMAIL and not skip and ("\n" in subject or "\r" in subject)
            if skip or bad_subject:
                # Final at once: a login code that will not go out is not kept readable (delivery.redact_codes).
                subject, body = shown_text(notice.event, subject), shown_text(notice.event, body)
            rows.append(
                Message(
                    **base,
                    channel=channel,
                    address=address,
                    subject=subject[:200],
                    body=body,
                    dedup_key=key[:200],
                    status=MessageStatus.SKIPPED
                    if skip
                    else MessageStatus.FAILED
                    if bad_subject
                    else MessageStatus.QUEUED,
                    error=skip or (MessageError.BAD_HEADER if bad_subject else ""),
                    next_attempt_at=due,
                    finished_at=now if skip or bad_subject else None,
                )
            )
    if not rows:
        rows.append(
            Message(
                **base,
                channel="",
                address="",
                body="",
                dedup_key=f"{notice.key}:none"[:200],
                status=MessageStatus.SKIPPED,
                error="no_address",
                next_attempt_at=now,
                finished_at=now,
            )
        )
    return rows


def _skip_reason(notice: Notice, recipient: _Recipient, channel: str) -> str:
    if notice.marketing and not recipient.subscriber.consent_marketing:
        return "no_consent"
    if recipient.subscriber.status == SubscriberStatus.CLOSED and notice.event not in _FOR_CLOSED:
        return "closed"
    if not recipient.wants(channel) and notice.event not in URGENT_EVENTS:
        return "channel_off"
    return ""


def notify(
    subscriber_id: int,
    event: str,
    *,
    key: str,
    context: dict | None = None,
    channels: tuple[str, ...] | None = None,
    marketing: bool = False,
    to: str | None = None,
) -> int:
    """Queue one notice for one subscriber (see ``notify_many``); ``to``: send it there, not to the address on
    file, on the one channel in ``channels``."""
    if to and (not channels or len(channels) != 1):
        raise ValueError("a notice to a given address names exactly one channel")
    return notify_many(
        [Notice(subscriber_id, event, key, context=context or {}, channels=channels, marketing=marketing, to=to)]
    )
