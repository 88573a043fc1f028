"""``abonent telegram poll``: take the bot's updates by ``getUpdates`` where Telegram cannot reach a webhook."""

from __future__ import annotations

import json

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections


class Command(BaseCommand):
    help = (
        "Telegram bot. `abonent telegram poll` handles the bot's updates (/start links, blocks) by long polling, "
        "for installations without a public address for the webhook. Use one or the other: Telegram refuses "
        "getUpdates while a webhook is set."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        poll = sub.add_parser("poll", help="handle the bot's updates")
        poll.add_argument("--once", action="store_true", help="one getUpdates call, then stop")
        poll.add_argument("--wait", type=int, default=25, help="long-polling timeout in seconds")

    def handle(self, *args, operation, once, wait, **options):
        from abonent.notifications.channels.telegram import TelegramTransport, api_url
        from abonent.notifications.telegram_link import handle_update

        if not settings.ABONENT_TELEGRAM_BOT_TOKEN:
            raise CommandError("ABONENT_TELEGRAM_BOT_TOKEN is not set")
        transport = TelegramTransport()
        offset = None
        with httpx.Client(timeout=wait + 10) as client:
            try:
                while True:
                    params = {"timeout": 0 if once else wait, "allowed_updates": '["message","my_chat_member"]'}
                    if offset is not None:
                        params["offset"] = offset
                    try:
                        answer = client.get(api_url("getUpdates"), params=params).json()
                    except (httpx.HTTPError, ValueError) as exc:
                        self.stderr.write(f"getUpdates failed: {exc}")
                        if once:
                            return
                        continue
                    for update in answer.get("result") or () if isinstance(answer, dict) else ():
                        if isinstance(update, dict) and isinstance(update.get("update_id"), int):
                            offset = update["update_id"] + 1  # confirmed by the next call: handled once
                        try:
                            reply = handle_update(update)
                        except ValueError:
                            continue
                        if reply is not None:
                            outcome = transport.send_text(reply.chat_id, reply.text)
                            self.stdout.write(json.dumps({"chat": reply.chat_id, "reply": outcome.result}))
                    close_old_connections()
                    if once:
                        if offset is not None:  # confirm what was handled
                            client.get(api_url("getUpdates"), params={"offset": offset, "timeout": 0})
                        return
            except KeyboardInterrupt:
                return
