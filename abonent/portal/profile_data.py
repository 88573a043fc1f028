"""Reads of the portal's profile (page and API): the subscriber's contacts as messages and login codes use them, the
consents, the notification preferences and linked Telegram chats."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import segno
from django.conf import settings
from django.utils.translation import gettext as _

from abonent.core import clock
from abonent.core.phones import format_phone
from abonent.notifications import selectors as notification_selectors
from abonent.notifications.models import Preference, TelegramChat, TelegramLinkToken
from abonent.subscribers.models import ContactKind, ContactPoint

from . import codes
from .access import own
from .models import CodeChannel, PortalAccount

# Deep links a subscriber may ask for within an hour (each is a row of the notifications app).
TELEGRAM_LINKS_PER_HOUR = 10


@dataclass
class Contacts:
    """``phone`` and ``email`` are the ones messages and login codes go to: the primary of each kind, else the
    first (the order ``notifications.queueing`` reads them in). ``others`` are the rest, kept by the staff."""

    phone: ContactPoint | None = None
    email: ContactPoint | None = None
    others: list[ContactPoint] = field(default_factory=list)


def contacts_of(subscriber) -> Contacts:
    contacts = Contacts()
    for contact in ContactPoint.objects.filter(subscriber_id=subscriber.pk).order_by("kind", "-is_primary", "id"):
        if contact.kind == ContactKind.PHONE and contacts.phone is None:
            contacts.phone = contact
        elif contact.kind == ContactKind.EMAIL and contacts.email is None:
            contacts.email = contact
        else:
            contacts.others.append(contact)
    return contacts


@dataclass(frozen=True)
class PendingContact:
    """A new phone or e-mail waiting for the code sent to it."""

    kind: str  # ContactKind
    value: str  # E.164 or the e-mail
    expires_at: dt.datetime

    @property
    def display_value(self) -> str:
        return format_phone(self.value) if self.kind == ContactKind.PHONE else self.value


def pending_contacts(subscriber) -> list[PendingContact]:
    """The new phone and e-mail the subscriber asked for whose codes can still be entered (phone first)."""
    found = {}
    for row in codes.live_contact_codes(subscriber.pk):
        kind = ContactKind.PHONE if row.channel == CodeChannel.SMS else ContactKind.EMAIL
        found.setdefault(kind, PendingContact(kind, row.address, row.expires_at))
    return [found[kind] for kind in (ContactKind.PHONE, ContactKind.EMAIL) if kind in found]


def has_password(subscriber) -> bool:
    return PortalAccount.objects.filter(subscriber_id=subscriber.pk).exclude(password="").exists()


def preference_of(subscriber) -> Preference | None:
    return notification_selectors.preference_of(subscriber)


def chats_of(subscriber) -> list[TelegramChat]:
    return notification_selectors.chats_of(subscriber)


def own_chat(request, pk) -> TelegramChat:
    """A Telegram chat linked to the signed-in subscriber, else 404."""
    return own(TelegramChat.objects.all(), request, pk=pk)


def telegram_available() -> bool:
    return bool(settings.ABONENT_TELEGRAM_BOT_NAME)


def telegram_links_in_the_last_hour(subscriber) -> int:
    since = clock.now() - dt.timedelta(hours=1)
    return TelegramLinkToken.objects.filter(subscriber_id=subscriber.pk, created_at__gt=since).count()


def qr_svg(link: str) -> str:
    """``link`` as an inline SVG QR code (scaled by CSS: ``.portal-qr svg``), named for screen readers."""
    code = segno.make(link, error="m")
    return code.svg_inline(scale=4, border=2, omitsize=True, light="#fff", title=_("QR code of the Telegram link"))
