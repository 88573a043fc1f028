"""Linking a subscriber's Telegram chat to the bot by a deep link, and the bot's incoming updates.

Staff (or the portal) issue a one-time link ``https://t.me/<bot>?start=<token>``; the subscriber opens it,
Telegram sends the bot ``/start <token>``, and ``consume`` links that chat to the subscriber. Only the token's
SHA-256 is stored; a token works once and for ``TOKEN_TTL``. Updates arrive by webhook (``views_public``) or,
without a public address, by ``abonent telegram poll`` (``getUpdates``); both call ``handle_update``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock
from abonent.subscribers.models import Subscriber

from .models import TelegramChat, TelegramLinkToken

logger = logging.getLogger(__name__)

TOKEN_TTL = dt.timedelta(hours=24)
# Telegram's start parameter: up to 64 characters of A-Z, a-z, 0-9, _ and -.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(subscriber: Subscriber, *, acting_user=None) -> str:
    """A fresh one-time deep link for ``subscriber`` (older unused links stay valid until they expire)."""
    token = secrets.token_urlsafe(24)  # 32 characters of Telegram's start-parameter alphabet
    now = clock.now()
    with transaction.atomic():
        row = TelegramLinkToken.objects.create(
            subscriber=subscriber, token_hash=_hash(token), created_at=now, expires_at=now + TOKEN_TTL
        )
        audit.record(
            actor=acting_user,
            action="notifications.telegram_link_issued",
            obj=row,
            after={"expires_at": row.expires_at},
            subscriber_id=subscriber.pk,
        )
    return f"https://t.me/{settings.ABONENT_TELEGRAM_BOT_NAME}?start={token}"


def revoke_links(subscriber: Subscriber) -> int:
    """End the subscriber's unused links at once (log out everywhere, a new password): a link copied or
    photographed from a screen must not link someone else's chat afterwards. Returns the links ended. The rows stay,
    so the hourly limit of links asked for still counts them."""
    now = clock.now()
    unused = TelegramLinkToken.objects.filter(subscriber_id=subscriber.pk, used_at__isnull=True, expires_at__gt=now)
    return unused.update(expires_at=now)


class LinkRefused(Exception):
    """The token is unknown, expired or already used by another chat."""


def consume(token: str, chat_id: int, username: str = "") -> TelegramChat:
    """Link ``chat_id`` to the token's subscriber. Idempotent for the chat that used the token (Telegram may
    deliver ``/start`` twice); ``LinkRefused`` for an unknown, expired or otherwise used token."""
    if not _TOKEN.match(token or ""):
        raise LinkRefused("malformed")
    now = clock.now()
    with transaction.atomic():
        row = TelegramLinkToken.objects.select_for_update().filter(token_hash=_hash(token)).first()
        if row is None:
            raise LinkRefused("unknown")
        if row.used_at is not None:
            chat = TelegramChat.objects.filter(subscriber_id=row.subscriber_id, chat_id=chat_id).first()
            if chat is not None and chat.linked_at == row.used_at:
                return chat  # the same /start again
            raise LinkRefused("used")
        if row.expires_at <= now:
            raise LinkRefused("expired")
        row.used_at = now
        row.save(update_fields=["used_at"])
        chat, _created = TelegramChat.objects.update_or_create(
            subscriber_id=row.subscriber_id,
            chat_id=chat_id,
            defaults={"username": (username or "")[:64], "linked_at": now, "blocked_at": None},
        )
        audit.record(
            actor=None,
            actor_label="telegram",
            action="notifications.telegram_linked",
            obj=chat,
            after={"chat_id": chat_id, "username": chat.username},
            subscriber_id=row.subscriber_id,
        )
    return chat


def unlink_chat(chat: TelegramChat, *, acting_user=None) -> None:
    """Stop writing to ``chat`` for its subscriber (the portal's profile, ``acting_user=None``: the subscriber). The
    row goes: linking the chat again takes a new link. A second call for a row already gone does nothing."""
    with transaction.atomic():
        deleted, _rows = TelegramChat.objects.filter(pk=chat.pk).delete()
        if deleted:
            audit.record(
                actor=acting_user,
                action="notifications.telegram_unlinked",
                obj=chat,
                before={"chat_id": chat.chat_id, "username": chat.username},
                subscriber_id=chat.subscriber_id,
            )


def mark_blocked(chat_ids, *, blocked: bool = True) -> int:
    """The chats blocked the bot (or, ``blocked=False``, let it write again): every subscriber's link to them."""
    ids = [int(chat) for chat in chat_ids if str(chat).lstrip("-").isdigit()]
    if not ids:
        return 0
    if blocked:
        return TelegramChat.objects.filter(chat_id__in=ids, blocked_at__isnull=True).update(blocked_at=clock.now())
    return TelegramChat.objects.filter(chat_id__in=ids, blocked_at__isnull=False).update(blocked_at=None)


@dataclass
class Reply:
    chat_id: int
    text: str


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _chat_id(value) -> int | None:
    # A Bot API chat id: an integer of at most 52 significant bits (bool is an int in Python: not one).
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**52:
        return value
    return None


def handle_update(update) -> Reply | None:
    """Act on one Bot API ``Update``; returns the text to answer with, if any. An update the bot cannot use
    (another kind, a field of the wrong JSON type) is logged and ignored: answered as handled, so Telegram does
    not deliver it again and again. Raises ``ValueError`` only for JSON that is not an update (no ``update_id``)."""
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        raise ValueError("not an update")
    member = update.get("my_chat_member")
    if member is not None:
        member = _dict(member)
        chat_id = _chat_id(_dict(member.get("chat")).get("id"))
        status = _dict(member.get("new_chat_member")).get("status")
        if chat_id is not None and status in ("kicked", "left"):
            mark_blocked([chat_id])
        elif chat_id is not None and status == "member":
            mark_blocked([chat_id], blocked=False)
        else:
            logger.info("telegram: update %s: a chat member change the bot cannot use", update["update_id"])
        return None
    message = update.get("message")
    if not isinstance(message, dict):
        return None  # an update of a kind the bot does not use
    chat = _dict(message.get("chat"))
    chat_id = _chat_id(chat.get("id"))
    text = message.get("text")
    if chat_id is None or not isinstance(text, str) or not text.startswith("/start"):
        if chat_id is None:
            logger.info("telegram: update %s: a message without a usable chat id, ignored", update["update_id"])
        return None
    parts = text.split(maxsplit=1)
    if len(parts) < 2:
        return Reply(chat_id, _("To receive notices here, open the link from your personal account or ask us for one."))
    username = _dict(message.get("from")).get("username") or chat.get("username") or ""
    try:
        consume(parts[1].strip(), chat_id, str(username))
    except LinkRefused as refused:
        logger.info("telegram: /start from chat %s refused (%s)", chat_id, refused)
        return Reply(chat_id, _("This link is not valid any more. Please ask for a new one."))
    return Reply(
        chat_id,
        _("Done: %(provider)s will send your notices here.") % {"provider": settings.ABONENT_COMPANY_NAME},
    )
