"""The dashboard and the network pages in Chromium against ``abonent demo``: the seeded week of samples drawn as
charts by uPlot from the page's JSON, the widgets reloaded by htmx with their charts, a session disconnected from
the sessions page with the truthful "queued", and no Content-Security-Policy violation anywhere."""

import re

import pytest

from .test_content_security_policy import RECORD_VIOLATIONS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]


@pytest.fixture
def operator_page(demo_server, browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "engineer")
    page.fill("input[name=password]", "engineer-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/dashboard/$"))
    yield page
    context.close()


def test_the_dashboard_draws_the_seeded_week_and_redraws_after_a_refresh(operator_page):
    page = operator_page

    page.locator("[data-chart-key=online_week] canvas").wait_for(timeout=10_000)
    assert page.locator("#widget-network [data-chart] canvas").count() == 2
    assert int(page.locator("[data-figure=online]").inner_text()) > 0
    assert page.locator("#nas-health tr[data-nas=bras-tver]").is_visible()
    # What hx-trigger="every 30s" does, now: the fragment replaces the widgets and charts.js draws them again.
    page.evaluate("document.getElementById('dashboard').dataset.before = 'refresh'")
    page.evaluate("htmx.ajax('GET', '/staff/dashboard/widgets/', {target: '#dashboard', swap: 'outerHTML'})")
    fresh = page.locator("#dashboard:not([data-before]) #widget-network [data-chart-drawn] canvas")
    fresh.nth(1).wait_for(timeout=10_000)
    assert fresh.count() == 2
    assert page.evaluate("window.__violations") == []


def test_the_nas_card_draws_its_charts(demo_server, operator_page):
    page = operator_page
    page.click("#nas-health a:text('bras-tver')")
    page.wait_for_selector("#nas-card")

    page.locator("[data-chart-key=day_traffic] canvas").wait_for(timeout=10_000)
    assert page.locator("[data-chart] canvas").count() == 4
    assert page.locator("#nas-sessions tbody tr").count() == 20
    assert page.evaluate("window.__violations") == []


def test_a_session_is_disconnected_from_the_sessions_page_and_the_page_says_queued(demo_server, operator_page):
    page = operator_page
    page.goto(f"{demo_server['base']}/staff/network/sessions/?nas=&login=&ip=&plan=")
    row = page.locator("#sessions tbody tr").first
    page.once("dialog", lambda dialog: dialog.accept())

    row.locator("button.session-disconnect").click()

    outcome = row.locator(".coa-queued")
    outcome.wait_for(timeout=10_000)
    assert "queued for" in outcome.inner_text() and "sent within a minute" in outcome.inner_text()
    assert row.locator(".coa-status[data-status]").count() == 1
    assert page.evaluate("window.__violations") == []
