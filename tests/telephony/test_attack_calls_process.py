"""Attack review of ``abonent telephony``'s calls' child process: killed, or signalled with its parent (systemd
signals the whole group). Events handed to it used to be lost, and a dead child froze the whole listener."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from django.db import connection

from abonent.integrations.telephony.calls_process import ProcessLane
from abonent.integrations.telephony.models import Call

from .conftest import run_coroutine

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def child_env(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the child process needs a database it can share (PostgreSQL)")
    monkeypatch.setenv("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}")


def _hangups(prefix: str, n: int) -> list[dict]:
    return [
        {"Event": "Hangup", "Linkedid": f"{prefix}{i}", "Uniqueid": f"{prefix}{i}", "Cause": "16"} for i in range(n)
    ]


def _wait_rows(n: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = Call.objects.count()
        if count >= n:
            return count
        time.sleep(0.1)
    return Call.objects.count()


def test_a_killed_child_is_replaced_and_the_events_after_it_are_written(child_env):
    async def main():
        lane = ProcessLane()
        runner = asyncio.create_task(lane.run())
        try:
            os.kill(lane.process.pid, signal.SIGKILL)
            lane.process.join(5)
            for message in _hangups("k", 5):
                await lane.put(message)
            await asyncio.sleep(0.5)
        finally:
            runner.cancel()
            await asyncio.get_running_loop().run_in_executor(None, lane.close)
        return lane

    lane = run_coroutine(main())
    assert _wait_rows(5) == 5
    assert lane.restarts >= 1


def test_sigterm_to_the_group_loses_no_event_handed_to_the_child(child_env):
    # systemd's stop sends SIGTERM to every process of the unit at once: the child died with the batches still in
    # the pipe, then close() handed it the rest and waited for a dead process.
    async def main():
        lane = ProcessLane()
        time.sleep(3)  # the child is up (django.setup) and waiting on the pipe
        for message in _hangups("t", 20):
            await lane.put(message)
        await lane.flush()
        os.kill(lane.process.pid, signal.SIGTERM)  # the group's signal, as the parent gets it too
        await asyncio.get_running_loop().run_in_executor(None, lane.close)
        return lane

    run_coroutine(main())
    assert _wait_rows(20, timeout=5) == 20
