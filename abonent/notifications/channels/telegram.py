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

import httpx
from django.conf import settings

from ..errors import MessageError
from ..models import Channel, Message
from . import http
from .base import Outcome, Result


def api_url(method: str) -> str:
    return f"{settings.ABONENT_TELEGRAM_API_URL}/bot{settings.ABONENT_TELEGRAM_BOT_TOKEN}/{method}"


def outcome_of(response: httpx.Response) -> Outcome:
    """What one Bot API answer means for the message."""
    try:
        answer = json.loads(response.content)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        if response.status_code == 200:
            return Outcome(Result.RETRY, error=MessageError.TIMEOUT, detail=response.text[:200])
        return http.http_error(response)
    if answer.get("ok") is True:
        result = answer.get("result") or {}
        return Outcome(Result.SENT, provider_id=str(result.get("message_id", ""))[:100])
    code = answer.get("error_code", response.status_code)
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
        retry_after = (answer.get("parameters") or {}).get("retry_after")
        return Outcome(
            Result.RETRY,
            error=MessageError.RATE_LIMITED,
            detail=description,
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
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

    def send(self, messages: list[Message]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        held: Outcome | None = None
        for message in messages:
            if held is not None:
                outcomes.append(held)
                continue
            outcome = self.send_text(message.address, message.body)
            if outcome.error == MessageError.RATE_LIMITED:
                held = outcome
            outcomes.append(outcome)
        return outcomes
