"""The cash desk in a real browser, as a cashier uses it in Russian: find the account, take cash typed with a
comma, get the printable receipt with the amount in words, find the payment in the journal; and a terminal's
``pay`` from the demo banner's agent appears beside it. No Content-Security-Policy violation on the way."""

import re
import sqlite3
import urllib.request
from base64 import b64encode

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def _an_active_account(db_path, offset: int) -> str:
    with sqlite3.connect(db_path) as db:
        return db.execute(
            "SELECT account_number FROM subscribers_subscriber WHERE status = 'active' ORDER BY id LIMIT 1 OFFSET ?",
            (offset,),
        ).fetchone()[0]


def test_a_cashier_takes_cash_prints_the_receipt_and_finds_it_in_the_journal(demo_server, browser):
    account = _an_active_account(demo_server["db"], 23)
    context = browser.new_context(locale="ru-RU")
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "cashier")
    page.fill("input[name=password]", "cashier-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/.*"))

    page.goto(f"{demo_server['base']}/staff/payments/cashdesk/")
    page.locator("#account-lookup input[name=account]").fill(account)
    page.locator("#account-lookup button[type=submit]").click()
    page.wait_for_selector("#cashdesk-subscriber")
    assert account in page.locator("#cashdesk-subscriber").inner_text()
    form = page.locator("#take-payment form")
    form.locator("input[name=amount]").fill("650,50")  # a comma, as a Russian cashier types it
    form.locator("button[type=submit]").click()

    page.wait_for_selector("#receipt-amount")
    assert re.sub(r"\s", "", page.locator("#receipt-amount").inner_text()).startswith("650,50")
    words = page.locator("#receipt-words").inner_text().lower()
    assert words.startswith("шестьсот пятьдесят рублей") and "пятьдесят копеек" in words
    # The same form sent again (the browser's back and resubmit) credits nothing more.
    page.go_back()
    page.goto(f"{demo_server['base']}/staff/payments/?q={account}")
    rows = page.locator("tr[data-payment]")
    assert rows.count() == 1 and "650,50" in re.sub(r"\s", "", rows.first.inner_text())

    # The demo banner's terminal agent pays the same account; the cashier sees it in the journal too.
    auth = b64encode(b"demo:abonent-demo-agent-secret").decode()
    request = urllib.request.Request(
        f"{demo_server['base']}/pay/agents/demo-terminal/?command=pay&txn_id=77001&account={account}&sum=300.00"
        "&txn_date=20261206120000",
        headers={"Authorization": f"Basic {auth}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert b"<result>0</result>" in response.read()
    page.goto(f"{demo_server['base']}/staff/payments/?q={account}")
    assert page.locator("tr[data-payment]").count() == 2
    assert page.evaluate("window.__violations") == []
    context.close()
