"""The screen-pop in Chromium: the demo's operator (extension 101) is signed in to the console; a test PBX (a local
server speaking Asterisk's Manager Interface) rings 101 through ``abonent telephony`` running beside the demo; the
card of the caller pops on the operator's page, and its link opens the subscriber."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from abonent.integrations.telephony.testing import FakeAsterisk, incoming_call

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]


@pytest.fixture
def pbx(demo_server):
    """The test PBX and ``abonent telephony`` listening to it, on the demo's database."""
    server = FakeAsterisk().start()
    var_dir = demo_server["db"].parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABONENT_") and k != "DATABASE_URL"}
    env |= {"ABONENT_VAR_DIR": str(var_dir), "ABONENT_AMI_SECRET": server.secret, "PYTHONUNBUFFERED": "1"}
    log = open(var_dir / "telephony.log", "w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "abonent.cli", "telephony", "--host", "127.0.0.1", "--port", str(server.port)],
        env=env,
        cwd=var_dir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        server.wait_logins(1, timeout=30)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        server.stop()


def test_operator_sees_the_callers_card_pop_when_their_extension_rings(demo_server, browser, pbx):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "operator-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))
    page.wait_for_selector("#screen-pop", state="attached")

    # when the PBX rings 101 from the featured subscriber's phone (again every 2 s until the stream is open)
    pop = page.locator(".screen-pop-card")
    for attempt in range(8):
        events = incoming_call(f"{time.time():.6f}", "8 916 123-45-67", "101")
        pbx.send(events["new"] + b"garbage between events\r\n" + events["ring"])
        try:
            pop.first.wait_for(timeout=2000)
            break
        except Exception:
            assert attempt < 7, "no screen-pop in 16 s"

    # then the pop shows the caller's card with a link, under the CSP (no console errors)
    card = pop.first
    assert "Incoming call: +7 916 123-45-67" in card.inner_text()
    link = card.locator("a", has_text="Иванов Иван Петрович")
    assert link.count() == 1
    assert "Balance:" in card.inner_text()
    link.click()
    page.wait_for_selector("#card-header")
    assert "Иванов" in page.locator("#card-header").inner_text()
    assert not [e for e in errors if "Content Security Policy" in e]
    context.close()
