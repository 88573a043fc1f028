"""Asterisk Manager Interface: the wire format and an asyncio client that logs in, reads call events, and comes
back after a dropped connection.

The wire format (Asterisk's docs, "AMI v2 Specification"): after connecting the server sends one banner line
``Asterisk Call Manager/5.0.x``; then messages, each a block of ``Key: Value`` lines ended by an empty line, lines
ended by CRLF. A line without ": " (garbage from a proxy, a half-written line after a reconnect) is skipped and
counted; a line over ``MAX_LINE`` bytes is dropped whole, so a peer cannot make us buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

MAX_LINE = 8192
MAX_KEYS = 200


@dataclass
class Parser:
    """Bytes in, messages out. A message is a dict of its keys (the first value of a repeated key wins, except
    ``ChanVariable``/``Variable`` lines ``NAME=value``, gathered in ``message["_vars"]``)."""

    buffer: bytearray = field(default_factory=bytearray)
    current: dict = field(default_factory=dict)
    garbage: int = 0
    skipping: bool = False  # inside a line that grew past MAX_LINE: drop up to its end

    def feed(self, data: bytes) -> list[dict]:
        self.buffer.extend(data)
        messages: list[dict] = []
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                if len(self.buffer) > MAX_LINE:
                    self.buffer.clear()
                    self.skipping = True
                    self.garbage += 1
                return messages
            raw = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            if self.skipping:
                self.skipping = False
                continue
            if len(raw) > MAX_LINE:
                self.garbage += 1
                continue
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if not line.strip():
                if self.current:
                    messages.append(self.current)
                    self.current = {}
                continue
            if line.startswith("Asterisk Call Manager/"):
                self.current = {"_banner": line[len("Asterisk Call Manager/") :].strip()}
                messages.append(self.current)
                self.current = {}
                continue
            key, sep, value = line.partition(":")
            key = key.strip()
            if not sep or not key or " " in key or len(self.current) >= MAX_KEYS:
                self.garbage += 1
                continue
            value = value.strip()
            if (key in ("ChanVariable", "Variable") and "=" in value) or key.startswith(("ChanVariable(", "Variable(")):
                # ``ChanVariable: NAME=value``; older Asterisk: ``ChanVariable(SIP/101-0001): NAME=value``. Bounded
                # like the keys: a message of endless distinct variables must not grow without limit.
                name, _eq, var = value.partition("=")
                variables = self.current.setdefault("_vars", {})
                if len(variables) >= MAX_KEYS and name.strip() not in variables:
                    self.garbage += 1
                    continue
                variables[name.strip()] = var
            else:
                self.current.setdefault(key, value)


def action(name: str, action_id: str, **fields: str) -> bytes:
    lines = [f"Action: {name}", f"ActionID: {action_id}"]
    for key, value in fields.items():
        clean = str(value).replace("\r", "").replace("\n", "")  # no header injection through a setting
        lines.append(f"{key}: {clean}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class LoginRefused(Exception):
    pass


@dataclass
class ClientStats:
    connects: int = 0
    logins: int = 0
    messages: int = 0
    events: int = 0
    garbage: int = 0
    disconnects: int = 0


@dataclass
class AmiClient:
    """Connects, logs in, feeds every event to ``on_event`` (awaited: it should only queue), and reconnects with
    exponential backoff and jitter after any failure. Every wait has a deadline: the connect, the login's answer,
    and reads (a silent server is pinged after ``idle_seconds``; no answer within another ``idle_seconds`` and the
    connection is given up)."""

    host: str
    port: int
    username: str
    secret: str
    on_event: Callable[[dict], Awaitable[None]]
    connect_timeout: float = 5.0
    idle_seconds: float = 30.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    events: str = "call,cdr"
    stats: ClientStats = field(default_factory=ClientStats)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        backoff = self.backoff_initial
        while not stop.is_set():
            logins = self.stats.logins
            try:
                if await self._until_stopped(self._session(stop), stop):
                    break
            except asyncio.CancelledError:
                raise
            except LoginRefused as exc:
                logger.error("AMI login to %s:%s refused: %s", self.host, self.port, exc)
            except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
                logger.warning("AMI %s:%s: %s", self.host, self.port, exc or type(exc).__name__)
            self.connected.clear()
            if stop.is_set():
                break
            if self.stats.logins > logins:
                # A session that logged in and then ended (Asterisk restarted after a day): start the backoff
                # afresh. Every session ends in an exception, so this is where it is known.
                backoff = self.backoff_initial
            delay = backoff * (0.8 + 0.4 * random.random())
            logger.info("AMI: reconnecting in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            backoff = min(backoff * 2, self.backoff_max)

    @staticmethod
    async def _until_stopped(work, stop: asyncio.Event) -> bool:
        """Run ``work`` until it ends (its exception propagates) or ``stop`` is set (True: cancelled)."""
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if task.done():
            task.result()
            return stop.is_set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    async def _session(self, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout=self.connect_timeout
        )
        self.stats.connects += 1
        parser = Parser()
        try:
            writer.write(action("Login", "login", Username=self.username, Secret=self.secret, Events=self.events))
            await asyncio.wait_for(writer.drain(), self.connect_timeout)
            logged_in = False
            pinged = False
            # The login as a whole has a deadline, not each read: a peer that trickles a byte at a time (or events,
            # or garbage) without answering Login would otherwise hold us for ever.
            login_by = asyncio.get_running_loop().time() + self.connect_timeout
            while not stop.is_set():
                wait = self.idle_seconds
                if not logged_in:
                    wait = min(wait, login_by - asyncio.get_running_loop().time())
                    if wait <= 0:
                        raise TimeoutError("no answer to Login from the AMI server")
                try:
                    data = await asyncio.wait_for(reader.read(65536), wait)
                except TimeoutError:
                    if not logged_in or pinged:
                        raise TimeoutError("no answer from the AMI server") from None
                    writer.write(action("Ping", "ping"))
                    await asyncio.wait_for(writer.drain(), self.connect_timeout)
                    pinged = True
                    continue
                if not data:
                    self.stats.disconnects += 1
                    raise ConnectionError("the AMI server closed the connection")
                pinged = False
                before = parser.garbage
                for message in parser.feed(data):
                    self.stats.messages += 1
                    if not logged_in:
                        if message.get("ActionID") == "login" and "Response" in message:
                            if message["Response"].lower() != "success":
                                raise LoginRefused(message.get("Message", "refused"))
                            logged_in = True
                            self.stats.logins += 1
                            self.connected.set()
                            logger.info("AMI: logged in to %s:%s", self.host, self.port)
                        continue
                    if "Event" in message:
                        self.stats.events += 1
                        await self.on_event(message)
                if parser.garbage > before:
                    self.stats.garbage += parser.garbage - before
                    logger.info("AMI: %d unreadable line(s) skipped", parser.garbage - before)
        finally:
            writer.close()
            with contextlib.suppress(TimeoutError, OSError, ConnectionError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
