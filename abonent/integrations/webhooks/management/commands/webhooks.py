"""``abonent webhooks send``: send the due webhook deliveries now, once or in a loop."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from abonent.core.queues import send_loop


class Command(BaseCommand):
    help = (
        "Outgoing webhooks. `abonent webhooks send` sends what is due once; with --loop it keeps sending (the "
        "worker's scheduler only runs them once a minute). Several may run side by side: deliveries are claimed."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        send = sub.add_parser("send", help="send the due deliveries")
        send.add_argument("--loop", action="store_true", help="keep sending until interrupted")
        send.add_argument("--interval", type=float, default=1.0, help="seconds between polls of an empty queue")
        send.add_argument("--limit", type=int, default=None, help="deliveries per batch")

    def handle(self, *args, operation, loop, interval, limit, **options):
        from abonent.integrations.webhooks.sending import DEFAULT_BATCH, send_due

        send_loop(
            lambda n: send_due(limit=n),
            limit=max(1, limit or DEFAULT_BATCH),
            loop=loop,
            interval=interval,
            report=lambda counts: self.stdout.write(json.dumps(counts, sort_keys=True)),
        )
