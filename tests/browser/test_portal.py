"""The subscriber portal (/my/) in Debian's Chromium, as issue 15 must show it: on a phone (390×844, touch, in
Russian, the featured demo subscriber) and on a desktop (1440×900, in English, the other demo subscriber) a
subscriber logs in, sees the balance, pays through a local YooKassa (tests/browser/yookassa_page.py: its API and a
test double of its payment page), changes the plan with the amounts shown first, takes a promised payment and opens
a request. Every amount is checked against the portal's JSON API; every bad input (a wrong password, a payment of 0,
a plan not offered) gets its message and writes nothing.

On every page: no horizontal scroll, one h1, a label for every field, alt on every image, the tab bar on a phone
only, no Content-Security-Policy violation. A full-page screenshot of each step goes to
var/screenshots/portal-<viewport>-<step>.png (var/ is not committed).
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import translation

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
VIEWPORTS = {
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
        "locale": "ru-RU",
    },
    "desktop": {"viewport": {"width": 1440, "height": 900}, "locale": "en-US"},
}
LANGUAGE = {"phone": "ru", "desktop": "en"}
TABBAR_AT_END = """
document.body.style.position = "relative";
document.querySelectorAll(".portal-tabbar").forEach((bar) => { bar.style.position = "absolute"; });
"""

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""
# Form controls a user fills (not hidden, not buttons) that no label names: <label for>, a wrapping <label>,
# aria-label or aria-labelledby.
UNLABELLED = """
[...document.querySelectorAll("input, select, textarea")]
  .filter((el) => !["hidden", "submit", "button", "reset"].includes(el.type))
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
    && !(el.getAttribute("aria-labelledby") || "").split(" ").some((id) => id && document.getElementById(id)))
  .map((el) => el.outerHTML.slice(0, 120))
