"""What the console must show, in Debian's Chromium against a real ``abonent demo``: the main tasks of each role,
each checked in the database it writes, with screenshots of each step for the operator's guide.

Screenshots go to ``var/screenshots/<language>/<name>-<width>.png`` (``ABONENT_VAR_DIR`` or the repository's
``var/``) at 1440×900 and 1024×768; ``scripts/guide-screenshots`` runs this file in Russian and English and copies
the 1024-pixel ones into docs/guide/img/. ``ABONENT_SCREENSHOT_LOCALE`` picks the language (``ru-RU`` by
default): the assertions read ids, data attributes and amounts, not words, so they hold in either.

Each test works on a subscriber of its own (chosen from the demo database by what the task needs), so the order
of the tests, and the other browser tests sharing the demo, do not matter.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

REPO = Path(__file__).resolve().parents[2]
LOCALE = os.environ.get("ABONENT_SCREENSHOT_LOCALE", "ru-RU")
LANGUAGE = LOCALE.split("-")[0]
SCREENSHOTS = Path(os.environ.get("ABONENT_VAR_DIR") or REPO / "var") / "screenshots" / LANGUAGE
SIZES = ((1440, 900), (1024, 768))

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


def shot(page, name: str, *, focus: str | None = None) -> None:
    """The page at both widths, scrolled to ``focus`` (a selector) when given; the viewport, not the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        if focus:
            # Instant: Bootstrap's smooth scrolling would still be under way when the picture is taken.
            page.locator(focus).first.evaluate(
                "element => window.scrollTo({top: element.getBoundingClientRect().top + window.scrollY - 16,"
                " behavior: 'instant'})"
            )
        else:
            page.evaluate("window.scrollTo({top: 0, behavior: 'instant'})")
        page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png")
    page.set_viewport_size(original)


def amount(text: str) -> Decimal:
    """An amount as the console prints it in either language: «1 234,50 ₽», "1,234.50 ₽", "−50,00"."""
    text = re.sub(r"[^\d,.\-−]", "", text).replace("−", "-")
    if "," in text and "." in text:
        text = text.replace(",", "")  # English thousands
    return Decimal(text.replace(",", "."))


def query(demo, sql: str, *args):
    with sqlite3.connect(demo["db"]) as db:
        return db.execute(sql, args).fetchall()


