"""``abonent coa send``: send the due CoA / Disconnect requests now, once or in a loop (RFC 5176)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from abonent.core.queues import send_loop


class Command(BaseCommand):
    help = (
        "CoA / Disconnect queue. `abonent coa send` sends what is due once; with --loop it keeps sending "
        "(the worker's scheduler only runs the queue once a minute)."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        send = sub.add_parser("send", help="send the due CoA and Disconnect requests")
        send.add_argument("--loop", action="store_true", help="keep sending until interrupted")
        send.add_argument("--interval", type=float, default=1.0, help="seconds between polls of an empty queue")
        send.add_argument("--limit", type=int, default=None, help="requests per batch")
        send.add_argument("--timeout", type=float, default=None, help="seconds to wait for the NAS's replies")

    def handle(self, *args, operation, loop, interval, limit, timeout, **options):
        from abonent.network.coa import DEFAULT_BATCH, REPLY_TIMEOUT_S, send_due

        timeout = timeout or REPLY_TIMEOUT_S
        send_loop(
            lambda n: send_due(limit=n, timeout=timeout),
            limit=limit or DEFAULT_BATCH,
            loop=loop,
            interval=interval,
            report=lambda counts: self.stdout.write(json.dumps(counts, sort_keys=True)),
        )
