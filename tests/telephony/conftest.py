from __future__ import annotations

import asyncio
import threading

import pytest
from django.test import Client

from abonent.integrations.telephony.actions import do_set_extension
from abonent.integrations.telephony.testing import FakeAsterisk


@pytest.fixture
def ami_server():
    server = FakeAsterisk().start()
    yield server
    server.stop()


@pytest.fixture
def cookies_of():
    def cookies(user) -> dict[str, str]:
        client = Client()
        client.force_login(user)
        return {"sessionid": client.cookies["sessionid"].value}

    return cookies


@pytest.fixture
def give_extension(admin):
    def give(user, number: str):
        return do_set_extension(user, number, acting_user=admin)

    return give


@pytest.fixture
def recordings(settings, tmp_path):
    root = tmp_path / "recordings"
    root.mkdir()
    settings.ABONENT_RECORDINGS_DIR = str(root)
    return root


def run_coroutine(coroutine, *, timeout: float = 60.0):
    """``asyncio.run(coroutine)`` in a thread of its own: on the xdist worker that runs the browser tests,
    Playwright's sync API keeps an event loop running in the main thread, where ``asyncio.run`` refuses to start."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = asyncio.run(coroutine)
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="test-asyncio")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the coroutine did not finish within {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
