"""Test doubles speaking the real protocols, shared by tests/telephony, the browser test and bench/screen_pop.py:
an Asterisk Manager Interface server (``FakeAsterisk``), the ``abonent telephony`` client run in a thread
(``running_client``), the ASGI app under uvicorn in a thread (``running_web``) and an SSE reader (``SseReader``)."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

BANNER = b"Asterisk Call Manager/5.0.2\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def message(**fields) -> bytes:
    """One AMI message: ``Key: Value`` lines, CRLF, a blank line at the end."""
    return ("".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode()


def incoming_call(
    linkedid: str, caller: str, extension: str, *, answer: bool = True, recording: str = "", talk: int = 42
) -> dict[str, bytes]:
    """The events Asterisk 20 sends for a call from a trunk to ``extension`` (manager.conf ``timestampevents = yes``;
    cdr_manager with a ``recordingfile`` mapping), by stage."""
    leg = f"{linkedid}-leg"
    now = f"{time.time():.6f}"
    common = {"Linkedid": linkedid, "Timestamp": now}
    ring = message(
        Event="DialBegin",
        Privilege="call,all",
        Channel="PJSIP/trunk-00000001",
        CallerIDNum=caller,
        Exten="4950000000",
        Uniqueid=linkedid,
        DestChannel=f"PJSIP/{extension}-00000002",
        DestCallerIDNum=extension,
        DestUniqueid=leg,
        DialString=extension,
        **common,
    )
    return {
        "new": message(
            Event="Newchannel",
            Privilege="call,all",
            Channel="PJSIP/trunk-00000001",
            ChannelState="4",
            CallerIDNum=caller,
            Exten="4950000000",
            Context="from-trunk",
            Uniqueid=linkedid,
            **common,
        ),
        "ring": ring,
        "dial_end": message(
            Event="DialEnd",
            Channel="PJSIP/trunk-00000001",
            Uniqueid=linkedid,
            DestChannel=f"PJSIP/{extension}-00000002",
            DialStatus="ANSWER" if answer else "NOANSWER",
            **common,
        ),
        "hangup": message(Event="Hangup", Channel="PJSIP/trunk-00000001", Uniqueid=linkedid, Cause="16", **common),
        "cdr": message(
            Event="Cdr",
            Privilege="cdr,all",
            Source=caller,
            Destination=extension,
            Channel="PJSIP/trunk-00000001",
            DestinationChannel=f"PJSIP/{extension}-00000002",
            StartTime="2026-12-07 10:00:00",
            AnswerTime="2026-12-07 10:00:05" if answer else "",
            EndTime="2026-12-07 10:00:47",
            Duration=str(talk + 5),
            BillableSeconds=str(talk if answer else 0),
            Disposition="ANSWERED" if answer else "NO ANSWER",
            UniqueID=linkedid,
            Recordingfile=recording,
        ),
    }


@dataclass
class FakeAsterisk:
    """A TCP server speaking AMI in its own thread: the banner, Login (Success for ``secret``, else Error), and
    whatever bytes the test sends to the logged-in clients; ``drop()`` closes their connections."""

    username: str = "abonent"
    secret: str = "ami-secret"  # noqa: S105 - a test double's
    port: int = 0
    logins: int = 0
    refused: int = 0
    actions: list = field(default_factory=list)
    _writers: list = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _logged_in: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> FakeAsterisk:
        self.port = self.port or free_port()
        threading.Thread(target=self._thread, daemon=True, name="fake-asterisk").start()
        self._ready.wait(5)
        return self

    def _thread(self) -> None:
        self._loop = asyncio.new_event_loop()
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        self._server = server
        self._ready.set()
        self._loop.run_forever()

    async def _client(self, reader, writer) -> None:
        writer.write(BANNER)
        buffer = b""
        try:
            while data := await reader.read(4096):
                buffer += data
                while b"\r\n\r\n" in buffer:
                    raw, buffer = buffer.split(b"\r\n\r\n", 1)
                    fields = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
                    self.actions.append(fields)
                    if fields.get("Action") == "Login":
                        ok = fields.get("Username") == self.username and fields.get("Secret") == self.secret
                        writer.write(
                            message(
                                Response="Success" if ok else "Error",
                                ActionID=fields.get("ActionID", ""),
                                Message="Authentication accepted" if ok else "Authentication failed",
                            )
                        )
                        if ok:
                            self._writers.append(writer)
                            with self._logged_in:
                                self.logins += 1
                                self._logged_in.notify_all()
                        else:
                            self.refused += 1
                    elif fields.get("Action") == "Ping":
                        writer.write(message(Response="Success", ActionID=fields.get("ActionID", ""), Ping="Pong"))
        except (ConnectionError, OSError):
            pass
        finally:
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()

    def wait_logins(self, n: int, timeout: float = 5.0) -> None:
        with self._logged_in:
            if not self._logged_in.wait_for(lambda: self.logins >= n, timeout):
                raise AssertionError(f"{self.logins} AMI logins, expected {n}")

    def send(self, data: bytes) -> None:
        async def _send():
            for writer in list(self._writers):
                writer.write(data)
                await writer.drain()

        asyncio.run_coroutine_threadsafe(_send(), self._loop).result(5)

    def drop(self) -> None:
        async def _drop():
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        asyncio.run_coroutine_threadsafe(_drop(), self._loop).result(5)

    def stop(self) -> None:
        if self._loop is not None:
            self.drop()
            self._loop.call_soon_threadsafe(self._loop.stop)


@contextlib.contextmanager
def running_client(port: int, *, username: str = "abonent", secret: str = "ami-secret", backoff: float = 0.1):  # noqa: S107
    """``abonent telephony``'s client and lanes in a thread of their own, against 127.0.0.1:``port``."""
    from .ami import AmiClient
    from .asterisk import Dispatcher

    loop = asyncio.new_event_loop()
    holder: dict = {}
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def main():
            dispatcher = Dispatcher()
            stop = asyncio.Event()
            client = AmiClient(
                "127.0.0.1", port, username, secret, dispatcher.on_event, backoff_initial=backoff, backoff_max=1.0
            )
            holder.update(dispatcher=dispatcher, stop=stop, client=client)
            lanes = [loop.create_task(dispatcher.rings.run()), loop.create_task(dispatcher.rest.run())]
            started.set()
            await client.run(stop)
            await dispatcher.drained()
            for task in lanes:
                task.cancel()
            for lane in (dispatcher.rings, dispatcher.rest):
                lane.executor.submit(_close_connections).result(5)
                lane.executor.shutdown()

        loop.run_until_complete(main())

    thread = threading.Thread(target=run, daemon=True, name="telephony-client")
    thread.start()
    started.wait(5)
    try:
        yield holder
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(10)


