"""Reads of the notifications app: the outbox and a subscriber's log (branch-scoped), the templates in use, a
subscriber's preferences and chats, bulk messages with their progress and the reach of an audience."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import allowed_branch_ids
from abonent.subscribers.models import ContactKind, ContactPoint, Subscriber

from .audiences import audience as audience_of
from .calculations import mask_address, shown_text
from .errors import explain
from .models import (
    BulkMessage,
    Channel,
    Event,
    Message,
    MessageStatus,
    Preference,
    TelegramChat,
    Template,
)
from .placeholders import placeholders


def explain_error(code: str, detail: str = "") -> str:
    """Why a message was not sent, in words (``errors``), with the provider's own words when they add any."""
    text = explain(code)
    return f"{text} ({detail})" if detail and detail != text else text


def message_rows(items) -> list[dict]:
    """Messages as the console's tables show them: the address masked, a login code hidden, why one failed."""
    return [
        {
            "message": m,
            "address": mask_address(m.channel, m.address),
            "subject": shown_text(m.event, m.subject),
            "body": shown_text(m.event, m.body),
            "error": explain_error(m.error, m.error_detail) if m.error else "",
        }
        for m in items
    ]


def visible_messages(user) -> QuerySet[Message]:
    """Messages of the subscribers the user may see; messages without a subscriber only without a branch limit."""
    qs = Message.objects.all()
    ids = allowed_branch_ids(user)
    if ids is not None:
        qs = qs.filter(subscriber__branch__in=ids)
    return qs


@dataclass(frozen=True)
class MessageFilters:
    subscriber_id: int | None = None
    status: str = ""
    channel: str = ""
    event: str = ""
    created_from: dt.date | None = None
    created_to: dt.date | None = None  # inclusive, a local date
    bulk_id: int | None = None


def filtered_messages(user, filters: MessageFilters) -> QuerySet[Message]:
    qs = visible_messages(user)
    if filters.subscriber_id is not None:
        qs = qs.filter(subscriber_id=filters.subscriber_id)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.event:
        qs = qs.filter(event=filters.event)
    if filters.bulk_id is not None:
        qs = qs.filter(bulk_id=filters.bulk_id)
    if filters.created_from is not None:
        qs = qs.filter(created_at__gte=_local_midnight(filters.created_from))
    if filters.created_to is not None:
        qs = qs.filter(created_at__lt=_local_midnight(filters.created_to + dt.timedelta(days=1)))
    return qs


def _local_midnight(day: dt.date) -> dt.datetime:
    from django.utils import timezone

    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def status_counts(qs: QuerySet[Message]) -> dict[str, int]:
    counts = dict.fromkeys(MessageStatus.values, 0)
    for row in qs.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def recent_messages(user, filters: MessageFilters, *, limit: int = 100) -> list[Message]:
    return list(filtered_messages(user, filters).select_related("subscriber").order_by("-created_at", "-id")[:limit])


def subscriber_messages(subscriber: Subscriber, *, limit: int = 10) -> list[Message]:
    return list(Message.objects.filter(subscriber=subscriber).order_by("-created_at", "-id")[:limit])


@dataclass(frozen=True)
class MessagePage:
    items: list[Message]
    next_cursor: str | None


