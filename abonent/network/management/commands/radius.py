"""``abonent radius``: the RADIUS authentication and accounting server (docs/radius.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the RADIUS server: authentication, accounting, policy from billing (docs/radius.md)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=settings.ABONENT_RADIUS_BIND)
        parser.add_argument("--auth-port", type=int, default=settings.ABONENT_RADIUS_AUTH_PORT)
        parser.add_argument("--acct-port", type=int, default=settings.ABONENT_RADIUS_ACCT_PORT)
        parser.add_argument(
            "--processes",
            type=int,
            default=settings.ABONENT_RADIUS_PROCESSES,
            help="processes sharing the ports (SO_REUSEPORT); one per core the server may use",
        )
        parser.add_argument("--spool-dir", type=Path, default=None, help="accounting spool and policy snapshot")

    def handle(self, *args, bind, auth_port, acct_port, processes, spool_dir, **options):
        from abonent.network.radius.runner import Options, serve

        # DEBUG keeps every query and wraps every cursor: costly at thousands of writes a second, and this
        # process serves no pages that could show them.
        settings.DEBUG = False
        # The event loop and the database threads hand the GIL to each other thousands of times a second. At
        # the default 5 ms switch interval a database thread whose reply has arrived waits up to 5 ms for a
        # busy loop to let go, and accounting latency piles up behind it.
        sys.setswitchinterval(0.0005)

        serve(Options(bind=bind, auth_port=auth_port, acct_port=acct_port, processes=processes, spool_dir=spool_dir))
