"""``abonent notify send``: send the due notifications now, once or in a loop."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from abonent.core.queues import send_loop


class Command(BaseCommand):
    help = (
        "Notifications outbox. `abonent notify send` sends what is due once; with --loop it keeps sending "
        "(the worker's scheduler only runs the outbox once a minute). Several may run side by side."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        send = sub.add_parser("send", help="send the due messages")
        send.add_argument("--loop", action="store_true", help="keep sending until interrupted")
        send.add_argument("--interval", type=float, default=1.0, help="seconds between polls of an empty outbox")
        send.add_argument("--limit", type=int, default=None, help="messages per batch")
        send.add_argument("--channel", choices=["email", "sms", "telegram"], default=None, help="only this channel")

    def handle(self, *args, operation, loop, interval, limit, channel, **options):
        from abonent.notifications.delivery import DEFAULT_BATCH, send_due

        send_loop(
            lambda n: send_due(limit=n, channel=channel),
            limit=limit or DEFAULT_BATCH,
            loop=loop,
            interval=interval,
            report=lambda counts: self.stdout.write(json.dumps(counts, sort_keys=True)),
        )
