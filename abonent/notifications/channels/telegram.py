"""Telegram through the Bot API: ``POST <ABONENT_TELEGRAM_API_URL>/bot<token>/sendMessage`` (chat_id, text).

Answers (https://core.telegram.org/bots/api#making-requests): ``{"ok": true, "result": {"message_id": …}}``,
or ``{"ok": false, "error_code": …, "description": …, "parameters": {"retry_after": …}}``. A chat that blocked
the bot (403) or that Telegram does not know (400 "chat not found") is final; 429 waits ``retry_after``;
5xx and network faults are retried. The Bot API has no client id: an ambiguous timeout is retried (at least
once). Telegram allows about 30 messages a second per bot, so a batch is sent one by one, and a 429 holds the
rest of the batch back without asking again.
"""

from __future__ import annotations

import json
import logging

import httpx
from django.conf import settings

from ..errors import MessageError
from ..models import Channel, Message
from . import http
from .base import UNBOUNDED, Budget, Outcome, Result, not_tried

logger = logging.getLogger(__name__)


def api_url(method: str) -> str:
    return f"{settings.ABONENT_TELEGRAM_API_URL}/bot{settings.ABONENT_TELEGRAM_BOT_TOKEN}/{method}"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def outcome_of(response: httpx.Response) -> Outcome:
    """What one Bot API answer means for the message. Any JSON shape is read without raising: an answer that
    says ``ok`` but not in the documented shape (``"result": true`` from a proxy or a changed API) is taken as
    sent with an unknown id, since Telegram said it took the message."""
    try:
        answer = json.loads(response.content)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        if response.status_code == 200:
            return Outcome(Result.RETRY, error=MessageError.TIMEOUT, detail=response.text[:200])
        return http.http_error(response)
    if answer.get("ok") is True:
        message_id = _dict(answer.get("result")).get("message_id")
        if isinstance(message_id, int | str) and not isinstance(message_id, bool):
            return Outcome(Result.SENT, provider_id=str(message_id)[:100])
        return Outcome(Result.SENT, detail=f"an answer without message_id: {response.text[:200]}"[:500])
    code = answer.get("error_code", response.status_code)
    if not isinstance(code, int) or isinstance(code, bool):
        code = response.status_code
    description = str(answer.get("description", ""))[:500]
    lowered = description.lower()
    if code == 403:
        # "bot was blocked by the user", "user is deactivated", "bot was kicked from the group chat"
        return Outcome(Result.UNDELIVERABLE, error=MessageError.BOT_BLOCKED, detail=description)
    if code == 400 and "chat not found" in lowered:
        return Outcome(Result.UNDELIVERABLE, error=MessageError.CHAT_NOT_FOUND, detail=description)
    if code == 400:
        return Outcome(Result.FAILED, error=MessageError.TEXT_REJECTED, detail=description)
    if code == 401 or code == 404:
        return Outcome(Result.RETRY, error=MessageError.AUTH_FAILED, detail=description)  # a wrong token
    if code == 429:
        retry_after = _dict(answer.get("parameters")).get("retry_after")
        return Outcome(
            Result.RETRY,
            error=MessageError.RATE_LIMITED,
            detail=description,
            retry_after=float(retry_after)
            if isinstance(retry_after, int | float) and not isinstance(retry_after, bool)
            else None,
        )
    return Outcome(Result.RETRY, error=MessageError.PROVIDER_ERROR, detail=f"{code} {description}"[:500])


class TelegramTransport:
    channel = Channel.TELEGRAM
    max_batch = 10

    def __init__(self):
        self.http = http.client()

    def send_text(self, chat_id: int | str, text: str) -> Outcome:
        try:
            response = http.call(self.http, "POST", api_url("sendMessage"), json={"chat_id": chat_id, "text": text})
        except httpx.HTTPError as exc:
            return http.failure(exc)
        return outcome_of(response)

    def send(self, messages: list[Message], budget: Budget = UNBOUNDED) -> list[Outcome]:
        outcomes: list[Outcome] = []
        held: Outcome | None = None
        for message in messages:
            if held is not None:
                outcomes.append(held)
                continue
            if not budget.allows():
                outcomes.extend(not_tried(len(messages) - len(outcomes)))
                break
            try:
                outcome = self.send_text(message.address, message.body)
            except Exception as exc:
                # The request may have gone out: this message is not sent again blindly, and the others of the
                # batch keep their own outcomes (a crash here must not make the whole batch go again).
                logger.exception("telegram: the answer to a message could not be read")
                outcome = Outcome(
                    Result.FAILED, error=MessageError.INTERNAL, detail=f"{type(exc).__name__}: {exc}"[:500]
                )
            if outcome.error == MessageError.RATE_LIMITED:
                held = outcome
            outcomes.append(outcome)
        return outcomes
