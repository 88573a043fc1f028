"""``abonent demo``: migrate, seed a demo ISP once, run web + worker + RADIUS under one supervisor, stop on Ctrl-C."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

RESTART_LIMIT = 5
# Unprivileged ports: the demo runs as an ordinary user (1812/1813 need root or CAP_NET_BIND_SERVICE).
RADIUS_AUTH_PORT = 18120
RADIUS_ACCT_PORT = 18130


class Child:
    def __init__(self, name: str, argv: list[str], *, required: bool = True):
        # A child that is not required (RADIUS) is given up on after its restarts, leaving the console running:
        # a port taken by another program must not take the demo down.
        self.name, self.argv, self.required = name, argv, required
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> None:
        # A session of its own: the terminal's Ctrl-C reaches only the supervisor, which stops children in order.
        self.process = subprocess.Popen(self.argv, start_new_session=True)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Command(BaseCommand):
    help = "Run a demo ISP: migrate, seed once, serve the console, run the worker and RADIUS until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--subscribers", type=int, default=300, help="how many demo subscribers to seed")
        parser.add_argument("--no-worker", action="store_true")
        parser.add_argument("--radius-auth-port", type=int, default=RADIUS_AUTH_PORT)
        parser.add_argument("--radius-acct-port", type=int, default=RADIUS_ACCT_PORT)
        parser.add_argument("--no-radius", action="store_true")

    def handle(
        self, *args, host, port, subscribers, no_worker, radius_auth_port, radius_acct_port, no_radius, **options
    ):
        from abonent.core.seeding import DemoInProduction, SeedContext, refuse_demo_in_production, run_seed

        try:
            # Before anything is migrated or seeded: the demo's passwords are published (the banner, the docs).
            refuse_demo_in_production()
        except DemoInProduction as exc:
            raise CommandError(str(exc)) from None
        db = settings.DATABASES["default"]
        if db["ENGINE"].endswith("sqlite3"):
            os.makedirs(os.path.dirname(db["NAME"]), exist_ok=True)
        self.stdout.write("Preparing the database…")
        call_command("migrate", verbosity=0, interactive=False)
        ctx = SeedContext(subscribers=subscribers, demo=True, out=sys.stderr)
        run_seed(ctx)

        cli = [sys.executable, "-m", "abonent.cli"]
        children = [Child("web", [*cli, "web", "--host", host, "--port", str(port)])]
        if not no_worker:
            children.append(Child("worker", [*cli, "worker", "--interval", "2"]))
        if not no_radius:
            radius = [*cli, "radius", "--bind", host, "--auth-port", str(radius_auth_port)]
            radius += ["--acct-port", str(radius_acct_port), "--processes", "1"]
            children.append(Child("radius", radius, required=False))
        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        for child in children:
            child.start()
        self._banner(host, port, ctx, radius_auth_port if not no_radius else None)
        try:
            while not stopping:
                time.sleep(0.5)
                for child in list(children):
                    code = child.process.poll()
                    if code is None or stopping:
                        continue
                    if child.restarts >= RESTART_LIMIT and not child.required:
                        self.stderr.write(f"{child.name} keeps exiting (last code {code}); going on without it.")
                        children.remove(child)
                        continue
                    if child.restarts >= RESTART_LIMIT:
                        self.stderr.write(f"{child.name} keeps exiting (last code {code}); stopping the demo.")
                        stopping = True
                        break
                    child.restarts += 1
                    self.stderr.write(f"{child.name} exited with code {code}; restarting ({child.restarts}).")
                    time.sleep(min(2**child.restarts, 10))
                    child.start()
        finally:
            self.stdout.write("\nStopping…")
            for child in reversed(children):
                child.stop()
            self.stdout.write("Demo stopped.")

    def _banner(self, host: str, port: int, ctx, radius_auth_port: int | None) -> None:
        base = f"http://{host}:{port}"
        lines = [
            "",
            "Abonent demo is running.",
            f"  Staff console   {base}/staff/",
            f"  Portal          {base}/my/",
            f"  REST API docs   {base}/api/v1/docs",
            f"  Health          {base}/healthz",
            f"  Metrics         {base}/metrics",
            "",
            "  Logins (login / password / role):",
        ]
        for username, password, role in ctx.facts.get("logins", []):
            lines.append(f"    {username:<10} {password:<16} {role}")
        portal_logins = ctx.facts.get("portal_logins") or []
        if portal_logins:
            lines += ["", "  Portal logins at /my/ (account number / password):"]
            for account, password, name in portal_logins:
                lines.append(f"    {account:<10} {password:<16} {name}")
        if ctx.facts.get("featured_phone"):
            lines += ["", f"  Try searching for the phone {ctx.facts['featured_phone']} or for “Иванов”."]
        radius = ctx.facts.get("radius")
        if radius_auth_port is not None and radius and radius["username"]:
            attributes = (
                f'User-Name = "{radius["username"]}", User-Password = "{radius["password"]}", '
                "Message-Authenticator = 0x00"
            )
            radius_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - a comparison
            lines += [
                "",
                f"  RADIUS          auth {radius_host}:{radius_auth_port}, NAS {radius['nas_ip']} "
                f"(every demo subscriber has the login demo<id>, password {radius['password']})",
                "  Try (radclient is in freeradius-utils):",
                f"    echo {shlex.quote(attributes)} | radclient -x {radius_host}:{radius_auth_port} auth "
                f"{shlex.quote(radius['secret'])}",
            ]
        agent = ctx.facts.get("payment_agent")
        if agent:
            lines += [
                "",
                "  A payment terminal's pay (the check/pay protocol; docs/payments.md):",
                f"    curl -u {agent['login']}:{agent['secret']} "
                f"'{base}{agent['path']}?command=pay&txn_id=1001&account={agent['account']}&sum=650.00"
                "&txn_date=20261206120000'",
            ]
        lines += ["", "Press Ctrl-C to stop.", ""]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()
