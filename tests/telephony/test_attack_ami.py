"""Attack review of the AMI client against hostile or broken peers (no database): a peer that keeps talking but
never answers Login, a flood of variables in one message, the backoff after a long good session."""

from __future__ import annotations

import asyncio
import time

from abonent.integrations.telephony.ami import AmiClient, Parser

from .conftest import run_coroutine


async def _noop(message: dict) -> None:
    return None


def test_a_peer_that_trickles_bytes_but_never_answers_login_is_given_up_at_the_login_deadline():
    # The banner, then one garbage line every 0.1 s forever: each read resets a per-read timer, so without a
    # deadline on the login as a whole the client waited for ever.
    async def main():
        sessions = []

        async def peer(reader, writer):
            sessions.append(time.monotonic())
            writer.write(b"Asterisk Call Manager/5.0.1\r\n")
            try:
                while True:
                    writer.write(b"noise\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.1)
            except (ConnectionError, OSError):
                pass

        server = await asyncio.start_server(peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = AmiClient(
            "127.0.0.1",
            port,
            "u",
            "s",
            _noop,
            connect_timeout=0.5,
            idle_seconds=0.5,
            backoff_initial=0.05,
            backoff_max=0.1,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        await asyncio.sleep(2.5)
        stop.set()
        await asyncio.wait_for(task, 5)
        server.close()
        return sessions

    sessions = run_coroutine(main())
    assert len(sessions) >= 2, "the client never gave up a login that was not answered"


def test_a_message_of_endless_distinct_variables_is_bounded():
    parser = Parser()
    chunk = b"".join(b"ChanVariable: V%d=x\r\n" % i for i in range(50_000))
    parser.feed(b"Event: Cdr\r\n" + chunk)
    assert len(parser.current.get("_vars", {})) <= 200
    assert parser.garbage > 0


def test_after_a_session_that_logged_in_the_backoff_starts_again_from_the_initial_delay():
    # The peer refuses connections a few times (the backoff grows to its max), then accepts, logs in, keeps the
    # session a while and drops it (Asterisk restarted): the next connect must come after the initial delay.
    async def main():
        accepted = []

        async def peer(reader, writer):
            accepted.append(time.monotonic())
            writer.write(b"Asterisk Call Manager/5.0.1\r\n")
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"Response: Success\r\nActionID: login\r\nMessage: ok\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.6)
            writer.transport.abort()

        probe = await asyncio.start_server(peer, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        client = AmiClient(
            "127.0.0.1",
            port,
            "u",
            "s",
            _noop,
            connect_timeout=0.5,
            idle_seconds=5,
            backoff_initial=0.05,
            backoff_max=1.5,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(client.run(stop))
        await asyncio.sleep(2.0)  # refused: 0.05, 0.1, 0.2, 0.4, 0.8 ... the backoff is now near its max
        server = await asyncio.start_server(peer, "127.0.0.1", port)
        deadline = time.monotonic() + 6
        while len(accepted) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
        server.close()
        return accepted

    accepted = run_coroutine(main())
    assert len(accepted) >= 2
    # the session lasted 0.6 s; a reconnect after the initial delay (±20 %) comes well within 0.9 s of its start
    assert accepted[1] - accepted[0] < 0.9
