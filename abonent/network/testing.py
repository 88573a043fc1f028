"""Test helpers: the RADIUS server in a thread of the test process, and FreeRADIUS's ``radclient``."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

from .radius.runner import Options, _serve, prepare

RADCLIENT = shutil.which("radclient")


class RunningServer:
    def __init__(self) -> None:
        self.server = None
        self.auth_port = 0
        self.acct_port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None

    def counter(self, name: str) -> int:
        return self.server.stats.total(name)


@contextmanager
def radius_server(spool_dir: Path, *, refresh_seconds: float = 0.2):
    """Start ``abonent radius``'s server on free ports in a thread; stop it on exit."""
    running = RunningServer()
    ready = threading.Event()
    failure: list[BaseException] = []

    def on_ready(server, auth_port, acct_port) -> None:
        running.server, running.auth_port, running.acct_port = server, auth_port, acct_port
        ready.set()

    options = Options(bind="127.0.0.1", auth_port=0, acct_port=0, spool_dir=spool_dir)

    def main() -> None:
        from django.db import connection

        async def run() -> None:
            running.loop = asyncio.get_running_loop()
            running.stop = asyncio.Event()
            await _serve(
                options,
                prepared,
                stop=running.stop,
                on_ready=on_ready,
                refresh_seconds=refresh_seconds,
            )

        try:
            prepared = prepare(options, 0)
            connection.close()  # this thread's connection; the server's threads open their own
            asyncio.run(run())
        except BaseException as exc:  # surfaced to the test below
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=main, name="radius-test-server", daemon=True)
    thread.start()
    ready.wait(30)
    if failure:
        raise failure[0]
    try:
        yield running
    finally:
        running.loop.call_soon_threadsafe(running.stop.set)
        thread.join(30)


def radclient(
    port: int,
    secret: str,
    kind: str,
    attributes: str,
    *,
    retries: int = 1,
    timeout: float = 2.0,
    extra: tuple[str, ...] = (),
) -> subprocess.CompletedProcess:
    """Send one request with FreeRADIUS's radclient (``kind``: auth, acct, status, coa, disconnect)."""
    return subprocess.run(
        [RADCLIENT, "-x", "-r", str(retries), "-t", str(timeout), *extra, f"127.0.0.1:{port}", kind, secret],
        input=attributes,
        capture_output=True,
        text=True,
        timeout=60,
    )