def login(browser, demo, user: str):
    context = browser.new_context(locale=LOCALE, viewport={"width": 1440, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.goto(f"{demo['base']}/staff/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", f"{user}-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/(?!$).*"))
    return page


def open_card(page, demo, account: str):
    page.goto(f"{demo['base']}/staff/subscribers/?q={account}")
    # An exact account number opens the card at once (the search's identifier jump); anything else lists.
    if page.locator("#account-number").count() == 0:
        page.locator("#results a.subscriber-link").first.click()
    page.wait_for_selector("#account-number")
    assert page.locator("#account-number").inner_text() == account


def violations(page) -> list[str]:
    return page.evaluate("window.__violations")


def balance_of(demo, account: str) -> Decimal:
    ((value,),) = query(
        demo,
        """SELECT a.balance FROM billing_ledgeraccount a JOIN subscribers_subscriber s ON s.id = a.subscriber_id
           WHERE s.account_number = ?""",
        account,
    )
    return Decimal(str(value)).quantize(Decimal("0.01"))


def transactions_of(demo, account: str) -> int:
    ((count,),) = query(
        demo,
        """SELECT count(*) FROM billing_ledgertransaction t JOIN subscribers_subscriber s ON s.id = t.subscriber_id
           WHERE s.account_number = ?""",
        account,
    )
    return count


def _on_plan(demo, plan_code: str, *, offset: int = 0):
    """An active individual with a phone and a paid-up active subscription to ``plan_code``, newest first."""
    return query(
        demo,
        """SELECT s.account_number, s.display_name, c.value, b.id FROM subscribers_subscriber s
           JOIN subscribers_contactpoint c ON c.subscriber_id = s.id AND c.kind = 'phone'
           JOIN billing_subscription b ON b.subscriber_id = s.id AND b.status = 'active'
           JOIN catalog_plan p ON p.id = b.plan_id AND p.code = ?
           JOIN billing_ledgeraccount a ON a.subscriber_id = s.id
           WHERE s.kind = 'individual' AND s.status = 'active' AND a.balance >= 0
           AND NOT EXISTS (SELECT 1 FROM billing_promisedpayment pp WHERE pp.subscriber_id = s.id)
           ORDER BY s.id DESC LIMIT 1 OFFSET ?""",
        plan_code,
        offset,
    )[0]


# --- the operator -------------------------------------------------------------------------------------------


def test_operator_finds_by_phone_changes_the_plan_with_a_preview_and_sees_the_ledger_line(demo_server, browser):
    account, name, e164, subscription = _on_plan(demo_server, "home")
    ((gamer,),) = query(demo_server, "SELECT id FROM catalog_plan WHERE code = 'gamer'")
    before = transactions_of(demo_server, account)
    page = login(browser, demo_server, "operator")
    page.goto(f"{demo_server['base']}/staff/subscribers/")

    # Found by the phone as a caller dictates it: trunk prefix 8, spaces and dashes.
    page.fill("#id_q", f"8 {e164[2:5]} {e164[5:8]}-{e164[8:10]}-{e164[10:]}")
    result = page.locator("#results a.subscriber-link", has_text=name)
    result.wait_for(timeout=10_000)
    shot(page, "find-subscriber")
    result.click()
    page.wait_for_selector("#panel-subscriptions")
    assert page.locator("#account-number").inner_text() == account
    shot(page, "card")

    change = page.locator(f"details[data-form='change-{subscription}']")
    change.locator("summary").click()
    change.locator("select[name=plan]").select_option(str(gamer))
    preview = page.locator(f"#plan-change-{subscription} .plan-change-preview")
    preview.wait_for(timeout=10_000)
    balance_now = amount(preview.locator("[data-amount=balance-before]").inner_text())
    net = amount(preview.locator("[data-amount=net]").inner_text())
    balance_after = amount(preview.locator("[data-amount=balance-after]").inner_text())
    assert balance_now == balance_of(demo_server, account)
    assert balance_after == balance_now + net
    assert transactions_of(demo_server, account) == before  # a preview writes nothing
    shot(page, "plan-change-preview", focus="#panel-subscriptions")

    preview.locator("button[type=submit]").click()
    page.locator("#panel-subscriptions [role=status]").wait_for(timeout=10_000)
    ((plan_code,),) = query(
        demo_server,
        "SELECT p.code FROM billing_subscription b JOIN catalog_plan p ON p.id = b.plan_id WHERE b.id = ?",
        subscription,
    )
    assert plan_code == "gamer"
    assert balance_of(demo_server, account) == balance_after
    # The ledger panel, refreshed with the change: its newest line is the change's, and the balance column agrees.
    page.reload()
    first_line = page.locator("#ledger-lines tbody tr").first
    ((newest,),) = query(
        demo_server,
        """SELECT t.id FROM billing_ledgertransaction t JOIN subscribers_subscriber s ON s.id = t.subscriber_id
           WHERE s.account_number = ? ORDER BY t.id DESC LIMIT 1""",
        account,
    )
    assert first_line.get_attribute("data-transaction") == str(newest)
    assert amount(first_line.locator("td").nth(4).inner_text()) == balance_after
    assert transactions_of(demo_server, account) > before
    shot(page, "plan-change-ledger", focus="#panel-ledger")
    assert violations(page) == []
    page.context.close()


def test_operator_creates_a_subscriber(demo_server, browser):
    page = login(browser, demo_server, "operator")
    page.goto(f"{demo_server['base']}/staff/subscribers/new/")
    page.fill("input[name=last_name]", "Новиков")
    page.fill("input[name=first_name]", "Николай")
    page.fill("input[name=middle_name]", "Петрович")
    page.fill("input[name=phone]", "+7 916 555-01-02")
    page.fill("input[name=city]", "Тверь")
    page.fill("input[name=street]", "ул. Советская")
    page.fill("input[name=house]", "7")
    page.fill("input[name=apartment]", "15")
    branch = page.locator("select[name=branch_id] option").nth(1).get_attribute("value")
    page.locator("select[name=branch_id]").select_option(branch)
    page.check("input[name=consent_personal_data]")
    shot(page, "new-subscriber")
    page.locator("form button[type=submit].btn-primary").click()

    page.wait_for_selector("#account-number")
    account = page.locator("#account-number").inner_text()
    rows = query(
        demo_server,
        """SELECT s.display_name, c.value FROM subscribers_subscriber s
           JOIN subscribers_contactpoint c ON c.subscriber_id = s.id WHERE s.account_number = ?""",
        account,
    )
    assert rows == [("Новиков Николай Петрович", "+79165550102")]
    shot(page, "new-subscriber-card")
    page.context.close()


def test_operator_freezes_a_subscription_and_takes_a_promised_payment(demo_server, browser):
    account, _name, _phone, subscription = _on_plan(demo_server, "home", offset=1)
    ((min_days,),) = query(demo_server, "SELECT min_days FROM catalog_freezepolicy ORDER BY id LIMIT 1")
    ((max_amount,),) = query(demo_server, "SELECT max_amount FROM catalog_promisedpaymentpolicy ORDER BY id LIMIT 1")
    balance = balance_of(demo_server, account)
    page = login(browser, demo_server, "operator")
    open_card(page, demo_server, account)

    promised = page.locator("details[data-form='promised']")
    promised.locator("summary").click()
    shot(page, "promised-payment", focus="#panel-balance")
    promised.locator("button[type=submit]").click()
    # The form shows what the promised payment does first (amount, fee, balance after); its own button takes it.
    page.locator(".promised-preview button[type=submit]").click()
    page.locator("#promised .small").wait_for(timeout=10_000)  # "until <date>"
    taken = page.locator("#promised").evaluate("element => element.firstChild.textContent")  # before "until …"
    assert amount(taken) == Decimal(str(max_amount))
    assert balance_of(demo_server, account) == balance + Decimal(str(max_amount))
    assert amount(page.locator("#balance-amount").inner_text()) == balance + Decimal(str(max_amount))
    shot(page, "promised-payment-taken", focus="#panel-balance")

    freeze = page.locator(f"details[data-form='freeze-{subscription}']")
    freeze.locator("summary").click()
    freeze.locator("input[name=days]").fill(str(min_days))
    shot(page, "freeze", focus="#panel-subscriptions")
    freeze.locator("button[type=submit]").first.click()
    page.locator(".freeze-preview button[type=submit]").click()  # the preview's confirmation
    page.locator("#panel-subscriptions [role=status]").wait_for(timeout=10_000)
    ((status,),) = query(demo_server, "SELECT status FROM billing_subscription WHERE id = ?", subscription)
    assert status == "frozen"
    assert page.locator(f"details[data-form='unfreeze-{subscription}']").count() == 1
    shot(page, "freeze-done", focus="#panel-subscriptions")
    assert violations(page) == []
    page.context.close()


# --- the cashier --------------------------------------------------------------------------------------------


def _an_active_account(demo, offset: int) -> str:
    return query(
        demo,
        "SELECT account_number FROM subscribers_subscriber WHERE status = 'active' ORDER BY id LIMIT 1 OFFSET ?",
        offset,
    )[0][0]


def test_cashier_takes_cash_and_sees_the_balance_change(demo_server, browser):
    account = _an_active_account(demo_server, 31)
    page = login(browser, demo_server, "cashier")
    page.goto(f"{demo_server['base']}/staff/payments/cashdesk/")
    page.locator("#account-lookup input[name=account]").fill(account)
    page.locator("#account-lookup button[type=submit]").click()
    page.wait_for_selector("#cashdesk-balance")
    before = amount(page.locator("#cashdesk-balance").inner_text())
    assert before == balance_of(demo_server, account)
    form = page.locator("#take-payment form")
    form.locator("input[name=amount]").fill("500,00" if LANGUAGE == "ru" else "500.00")
    shot(page, "cashdesk")
    form.locator("button[type=submit]").click()

    page.wait_for_selector("#receipt-amount")
    assert amount(page.locator("#receipt-amount").inner_text()) == Decimal("500.00")
    shot(page, "cashdesk-receipt")
    page.goto(f"{demo_server['base']}/staff/payments/cashdesk/?account={account}")
    page.wait_for_selector("#cashdesk-balance")
    assert amount(page.locator("#cashdesk-balance").inner_text()) == before + Decimal("500.00")
    assert balance_of(demo_server, account) == before + Decimal("500.00")
    shot(page, "cashdesk-balance")
    page.context.close()


def test_a_cashier_cannot_adjust_the_ledger(demo_server, browser):
    account = _an_active_account(demo_server, 37)
    ((subscriber_id,),) = query(demo_server, "SELECT id FROM subscribers_subscriber WHERE account_number = ?", account)
    balance, count = balance_of(demo_server, account), transactions_of(demo_server, account)
    page = login(browser, demo_server, "cashier")
    open_card(page, demo_server, account)
    page.wait_for_selector("#panel-balance")
    assert page.locator("details[data-form='adjust']").count() == 0  # no form to begin with

    # Sent anyway, as a crafted request with the cashier's own session and CSRF token: refused, nothing written.
    token = page.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken']")
    response = page.request.post(
        f"{demo_server['base']}/staff/subscribers/{subscriber_id}/billing/adjustments/",
        form={"amount": "1000.00", "reason": "просто так"},
        headers={"X-CSRFToken": token, "Referer": f"{demo_server['base']}/staff/"},
    )
    assert response.status == 403
    assert (balance_of(demo_server, account), transactions_of(demo_server, account)) == (balance, count)
    page.context.close()


# --- the engineer -------------------------------------------------------------------------------------------


def test_engineer_disconnects_a_session(demo_server, browser):
    account = _an_active_account(demo_server, 41)
    ((subscriber_id, username),) = query(
        demo_server,
        """SELECT s.id, l.username FROM subscribers_subscriber s JOIN network_login l ON l.subscriber_id = s.id
           WHERE s.account_number = ? LIMIT 1""",
        account,
    )
    banner = demo_server["log"].read_text()
    secret = re.search(r"radclient -x \S+ auth (\S+)", banner).group(1).strip("'")
    # The NAS says the session started: an Accounting-Start to the demo's RADIUS server, as a NAS sends it.
    start = (
        f'User-Name = "{username}", Acct-Status-Type = Start, Acct-Session-Id = "guide-{subscriber_id}", '
        f"NAS-IP-Address = 127.0.0.1, Framed-IP-Address = 10.77.0.{subscriber_id % 250 + 1}, "
        f'Calling-Station-Id = "AA:BB:CC:00:00:{subscriber_id % 100:02d}"'
    )
    sent = subprocess.run(
        ["radclient", "-x", f"127.0.0.1:{demo_server['radius_acct_port']}", "acct", secret],
        input=start,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Accounting-Response" in sent.stdout, sent.stdout + sent.stderr

    page = login(browser, demo_server, "engineer")
    open_card(page, demo_server, account)
    row = None
    deadline = time.monotonic() + 20
    while row is None or page.locator(f"#network-sessions tr[data-session='{row}'] button.disconnect").count() == 0:
        # Accounting is written in batches: wait for the session's row, with its button.
        assert time.monotonic() < deadline, page.locator("#panel-network").inner_text()
        time.sleep(1)
        found = query(demo_server, "SELECT id FROM network_session WHERE acct_session_id = ?", f"guide-{subscriber_id}")
        row = found[0][0] if found else None
        page.reload()
    shot(page, "disconnect-session", focus="#panel-network")
    page.once("dialog", lambda dialog: dialog.accept())  # "Disconnect this session?"
    page.locator(f"#network-sessions tr[data-session='{row}'] button.disconnect").click()
    page.locator("#panel-network [role=status]").wait_for(timeout=10_000)
    assert username in page.locator("#panel-network [role=status]").inner_text()
    requests = query(demo_server, "SELECT kind, reason FROM network_coarequest WHERE session_id = ?", row)
    assert requests == [("disconnect", "staff")]
    shot(page, "disconnect-session-sent", focus="#panel-network")
    page.context.close()


def test_engineer_opens_the_nas_card(demo_server, browser):
    """The NAS card (network monitoring, built beside this file): the demo NAS from the NAS list."""
    page = login(browser, demo_server, "engineer")
    page.goto(f"{demo_server['base']}/staff/network/nas/")
    page.locator("a", has_text="demo-nas").first.click()
    page.wait_for_selector("#nas-card", timeout=10_000)
    assert "demo-nas" in page.locator("#nas-card").inner_text()
    shot(page, "nas-card")
    assert violations(page) == []
    page.context.close()


# --- the dashboard, the set-up and the audit log ------------------------------------------------------------


def test_the_dashboard_renders_with_data(demo_server, browser):
    from django.urls import reverse

    page = login(browser, demo_server, "operator")
    page.goto(f"{demo_server['base']}{reverse('dashboard:home')}")
    page.wait_for_selector("#dashboard", timeout=10_000)
    text = page.locator("#dashboard").inner_text()
    assert re.search(r"\d", text), text  # figures, not an empty frame
    page.wait_for_timeout(500)  # charts draw after load
    shot(page, "dashboard")
    assert violations(page) == []
    page.context.close()


def test_the_administrator_registers_a_nas_in_the_wizard_and_gets_the_lines(demo_server, browser):
    page = login(browser, demo_server, "admin")
    page.goto(f"{demo_server['base']}/staff/setup/")
    page.wait_for_selector("#setup-ready")  # the demo is set up: the wizard opens on its end screen
    page.goto(f"{demo_server['base']}/staff/setup/company/")
    assert page.locator("input[name=inn]").input_value() == "7707083893"
    shot(page, "setup-company")

    # Bad input: a wrong check digit, refused at the field; nothing changes.
    page.fill("input[name=inn]", "7707083894")
    page.locator("#company-form button[type=submit]").click()
    page.wait_for_selector("[data-field=inn] .invalid-feedback")
    shot(page, "setup-company-error")
    assert query(demo_server, "SELECT inn FROM core_companyprofile") == [("7707083893",)]

    page.goto(f"{demo_server['base']}/staff/setup/nas/")
    page.fill("input[name=nas-name]", "bras-guide")
    page.fill("input[name=nas-ip_address]", "10.0.0.2")
    page.fill("input[name=nas-radius_address]", "10.0.0.5")
    secret = page.locator("input[name=nas-secret]").input_value()
    page.locator("#nas-form button[type=submit]").click()
    page.wait_for_selector("#nas-config-lines")
    lines = page.locator("#nas-config-lines").inner_text().strip().splitlines()
    assert lines[0].startswith(f"/radius add service=ppp address=10.0.0.5 secret={secret} ")
    assert lines[1:] == [
        "/ppp aaa set use-radius=yes accounting=yes interim-update=5m",
        "/radius incoming set accept=yes port=3799",
    ]
    assert query(demo_server, "SELECT vendor, ip_address FROM network_nas WHERE name = 'bras-guide'") == [
        ("mikrotik", "10.0.0.2")
    ]
    shot(page, "setup-nas", focus="#nas-config")
    page.goto(f"{demo_server['base']}/staff/setup/done/")
    shot(page, "setup-done")
    assert violations(page) == []
    page.context.close()


def test_the_audit_log_shows_who_changed_what(demo_server, browser):
    page = login(browser, demo_server, "admin")
    page.goto(f"{demo_server['base']}/staff/audit/")
    page.wait_for_selector("#audit-events tbody tr[data-event]")
    page.locator("select[name=action]").select_option("network.nas_created")
    page.locator("#audit-filters button[type=submit]").click()
    page.wait_for_selector("#audit-events tbody tr[data-action='network.nas_created']")
    actions = {row.get_attribute("data-action") for row in page.locator("#audit-events tbody tr[data-event]").all()}
    assert actions == {"network.nas_created"}
    shot(page, "audit-log")
    assert violations(page) == []
    page.context.close()
