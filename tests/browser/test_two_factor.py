"""A cashier of the demo turns on two-factor authentication in Chromium, then signs in with a recovery code."""

import re
from base64 import b32decode

import pytest
from django_otp.oath import totp

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]


def test_a_cashier_enrols_then_signs_in_with_a_recovery_code(demo_server, browser):
    # The cashier: no other browser test signs in as this demo user, whose login now asks for a code.
    page = browser.new_page(locale="en-US")
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "cashier")
    page.fill("input[name=password]", "cashier-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))

    page.click("nav a[href='/staff/two-factor/']")
    page.click("text=Set up")
    page.wait_for_url(re.compile(r".*/staff/two-factor/setup/.*"))
    assert page.locator("#qr-code svg").is_visible()
    # What a phone app would do with the key on the page (RFC 6238, at the real time the demo also reads).
    key = b32decode(page.locator("#totp-secret").inner_text().replace(" ", ""))
    page.fill("input[name=code]", f"{totp(key):06d}")
    page.click("main form button[type=submit]")
    page.wait_for_selector("#recovery-codes")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10

    page.click("text=I have saved the codes, continue")
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))
    page.click("nav button:has-text('Log out')")
    page.wait_for_url(re.compile(r".*/staff/$"))

    page.fill("input[name=username]", "cashier")
    page.fill("input[name=password]", "cashier-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/login/code/$"))
    page.fill("input[name=code]", codes[0])
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))
    assert "9 codes are left" in page.locator(".alert-warning").inner_text()
    page.close()