"""


def _t(view: str, msgid: str) -> str:
    """The page's wording for ``msgid`` in the viewport's language (the same catalogue the demo serves)."""
    with translation.override(LANGUAGE[view]):
        return translation.gettext(msgid)


def _amount(text: str, view: str) -> Decimal:
    """An amount as the page prints it: ``1 234,50 ₽`` (Russian) or ``1,234.50 ₽`` (English), maybe signed."""
    mark = "," if LANGUAGE[view] == "ru" else "."
    digits = re.sub(rf"[^\d{re.escape(mark)}]", "", text).replace(mark, ".")
    return -Decimal(digits) if re.search(r"[-−]\s*\d", text) else Decimal(digits)


def _typed(amount: Decimal, view: str) -> str:
    """``amount`` as a subscriber types it: with a comma in Russian."""
    return f"{amount:.2f}".replace(".", "," if LANGUAGE[view] == "ru" else ".")


class Api:
    """The portal's JSON API with the subscriber's own token: the figures the pages must agree with."""

    def __init__(self, base: str, login: str, password: str):
        self.base = f"{base}/api/v1/my/"
        self.token = self._call("POST", "login", {"login": login, "password": password})["token"]

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def balance(self) -> Decimal:
        return Decimal(self._call("GET", "home")["balance"])

    def plans(self) -> dict:
        return self._call("GET", "plans")["subscriptions"][0]


def _count(db: Path, sql: str, *args) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, args).fetchone()[0]


class Walk:
    """Checks every page the subscriber sees and saves its screenshot."""

    def __init__(self, page, view: str):
        self.page, self.view = page, view
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def check(self, step: str) -> None:
        page, width = self.page, self.page.viewport_size["width"]
        page.wait_for_load_state("load")
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{step}: scrolls sideways ({scroll_width} px wide at {width} px)"
        assert page.locator("h1").count() == 1, f"{step}: {page.locator('h1').all_inner_texts()}"
        assert page.evaluate(UNLABELLED) == [], step
        assert page.evaluate("[...document.images].filter((i) => !i.hasAttribute('alt')).map((i) => i.src)") == []
        if "/my/" in page.url and page.locator("body.portal-signed-in").count():
            tabbar = page.locator("nav.portal-tabbar")
            if self.view == "phone":
                assert tabbar.is_visible(), step
                box = tabbar.bounding_box()  # on the screen, at its bottom
                assert box["y"] + box["height"] == pytest.approx(page.viewport_size["height"], abs=1), step
                assert tabbar.locator("a").count() == 4
            else:
                assert not tabbar.is_visible(), step
                assert page.locator("#portal-nav a.nav-link").first.is_visible(), step
        assert page.evaluate("window.__violations") == [], step
        # The whole page as it looks scrolled to the end: the phone's fixed tab bar at the bottom (in a full-page
        # capture it would otherwise float where the first screen ends). Set through the CSSOM, which the page's
        # Content-Security-Policy allows (a <style> it would refuse).
        page.evaluate(TABBAR_AT_END)
        page.screenshot(path=SCREENSHOTS / f"portal-{self.view}-{step}.png", full_page=True)
        page.evaluate(TABBAR_AT_END.replace('"relative"', '""').replace('"absolute"', '""'))  # as it was
        assert page.evaluate("window.__violations") == [], step

    def go(self, section: str) -> None:
        """To a section by its menu: the tab bar on a phone (when it has the section), the top menu on a desktop."""
        page = self.page
        href = f"/my/{section}/" if section else "/my/"
        if self.view == "phone":
            tab = page.locator(f"nav.portal-tabbar a[href='{href}']")
            if tab.count():
                tab.click()
            else:  # not in the tab bar: the menu behind the toggler
                page.locator("button.navbar-toggler").click()
                page.locator(f"#portal-nav a[href='{href}']").click()
        else:
            page.locator(f"#portal-nav a[href='{href}']").click()
        page.wait_for_url(re.compile(re.escape(href) + "$"))


@pytest.fixture
def portal_page(browser, request):
    view = request.param
    context = browser.new_context(**VIEWPORTS[view])
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page, view
    context.close()


@pytest.mark.parametrize("portal_page", ["phone", "desktop"], indirect=True)
def test_a_subscriber_logs_in_pays_changes_plan_takes_a_promised_payment_and_opens_a_request(portal_demo, portal_page):
    page, view = portal_page
    base, db, gateway = portal_demo["base"], portal_demo["db"], portal_demo["gateway"]
    account, password, _name = portal_demo["portal_logins"][0 if view == "phone" else 1]
    walk = Walk(page, view)
    sessions = "SELECT count(*) FROM portal_portalsession p JOIN subscribers_subscriber s ON s.id = p.subscriber_id "
    sessions += "WHERE s.account_number = ?"
    checkouts = sessions.replace("portal_portalsession", "payments_checkout")

    # A wrong password: the message, and no session opened.
    page.goto(f"{base}/my/")
    page.wait_for_url(re.compile(r"/my/login/"))
    before = _count(db, sessions, account)
    page.fill("input[name=login]", account)
    page.fill("input[name=password]", "not-the-password")
    page.click("main form button[type=submit]")
    assert page.locator("[data-testid=form-errors]").inner_text().strip() == _t(view, "Wrong login or password.")
    assert _count(db, sessions, account) == before
    walk.check("0-login-wrong-password")

    # 1. Logged in: the home shows the balance the ledger has.
    page.fill("input[name=login]", account)
    page.fill("input[name=password]", password)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/my/$"))
    api = Api(base, account, password)
    balance = api.balance()
    assert _amount(page.locator("[data-testid=home-balance]").inner_text(), view) == balance
    assert account in page.locator("[data-testid=portal-account]").inner_text()
    walk.check("1-home")

    # 2. Pay: 0 is refused with a message and nothing is written, then a payment through the gateway's page.
    walk.go("pay")
    assert _amount(page.locator("[data-testid=pay-balance]").inner_text(), view) == balance
    walk.check("2-pay")
    written, asked = _count(db, checkouts, account), len(gateway.posts("/v3/payments"))
    page.fill("input[name=amount]", "0")
    page.click("[data-pay-submit]")
    error = page.locator("#pay-amount-error")
    assert error.inner_text().strip() == _t(view, "The amount must be greater than zero.")
    assert page.locator("input[name=amount]").get_attribute("aria-invalid") == "true"
    assert (_count(db, checkouts, account), len(gateway.posts("/v3/payments"))) == (written, asked)
    walk.check("2-pay-zero-refused")

    paid = Decimal("150.50")
    page.fill("input[name=amount]", _typed(paid, view))
    page.click("[data-pay-submit]")
    page.wait_for_url(re.compile(re.escape(gateway.base) + r"/checkout/"))
    assert page.locator("[data-testid=gateway-amount]").inner_text() == "150.50 RUB"
    walk.page.screenshot(path=SCREENSHOTS / f"portal-{view}-3-gateway-page.png", full_page=True)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/my/pay/\d+/$"))
    status = page.locator("[data-testid=pay-status][data-status=succeeded]")
    status.wait_for()  # at once: the notification came before the browser got back
    assert gateway.notices == [200] * len(gateway.notices) and gateway.notices
    assert status.locator("h2").inner_text() == _t(view, "Paid")
    assert _amount(status.locator("p.h4").inner_text(), view) == paid
    assert _amount(status.locator("strong").inner_text(), view) == balance + paid
    assert api.balance() == balance + paid
    assert _count(db, checkouts, account) == written + 1
    walk.check("3-paid")
    balance += paid

    # 3. Change the plan: the amounts first, then exactly those.
    walk.go("plan")
    walk.check("4-plan")
    current = api.plans()
    offer = page.locator(".plan-offers a[href*='/change/']").first
    target = current["offered"][0]["name"]
    assert target in offer.inner_text()
    offer.click()
    page.wait_for_url(re.compile(r"/my/plan/\d+/change/\d+/$"))
    walk.check("4-plan-preview")
    confirm = page.locator("[data-testid=confirm-plan-change]")
    if page.locator("[data-amount=net]").count():  # an upgrade: now, the rest of the period recounted
        shown = {
            name: _amount(page.locator(f"[data-amount={name}]").inner_text(), view)
            for name in ("credit", "charge", "net", "balance-before", "balance-after")
        }
        assert shown["balance-before"] == balance
        assert shown["credit"] >= 0 > shown["charge"]  # signed as the balance moves
        assert shown["net"] == shown["credit"] + shown["charge"]
        assert shown["balance-after"] == balance + shown["net"]
        confirm.click()
        page.wait_for_url(re.compile(r"/my/plan/$"))
        assert page.locator(".plan-current .plan-name").inner_text() == target
        assert api.balance() == balance + shown["net"]
        assert api.plans()["plan"]["name"] == target
        balance += shown["net"]
    else:  # a downgrade: from the next period, nothing charged now
        assert page.locator("[data-testid=scheduled-change]").is_visible()
        confirm.click()
        page.wait_for_url(re.compile(r"/my/plan/$"))
        assert target in page.locator("[data-testid=pending-change]").inner_text()
        assert api.balance() == balance
        assert api.plans()["pending_plan"]["name"] == target
    walk.check("4-plan-changed")

    # A plan not offered, by its address: the message, nothing changed.
    plan_before = api.plans()
    subscription = plan_before["id"]
    offered = {plan_before["plan"]["id"], *(p["id"] for p in plan_before["offered"])}
    with sqlite3.connect(db) as connection:
        plans = [pk for (pk,) in connection.execute("SELECT id FROM catalog_plan ORDER BY id")]
    foreign = next(pk for pk in plans if pk not in offered)
    response = page.goto(f"{base}/my/plan/{subscription}/change/{foreign}/")
    assert response.status == 404
    assert page.locator("main .alert-warning").inner_text().strip() == _t(
        view, "This plan is not offered to you. Choose one of the plans on the plan page."
    )
    assert (api.plans(), api.balance()) == (plan_before, balance)
    walk.check("4-plan-not-offered")

    # 4. A promised payment: the policy shown first, then taken; the balance grows by it.
    walk.go("services")
    policy = page.locator("[data-testid=promised-policy]")
    assert policy.is_visible()
    promised = _amount(policy.locator("[data-amount=promised-max]").inner_text(), view)
    fee = page.locator("[data-amount=promised-fee]").inner_text()
    fee = _amount(fee, view) if re.search(r"\d", fee) else Decimal(0)
    assert promised == Decimal("500.00")
    walk.check("5-services")
    form = page.locator("form[action='/my/services/promised/']")
    form.locator("button[type=submit]").click()  # the amount left empty: the policy's maximum
    page.wait_for_url(re.compile(r"/my/services/$"))
    assert page.locator("[data-testid=promised-open]").is_visible()
    assert _amount(page.locator("[data-amount=balance]").inner_text(), view) == balance + promised - fee
    assert api.balance() == balance + promised - fee
    walk.check("5-promised-taken")

    # 5. A request: written, then listed with its status.
    walk.go("requests")
    walk.check("6-requests")
    subject = f"Slow in the evenings ({view})"
    page.select_option("select[name=category]", "slow_speed")
    page.fill("input[name=subject]", subject)
    page.fill("textarea[name=text]", "Since Monday the speed drops to 5 Mbit/s after 8 pm.")
    page.click("form[data-request-form] button[type=submit]")
    page.wait_for_url(re.compile(r"/my/requests/\d+/$"))
    assert page.locator("h1").inner_text() == subject
    assert page.locator(".request-status").inner_text().strip() == _t(view, "Received")
    walk.check("6-request-opened")
    walk.go("requests")
    row = page.locator("#requests .request-row", has_text=subject)
    assert row.locator(".request-status").get_attribute("data-status") == "new"
    assert row.locator(".request-status").inner_text().strip() == _t(view, "Received")
    walk.check("6-requests-listed")

    # Back home: the balance after all of it.
    walk.go("")
    assert _amount(page.locator("[data-testid=home-balance]").inner_text(), view) == balance + promised - fee
    walk.check("7-home-after")


@pytest.mark.parametrize("portal_page", ["desktop"], indirect=True)
def test_the_login_works_from_the_keyboard_alone(portal_demo, portal_page):
    page, _view = portal_page
    account, password, _name = portal_demo["portal_logins"][1]
    page.goto(f"{portal_demo['base']}/my/login/")

    focused = "document.activeElement.getAttribute('name') || document.activeElement.textContent.trim()"

    # Tab: the skip link first, then the login, then the password; Enter in the password sends the form.
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "login"
    page.keyboard.type(account)
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "password"
    page.keyboard.type(password)
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(r"/my/$"))
    assert page.locator("[data-testid=home-balance]").is_visible()
    # On the home page too the first Tab offers to skip the menu, and the skip link leads to the content.
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
