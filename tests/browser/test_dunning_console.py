"""Dunning in a real browser, as an operator works in Russian: the queue lists the debtors, the card says
"Ограничен" with what to pay (a debtor used to show a green "Активен"), a terminal payment restores access at
once, and the subscriber list filters by access. Then the notification log shows what the subscriber was told.
No Content-Security-Policy violation on the way."""

import re
import urllib.request
from base64 import b64encode
from decimal import Decimal

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def _amount(text: str) -> Decimal:
    """ "1 234,50 ₽" as the page prints it."""
    return Decimal(re.sub(r"[^\d,]", "", text).replace(",", "."))


def test_an_operator_finds_a_debtor_sees_why_and_a_payment_restores_access(demo_server, browser):
    context = browser.new_context(locale="ru-RU", viewport={"width": 1440, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "operator-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/.*"))

    # The queue of the restricted: its total owed, and a debtor in it.
    page.goto(f"{demo_server['base']}/staff/dunning/?state=restricted")
    rows = page.locator("tr.queue-row")
    assert rows.count() > 0
    debtor = rows.first
    account = debtor.locator("td.account-number").inner_text().strip()
    owed = _amount(debtor.locator("td.text-end").first.inner_text())
    assert owed > 0
    assert "Ограничен" in debtor.inner_text()

    # The card says so beside the name, with what to pay; no green "Активен" for a debtor.
    debtor.locator("td.account-number a").click()
    page.wait_for_selector(".access-badge")
    badge = page.locator(".access-badge").first
    assert badge.inner_text().strip() == "Ограничен"
    assert "access-restricted" in badge.get_attribute("class")
    detail = page.locator("#access-detail").inner_text()
    assert "восстановить доступ" in detail.lower() or "оплатите" in detail.lower(), detail
    header = page.locator("h1").first.inner_text()
    assert "Активен" not in header

    # The subscriber pays the debt at a terminal (the demo banner's agent): access is back at once.
    auth = b64encode(b"demo:abonent-demo-agent-secret").decode()
    request = urllib.request.Request(
        f"{demo_server['base']}/pay/agents/demo-terminal/?command=pay&txn_id=88001&account={account}"
        f"&sum={owed + 1000:.2f}&txn_date=20261206120000",
        headers={"Authorization": f"Basic {auth}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert b"<result>0</result>" in response.read()
    page.reload()
    badge = page.locator(".access-badge").first
    assert badge.inner_text().strip() in ("Активен", "Предупреждён")
    assert "access-restricted" not in badge.get_attribute("class")

    # The list filters by access state, and the one who paid is not among the restricted any more.
    page.goto(f"{demo_server['base']}/staff/subscribers/?access=restricted")
    listed = page.locator("table tbody tr")
    assert listed.count() > 0
    assert all("Ограничен" in row for row in listed.all_inner_texts())
    assert account not in page.locator("table").first.inner_text()
    page.goto(f"{demo_server['base']}/staff/dunning/?state=restricted")
    assert account not in page.locator("table").first.inner_text()
    assert page.evaluate("window.__violations") == []
    context.close()
