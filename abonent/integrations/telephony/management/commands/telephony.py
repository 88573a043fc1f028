"""``abonent telephony``: listen to Asterisk's Manager Interface and record calls, pop operators' screens."""

from __future__ import annotations

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

logger = logging.getLogger("abonent.integrations.telephony")


class Command(BaseCommand):
    help = "Listen to Asterisk's Manager Interface (ABONENT_AMI_*): record calls and send screen-pops."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=None, help="AMI host (default: ABONENT_AMI_HOST)")
        parser.add_argument("--port", type=int, default=None, help="AMI port (default: ABONENT_AMI_PORT)")

    def handle(self, *args, host, port, **options):
        host = host or settings.ABONENT_AMI_HOST
        port = port or settings.ABONENT_AMI_PORT
        if not host:
            raise CommandError("Set ABONENT_AMI_HOST (or --host): the Asterisk server to listen to.")
        asyncio.run(self._main(host, port))

    async def _main(self, host: str, port: int) -> None:
        from abonent.integrations.telephony.ami import AmiClient
        from abonent.integrations.telephony.asterisk import Dispatcher

        dispatcher = Dispatcher(calls_in_process=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        client = AmiClient(
            host=host,
            port=port,
            username=settings.ABONENT_AMI_USERNAME,
            secret=settings.ABONENT_AMI_SECRET,
            on_event=dispatcher.on_event,
        )
        self.stdout.write(f"Listening to Asterisk at {host}:{port}", ending="\n")
        self.stdout.flush()
        lanes = [asyncio.create_task(dispatcher.rings.run()), asyncio.create_task(dispatcher.rest.run())]
        try:
            await client.run(stop)
            await dispatcher.drained()
        finally:
            for task in lanes:
                task.cancel()
            await loop.run_in_executor(None, dispatcher.rest.close)
