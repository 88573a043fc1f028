"""The helpdesk's SLA part in Chromium against a real ``abonent demo``: a critical request opened from the card
shows its running timers on the list and its page, is put in a queue with an assignee, and gets a file that the
console serves back through its checked view (and that no one signed out can fetch)."""

from __future__ import annotations

import re
import sqlite3
import uuid

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)


@pytest.fixture
def console(demo_server, browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "operator-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))
    yield page
    context.close()


def test_a_critical_request_runs_its_timers_is_routed_and_takes_a_file(console, demo_server, browser):
    from playwright.sync_api import expect

    page, base = console, demo_server["base"]
    subject = f"Авария {uuid.uuid4().hex[:6]}"
    page.goto(f"{base}/staff/subscribers/")
    page.fill("#id_q", "+7 916 123-45-67")
    page.locator("#results a.subscriber-link", has_text="Иванов Иван Петрович").click()
    panel = page.locator("#panel-tickets")
    panel.locator("summary").click()
    panel.locator("#ticket-category").select_option("no_connection")
    panel.locator("#ticket-priority").select_option("critical")
    panel.locator("#ticket-subject").fill(subject)
    panel.locator("#ticket-text").fill("Нет связи у всего дома")
    panel.locator("button[type=submit]").click()
    expect(panel.locator(".ticket-row", has_text=subject)).to_be_visible()

    page.goto(f"{base}/staff/helpdesk/?q={subject}")
    row = page.locator("#tickets .ticket-row").first
    expect(row.locator("[data-sla=running]")).to_have_count(2)  # first response and resolution, both running
    assert "left" in row.inner_text()
    row.locator("a", has_text=subject).click()
    expect(page.locator("#ticket-sla [data-sla=running]")).to_have_count(2)

    page.locator("#routing-queue").select_option(label="Линия 1")
    page.locator("#routing-assignee").select_option(label="Поддержкин Павел")
    page.locator("form[action$='/route/'] button[type=submit]").click()
    expect(page.locator("#ticket-queue")).to_have_text("Линия 1")
    expect(page.locator("#ticket-assignee")).to_have_text("Поддержкин Павел")

    page.locator("#reply-text").fill("Фото щитка")
    page.locator("#reply-attachment").set_input_files(
        files=[{"name": "shield.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.locator("form[action$='/reply/'] button[type=submit]").click()
    link = page.locator("a[data-attachment]", has_text="shield.png")
    expect(link).to_be_visible()
    # The first public reply stopped the first-response clock in time.
    expect(page.locator("#sla-first-response [data-sla=met]")).to_be_visible()
    href = link.get_attribute("href")
    served = page.request.get(f"{base}{href}")
    assert served.status == 200 and served.body() == PNG
    assert served.headers["content-type"] == "image/png"
    stranger = browser.new_context()
    assert stranger.request.get(f"{base}{href}", max_redirects=0).status == 302  # to the login, not the file
    stranger.close()

    with sqlite3.connect(demo_server["db"]) as db:
        queue, assignee, sha = db.execute(
            "SELECT q.name, u.username, a.sha256 FROM helpdesk_ticket t JOIN helpdesk_queue q ON q.id = t.queue_id"
            " JOIN staff_staffuser u ON u.id = t.assignee_id JOIN helpdesk_ticketattachment a ON a.ticket_id = t.id"
            " WHERE t.subject = ?",
            (subject,),
        ).fetchone()
    assert (queue, assignee) == ("Линия 1", "support")
    assert len(sha) == 64
