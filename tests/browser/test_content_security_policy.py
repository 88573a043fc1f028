"""The console, the admin and the API docs work under the Content-Security-Policy, with no violation reported."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

# Playwright's init scripts are not subject to the page's policy: this listener sees every violation.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture
def admin_page(demo_server, browser):
    context = browser.new_context(locale="en-US")
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))
    yield page
    context.close()


def _violations(page) -> list[str]:
    return page.evaluate("window.__violations")


def test_console_pages_and_htmx_run_without_a_violation(demo_server, admin_page):
    page = admin_page
    response = page.goto(f"{demo_server['base']}/staff/subscribers/")
    assert "script-src 'self';" in response.headers["content-security-policy"]

    page.fill("#id_q", "+7 916 123-45-67")  # htmx swaps the results in
    page.locator("#results a.subscriber-link", has_text="Иванов Иван Петрович").click()
    page.wait_for_selector("#panel-contacts")
    panel = page.locator("#panel-contacts")
    panel.locator("summary").click()
    panel.locator("input[name=value]").fill("12345")
    panel.locator("button[type=submit]", has_text="Save").click()  # an htmx form answered with 422
    page.locator("#panel-contacts .invalid-feedback").wait_for(timeout=10_000)
    assert _violations(page) == []

    pages = (
        "/staff/catalog/plans/new/",
        "/staff/network/nas/",
        "/staff/network/sessions/",
        "/staff/network/pools/",
        "/staff/network/traffic/",
        "/staff/admin/",
        "/staff/admin/staff/staffuser/",
    )
    for path in pages:
        page.goto(f"{demo_server['base']}{path}")
        assert page.locator("body").inner_text(), path
        assert _violations(page) == [], path


def test_the_language_switcher_works_without_an_inline_handler(demo_server, admin_page):
    page = admin_page
    page.goto(f"{demo_server['base']}/staff/subscribers/")
    assert page.locator("h1").inner_text() == "Subscribers"

    with page.expect_navigation():
        page.select_option("select[name=language]", "ru")

    assert page.locator("h1").inner_text() == "Абоненты"
    assert _violations(page) == []


def test_the_api_docs_render_under_the_policy(demo_server, admin_page):
    page = admin_page
    page.goto(f"{demo_server['base']}/api/v1/docs")
    page.locator(".swagger-ui .opblock").first.wait_for(timeout=15_000)
    assert _violations(page) == []
