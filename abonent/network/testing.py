"""Test helpers: the RADIUS server in a thread of the test process, FreeRADIUS's ``radclient``, and a NAS's CoA port
(``CoaListener``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

from pyrad import packet as radius_packet

from .radius.codec import DICTIONARY
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


ACK, DROP = "ack", "drop"


class CoaListener:
    """A NAS's CoA port: answers each request with the next scripted reply (ACK once the script runs out)."""

    def __init__(self, secret: str, host: str = "127.0.0.1") -> None:
        self.secret = secret.encode()
        self.script: list = []
        self.received: list[dict] = []
        self.event_timestamps: list = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="coa-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            request = radius_packet.CoAPacket(packet=data, secret=self.secret, dict=DICTIONARY)
            authentic = (
                request.VerifyCoARequest()
                and bool(request.message_authenticator)
                and (request.verify_message_authenticator())
            )
            self.received.append(
                {
                    "code": request.code,
                    "authentic": authentic,
                    # pyrad's keys() gives attribute names; iterating the packet itself gives raw codes.
                    "attributes": {
                        key: request[key]
                        for key in request.keys()  # noqa: SIM118
                        if key not in ("Message-Authenticator", "Event-Timestamp")
                    },
                }
            )
            # RFC 5176 §3.3 replay protection, as sent (test_coa_replay.py checks it).
            self.event_timestamps.append(request.get("Event-Timestamp"))
            if not authentic:
                continue  # RFC 5176: a request that fails the check is silently discarded
            action = self.script.pop(0) if self.script else ACK
            if action == DROP:
                continue
            reply = request.CreateReply()
            reply.add_message_authenticator()
            if action != ACK:
                reply.code = (
                    radius_packet.DisconnectNAK
                    if request.code == radius_packet.DisconnectRequest
                    else radius_packet.CoANAK
                )
                if action[1] is not None:
                    reply["Error-Cause"] = action[1]
            self.sock.sendto(reply.ReplyPacket(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
