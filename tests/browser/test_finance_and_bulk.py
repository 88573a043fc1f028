"""The Finance menu and pages, and the subscriber list's bulk bar, in Chromium against the demo: under the
Content-Security-Policy, at 1024 px wide, with the worker answering "verify now"."""

import re
import time

import pytest

from .test_content_security_policy import RECORD_VIOLATIONS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]


@pytest.fixture
def admin_page(demo_server, browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1024, "height": 800})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))  # staff land on the dashboard
    page.goto(f"{demo_server['base']}/staff/subscribers/")
    yield page
    context.close()


def _fits(page) -> bool:
    # The page's own content (the navbar is the base template's, shared by every page).
    return page.evaluate("document.querySelector('main').scrollWidth <= window.innerWidth")


def test_the_finance_pages_open_from_the_menu_and_verify_now_reaches_the_worker(demo_server, admin_page):
    page = admin_page
    page.set_viewport_size({"width": 1440, "height": 900})
    page.locator("#nav-finance .dropdown-toggle").click()
    page.locator("#nav-finance .dropdown-item", has_text="Receivables").click()
    page.wait_for_selector("#ageing-buckets")
    assert page.locator("#ageing-buckets tfoot [data-count]").inner_text().isdigit()
    page.set_viewport_size({"width": 1024, "height": 800})
    assert _fits(page)
    for path in ("/staff/reports/billing-runs/", "/staff/reports/ledger/"):
        page.goto(f"{demo_server['base']}{path}")
        assert _fits(page), path
    page.locator("button", has_text="Verify now").click()
    page.wait_for_selector("#ledger-pending")
    deadline = time.monotonic() + 60
    while page.locator("#ledger-latest").get_attribute("data-status") == "none" and time.monotonic() < deadline:
        time.sleep(1)
        page.reload()
    assert page.locator("#ledger-latest").get_attribute("data-status") == "ok"
    assert page.locator("#ledger-latest").inner_text().startswith("The ledger is consistent")
    assert page.evaluate("window.__violations") == []


def test_the_bulk_bar_ticks_previews_and_confirms_a_group_change(demo_server, admin_page):
    page = admin_page
    page.goto(f"{demo_server['base']}/staff/subscribers/?status=active")
    rows = page.locator("input[data-bulk-row]")
    assert page.locator("[data-bulk-ticked]").is_disabled()
    rows.nth(0).check()
    rows.nth(1).check()
    assert page.locator("[data-bulk-count]").inner_text() == "2"
    page.locator("input[data-bulk-all]").check()
    assert page.locator("[data-bulk-count]").inner_text() == str(rows.count())
    page.locator("input[data-bulk-all]").uncheck()
    rows.nth(0).check()
    rows.nth(1).check()
    page.locator("#bulk-form select[name=kind]").select_option("group_add")
    page.locator("[data-bulk-ticked]").click()
    page.wait_for_selector("#bulk-action-form")
    assert "2 subscribers ticked on the list." in page.locator("#bulk-selection").inner_text()
    # Only the chosen action's fields show.
    assert page.locator("[data-bulk-for='group_add group_remove']").is_visible()
    assert not page.locator("[data-bulk-for='message']").is_visible()
    page.locator("#id_group").select_option(index=1)
    page.locator("button[value=preview]").click()
    page.wait_for_selector("#bulk-preview")
    touched = int(page.locator("#preview-touched").inner_text())
    page.locator("#bulk-confirm").click()
    page.wait_for_selector("#bulk-result[data-status=done]")
    assert int(page.locator("#result-done").inner_text()) == touched
    assert _fits(page)
    assert page.evaluate("window.__violations") == []