def encode_cursor(message: Message) -> str:
    return base64.urlsafe_b64encode(f"{message.created_at.isoformat()}|{message.pk}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        at, _sep, pk = base64.urlsafe_b64decode(cursor.encode("ascii")).decode().partition("|")
        moment = dt.datetime.fromisoformat(at)
        pk = int(pk)
        if moment.tzinfo is None or not 0 <= pk < 2**63:
            raise ValueError(cursor)
        return moment, pk
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise ValidationError(
            {"cursor": ValidationError(_("This cursor is not one a page of messages gave."), code="cursor_invalid")}
        ) from exc


def message_page(qs: QuerySet[Message], *, limit: int = 50, cursor: str = "") -> MessagePage:
    """Newest first, ``limit`` at a time; ``next_cursor`` goes on from the last one however many are queued since."""
    qs = qs.order_by("-created_at", "-id")
    if cursor:
        at, pk = decode_cursor(cursor)
        qs = qs.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
    rows = list(qs[: limit + 1])
    items = rows[:limit]
    return MessagePage(items, encode_cursor(items[-1]) if len(rows) > limit and items else None)


# Templates


@dataclass
class TemplateRow:
    event: str
    event_label: str
    channel: str
    channel_label: str
    language: str
    custom: Template | None

    @property
    def is_custom(self) -> bool:
        return self.custom is not None and self.custom.is_active


def template_matrix() -> list[TemplateRow]:
    """Every event × channel × language, with the staff's template where there is one (in use or not)."""
    custom = {(t.event, t.channel, t.language): t for t in Template.objects.select_related("updated_by")}
    return [
        TemplateRow(
            event, str(event_label), channel, str(channel_label), language, custom.get((event, channel, language))
        )
        for event, event_label in Event.choices
        if event != Event.BULK  # a bulk message carries its own text
        for channel, channel_label in Channel.choices
        for language, _name in settings.LANGUAGES
    ]


def template_of(event: str, channel: str, language: str) -> Template | None:
    return Template.objects.filter(event=event, channel=channel, language=language).first()


# What the preview fills a template with: plausible values an operator recognises.
SAMPLE_VALUES = {
    "name": "Иванов Иван Петрович",
    "account": "100000017",
    "pay_link": "https://my.example.ru/pay?account=100000017",
    "balance": "-120.00",
    "days_left": "3",
    "runout_on": "09.12.2026",
    "amount_due": "770.00",
    "amount": "650.00",
    "paid_at": "06.12.2026 14:05",
    "receipt_link": "https://check.ofd.ru/rec/7707083893/0000000001002292/9999078900004312/101/3449555941",
    "due_on": "10.12.2026",
    "method": "Visa •••• 4242",
    "reason": "insufficient_funds",
    "next_try_on": "11.12.2026",
    "expires_on": "08.12.2026",
    "ends_on": "15.12.2026",
    "plan": "Домашний 100",
    "monthly_fee": "650.00",
    "effective_on": "01.01.2027",
    "document": "Акт № 1245 за ноябрь 2026",
    "document_link": "https://my.example.ru/documents/1245",
    "ticket": "№ 3021",
    "ticket_status": "Решена",
    "ticket_link": "https://my.example.ru/tickets/3021",
}


def sample_values(event: str) -> dict[str, str]:
    values = {name: SAMPLE_VALUES.get(name, "") for name in placeholders(event)}
    values["provider"] = settings.ABONENT_COMPANY_NAME
    return values


# Preferences and chats


def preference_of(subscriber: Subscriber) -> Preference | None:
    return Preference.objects.filter(subscriber=subscriber).first()


def chats_of(subscriber: Subscriber) -> list[TelegramChat]:
    return list(TelegramChat.objects.filter(subscriber=subscriber).order_by("-linked_at", "-id"))


# Bulk messages


def visible_bulks(user) -> QuerySet[BulkMessage]:
    """The bulk messages a user may see and cancel. A bulk reaches the subscribers its author could see
    (``bulk.expand_bulk``), so a branch-limited user sees those whose author is limited to branches of theirs,
    and those of an author without a limit sent to one of their branches as the audience."""
    ids = allowed_branch_ids(user)
    qs = BulkMessage.objects.all()
    if ids is None:
        return qs
    branch_links = get_user_model().branches.through.objects
    limited = branch_links.values("staffuser_id")
    elsewhere = branch_links.exclude(branch_id__in=ids).values("staffuser_id")
    within_mine = Q(created_by__in=limited) & ~Q(created_by__in=elsewhere)
    unlimited_author = Q(created_by__isnull=True) | ~Q(created_by__in=limited)
    to_my_branch = Q(audience="branch", audience_id__in=ids) & unlimited_author
    return qs.filter(within_mine | to_my_branch)


def bulk_messages(user, *, limit: int = 50) -> list[BulkMessage]:
    """The bulk messages ``user`` may see (``visible_bulks``), newest first, each with ``progress`` (status →
    count of its messages)."""
    rows = list(visible_bulks(user).select_related("created_by")[:limit])
    counts: dict[int, dict[str, int]] = {}
    for row in Message.objects.filter(bulk__in=rows).order_by().values("bulk_id", "status").annotate(n=Count("id")):
        counts.setdefault(row["bulk_id"], {})[row["status"]] = row["n"]
    for bulk in rows:
        bulk.progress = bulk_progress_of(counts.get(bulk.pk, {}))
    return rows


def bulk_progress_of(counts: dict[str, int]) -> dict[str, int]:
    return {
        "queued": counts.get(MessageStatus.QUEUED, 0),
        "sent": counts.get(MessageStatus.SENT, 0) + counts.get(MessageStatus.DELIVERED, 0),
        "failed": counts.get(MessageStatus.FAILED, 0) + counts.get(MessageStatus.UNDELIVERABLE, 0),
        "skipped": counts.get(MessageStatus.SKIPPED, 0),
        "cancelled": counts.get(MessageStatus.CANCELLED, 0),
    }


def audience_ids(key: str, choice: int, *, branch_ids: set[int] | None) -> QuerySet:
    """The subscriber ids of an audience's choice, within ``branch_ids`` (None: every branch)."""
    found = audience_of(key)
    if found is None:
        return Subscriber.objects.none().values_list("pk", flat=True)
    ids = found.subscriber_ids(choice)
    qs = Subscriber.objects.filter(pk__in=ids)
    if branch_ids is not None:
        qs = qs.filter(branch__in=branch_ids)
    return qs.values_list("pk", flat=True)


def reachable(subscribers: QuerySet[Subscriber], channel: str) -> QuerySet[Subscriber]:
    """Those with an address on ``channel`` and the channel not turned off (what queueing will try to send)."""
    if channel == Channel.TELEGRAM:
        has_address = Q(pk__in=TelegramChat.objects.filter(blocked_at__isnull=True).values("subscriber_id"))
    else:
        kind = ContactKind.EMAIL if channel == Channel.EMAIL else ContactKind.PHONE
        has_address = Q(pk__in=ContactPoint.objects.filter(kind=kind).values("subscriber_id"))
    turned_off = Preference.objects.filter(**{channel: False}).values("subscriber_id")
    return subscribers.filter(has_address).exclude(pk__in=turned_off)


@dataclass
class Reach:
    total: int = 0
    no_address: int = 0  # no address on the channel, or the channel turned off
    no_consent: int = 0  # advertising to those without consent (they get a "skipped" row)
    will_send: int = 0
    sample: Subscriber | None = None
    closed: int = 0


def bulk_reach(ids: QuerySet, channel: str, *, marketing: bool) -> Reach:
    """What a bulk message to ``ids`` on ``channel`` would do: counted in SQL, for the preview."""
    subscribers = Subscriber.objects.filter(pk__in=ids)
    total = subscribers.count()
    sendable = reachable(subscribers, channel)
    with_address = sendable.count()
    no_consent = sendable.filter(consent_marketing=False).count() if marketing else 0
    closed = sendable.filter(status="closed").count()
    if marketing:
        sendable = sendable.filter(consent_marketing=True)
    sendable = sendable.exclude(status="closed")
    return Reach(
        total=total,
        no_address=total - with_address,
        no_consent=no_consent,
        will_send=sendable.count(),
        sample=sendable.order_by("pk").first() or subscribers.order_by("pk").first(),
        closed=closed,
    )
