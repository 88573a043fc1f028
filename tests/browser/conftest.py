"""Browser tests: Debian's Chromium driven by Playwright, against a real ``abonent demo`` process."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("ABONENT_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if os.environ.get("ABONENT_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium not found at {CHROMIUM}; run scripts/install-system-deps")
        pytest.skip("Chromium is not installed (scripts/install-system-deps installs it)")
    return CHROMIUM


# Per module, not per session: Playwright's sync API keeps its event loop marked as running in the worker's main
# thread while it is started, so a test that calls ``asyncio.run`` and lands on that xdist worker after a browser
# test failed ("cannot be called from a running event loop"). A launch per module costs about a second.
@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@contextlib.contextmanager
def _running_demo(var_dir: Path, *, subscribers: int = 200, extra_env: dict[str, str] | None = None):
    """``abonent demo`` exactly as a newcomer runs it, on SQLite in ``var_dir`` and a free port, with ``extra_env``
    on top of a clean environment (no ABONENT_* or DATABASE_URL of the developer's)."""
    port = _free_port()
    # RADIUS on ports of its own: a developer's `make demo` on the default ports must not collide with this one.
    radius_auth_port, radius_acct_port = _free_udp_port(), _free_udp_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABONENT_") and k != "DATABASE_URL"}
    env |= {"ABONENT_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"} | (extra_env or {})
    log = open(var_dir / "demo.log", "w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "abonent.cli",
            "demo",
            "--port",
            str(port),
            "--subscribers",
            str(subscribers),
            "--radius-auth-port",
            str(radius_auth_port),
            "--radius-acct-port",
            str(radius_acct_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=var_dir,
    )
    base = f"http://127.0.0.1:{port}"
    # Generous: the demo migrates a fresh SQLite database first, which takes a minute or two on a loaded 2-core
    # machine; the deadline only decides how long a demo that never comes up is waited for.
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            process.kill()
            pytest.fail(f"abonent demo did not start:\n{log.read()}")
        time.sleep(0.3)
    try:
        yield {
            "base": base,
            "db": var_dir / "abonent.sqlite3",
            "log": var_dir / "demo.log",
            "process": process,
            "radius_auth_port": radius_auth_port,
            "radius_acct_port": radius_acct_port,
        }
    finally:
        process.send_signal(2)  # Ctrl-C, as an operator stops it
        try:
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory):
    """``abonent demo`` exactly as a newcomer runs it, on SQLite in a scratch directory and a free port."""
    with _running_demo(tmp_path_factory.mktemp("demo-var")) as demo:
        yield demo


@pytest.fixture(scope="session")
def portal_demo(tmp_path_factory):
    """A demo of its own for the subscriber portal, with online payment on: YooKassa is a local server
    (``tests/browser/yookassa_page.py``: the API and a test double of the hosted payment page) that is also
    accepted as the sender of notifications. ``gateway`` is that server; ``portal_logins`` the banner's
    (account number, password, name) lines."""
    from tests.browser.yookassa_page import SECRET, SHOP_ID, serve

    with serve() as gateway:
        env = {
            "ABONENT_YOOKASSA_SHOP_ID": SHOP_ID,
            "ABONENT_YOOKASSA_SECRET_KEY": SECRET,
            "ABONENT_YOOKASSA_API_URL": f"{gateway.base}/v3",
            "ABONENT_YOOKASSA_NETWORKS": "127.0.0.1/32",  # the notifications come from the local test server
            "ABONENT_YOOKASSA_CONNECT_TIMEOUT": "2",
            "ABONENT_YOOKASSA_READ_TIMEOUT": "10",
        }
        with _running_demo(tmp_path_factory.mktemp("portal-demo-var"), extra_env=env) as demo:
            gateway.notify_url = f"{demo['base']}/pay/yookassa/notifications"
            banner = demo["log"].read_text()
            block = banner.split("Portal logins at /my/", 1)[1].split("\n\n", 1)[0]
            logins = [tuple(line.split(None, 2)) for line in block.splitlines()[1:] if line.strip()]
            yield demo | {"gateway": gateway, "portal_logins": logins}