def drain(holder: dict, timeout: float = 5.0) -> None:
    """Wait until the client's lanes have written everything they received."""
    deadline = time.monotonic() + timeout
    dispatcher = holder["dispatcher"]
    while time.monotonic() < deadline:
        if dispatcher.rings.queue.empty() and dispatcher.rest.queue.empty():
            # The last batch may still be in its thread: an empty round-trip through each executor waits for it.
            dispatcher.rings.executor.submit(lambda: None).result(timeout)
            dispatcher.rest.executor.submit(lambda: None).result(timeout)
            if dispatcher.rings.queue.empty() and dispatcher.rest.queue.empty():
                return
        time.sleep(0.02)
    raise AssertionError("the telephony client did not drain its queues")


def _close_connections() -> None:
    from django.db import connection

    connection.close()


@contextlib.contextmanager
def running_web() -> Iterator[str]:
    """The ASGI application (abonent.asgi) under uvicorn in a thread, as ``abonent web`` serves it; yields its base
    URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        "abonent.asgi:application",
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class SseReader:
    """Reads ``url``'s event stream in a thread with the session cookie; ``events`` gets ``(received_at, name,
    data)`` per event (``time.time()`` at receipt), ``comments`` counts comment lines."""

    def __init__(self, url: str, cookies: dict[str, str]) -> None:
        self.url, self.cookies = url, cookies
        self.events: queue.Queue = queue.Queue()
        self.status: int | None = None
        self.content_type = ""
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._response = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="sse-reader")

    def __enter__(self) -> SseReader:
        self.thread.start()
        if not self.opened.wait(10):
            raise AssertionError("the event stream did not open")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()  # wakes the reader blocked until the next heartbeat
        self.thread.join(0.2)  # a daemon: it ends at the latest when the server closes the stream

    def _run(self) -> None:
        import httpx

        try:
            with (
                httpx.Client(cookies=self.cookies, timeout=httpx.Timeout(30, read=None)) as client,
                client.stream("GET", self.url) as response,
            ):
                self._response = response
                self.status = response.status_code
                self.content_type = response.headers.get("content-type", "")
                name, data = "message", []
                for line in response.iter_lines():
                    self.opened.set()
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        continue
                    if not line:
                        if data:
                            self.events.put((time.time(), name, "\n".join(data)))
                        name, data = "message", []
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
        except Exception as exc:  # the reader ends with the server; kept for a failing test to show
            self.error = exc
        finally:
            self.opened.set()

    def next(self, timeout: float) -> tuple[float, str, str] | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None
