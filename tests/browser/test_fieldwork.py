"""The installer's day on a phone, in Chromium against the demo: the demo engineer sees today's jobs in slot order
with a phone link, ticks the checklist and the ONT issued to them, and closes the repair with a thumb-sized button.
No Content-Security-Policy violation on the way."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_the_engineer_closes_a_repair_from_a_phone(demo_server, browser):
    context = browser.new_context(
        locale="ru-RU", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "engineer")
    page.fill("input[name=password]", "engineer-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/.*"))

    page.goto(f"{demo_server['base']}/staff/fieldwork/my-day/")
    cards = page.locator("section.job-card")
    assert cards.count() == 2
    repair, connection = cards.nth(0), cards.nth(1)
    assert "10:00–11:00" in repair.inner_text() and "12:00–14:00" in connection.inner_text()
    assert repair.locator("a.job-phone").get_attribute("href") == "tel:+79161234567"
    # Nothing wider than the phone: no sideways scrolling on the installer's screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    repair.locator("input[name=item]").first.check()
    ont = repair.locator("input[name=serial]").first
    serial = ont.get_attribute("value")
    ont.check()
    repair.locator("textarea[name=result]").fill("Заменили патч-корд")
    button = repair.locator("button[type=submit]")
    assert button.bounding_box()["height"] >= 44
    button.tap()
    page.wait_for_selector(".alert-success")

    done = page.locator("section.job-card").nth(0)
    assert "Выполнен" in done.inner_text()
    assert "Заменили патч-корд" in done.inner_text()
    # The installed ONT is no longer offered for the next job.
    assert page.locator(f"section.job-card input[name=serial][value='{serial}']").count() == 0
    assert page.evaluate("window.__violations") == []
    context.close()
