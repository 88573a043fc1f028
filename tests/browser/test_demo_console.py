"""Acceptance path of the issue: the demo serves the login; an operator finds a subscriber by phone, opens the card."""

import re
import shutil
import sqlite3
import subprocess
import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]


def _a_seeded_subscriber(db_path):
    with sqlite3.connect(db_path) as db:
        return db.execute(
            """SELECT s.account_number, s.display_name, c.value FROM subscribers_subscriber s
               JOIN subscribers_contactpoint c ON c.subscriber_id = s.id AND c.kind = 'phone'
               WHERE s.kind = 'individual' ORDER BY s.id LIMIT 1 OFFSET 17"""
        ).fetchone()


def _card_of_ivanov(demo_server, browser, user: str, locale: str):
    """Signed in as a demo ``user``, the featured subscriber's card, found by the phone on the demo's banner."""
    page = browser.new_page(locale=locale)
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", f"{user}-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))
    page.goto(f"{demo_server['base']}/staff/subscribers/")
    page.fill("#id_q", "+7 916 123-45-67")
    page.locator("#results a.subscriber-link", has_text="Иванов Иван Петрович").click()
    return page


def test_operator_finds_a_demo_subscriber_by_phone_and_opens_the_card(demo_server, browser):
    account, name, e164 = _a_seeded_subscriber(demo_server["db"])
    # Typed the way a caller dictates it: trunk prefix 8, spaces and dashes.
    typed = f"8 ({e164[2:5]}) {e164[5:8]}-{e164[8:10]}-{e164[10:]}"
    page = browser.new_page(locale="ru-RU")
    page.goto(f"{demo_server['base']}/staff/")
    assert page.locator("input[name=password]").is_visible()
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "operator-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))
    page.goto(f"{demo_server['base']}/staff/subscribers/")
    assert page.locator("h1").inner_text() == "Абоненты"

    page.fill("#id_q", typed)
    result = page.locator("#results a.subscriber-link", has_text=name)
    result.wait_for(timeout=10_000)
    assert page.locator("#results a.subscriber-link").count() == 1
    result.click()

    page.wait_for_selector("#account-number")
    assert page.locator("#account-number").inner_text() == account
    assert name in page.locator("#subscriber-name").inner_text()
    assert page.locator("#panel-contacts").is_visible()
    page.close()


def test_wrong_password_shows_a_russian_error(demo_server, browser):
    page = browser.new_page(locale="ru-RU")
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    assert "Неверный логин или пароль." in page.locator(".alert-danger").inner_text()
    page.close()


def test_featured_subscriber_card_shows_the_ont(demo_server, browser):
    page = _card_of_ivanov(demo_server, browser, "engineer", "en-US")
    page.wait_for_selector("#panel-equipment")
    assert "ZTE F660" in page.locator("#panel-equipment").inner_text()
    page.close()


def test_a_form_error_in_a_card_panel_is_shown_in_place(demo_server, browser):
    page = _card_of_ivanov(demo_server, browser, "operator", "en-US")
    panel = page.locator("#panel-contacts")
    panel.locator("summary").click()
    panel.locator("input[name=value]").fill("12345")
    panel.locator("button[type=submit]", has_text="Save").click()
    page.locator("#panel-contacts .invalid-feedback").wait_for(timeout=10_000)
    assert "is not a valid phone number" in page.locator("#panel-contacts").inner_text()
    page.close()


def test_the_demo_radius_answers_and_the_card_says_why_a_login_was_rejected(demo_server, browser):
    radclient = shutil.which("radclient")
    if radclient is None:
        pytest.skip("radclient is not installed (apt-get install freeradius-utils)")
    banner = demo_server["log"].read_text()
    command = next(line.strip() for line in banner.splitlines() if "| radclient -x" in line)
    assert f"127.0.0.1:{demo_server['radius_auth_port']} auth " in command
    # The banner's command, as a newcomer pastes it: the featured subscriber is paid up and gets in.
    accepted = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)  # noqa: S602
    assert "Received Access-Accept" in accepted.stdout, accepted.stdout + accepted.stderr
    wrong = command.replace('User-Password = "', 'User-Password = "not-', 1)
    rejected = subprocess.run(wrong, shell=True, capture_output=True, text=True, timeout=30)  # noqa: S602
    assert "Received Access-Reject" in rejected.stdout, rejected.stdout + rejected.stderr

    page = _card_of_ivanov(demo_server, browser, "engineer", "en-US")
    page.wait_for_selector("#panel-network")
    # The RADIUS process writes authentication attempts every couple of seconds.
    deadline = time.monotonic() + 20
    while "Wrong password" not in page.locator("#panel-network").inner_text():
        assert time.monotonic() < deadline, page.locator("#panel-network").inner_text()
        time.sleep(1)
        page.reload()
    assert page.locator("#network-logins").inner_text().count("demo") == 1
    page.close()


def test_an_operator_turns_a_turbo_on_and_the_nas_gets_its_speed(demo_server, browser):
    page = _card_of_ivanov(demo_server, browser, "operator", "ru-RU")
    panel = page.locator("#panel-subscriptions")
    form = panel.locator("details[data-form^='turbo-']")
    form.locator("summary", has_text="Турбо").click()
    option = form.locator("option", has_text="Турбо 500 Мбит/с на сутки")
    assert "50,00" in option.inner_text()  # the price is in the label, in Russian format
    form.locator("select").select_option(option.get_attribute("value"))
    form.locator("button[type=submit]", has_text="Включить турбо").click()
    page.locator("#panel-subscriptions [role=status]").wait_for(timeout=10_000)
    assert "Турбо «Турбо 500 Мбит/с на сутки» включено до" in panel.inner_text()
    ledger = page.locator("#panel-ledger").inner_text().replace("-", "−")
    assert "\tТурбо\t" in ledger and "−50,00\xa0₽" in ledger  # the charge, already in the ledger panel
    page.close()

    radclient = shutil.which("radclient")
    if radclient is None:
        return  # the RADIUS half needs freeradius-utils
    banner = demo_server["log"].read_text()
    command = next(line.strip() for line in banner.splitlines() if "| radclient -x" in line)
    # The RADIUS process follows the policy-change feed every couple of seconds.
    deadline = time.monotonic() + 20
    while True:
        answer = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30)  # noqa: S602
        if 'Mikrotik-Rate-Limit = "500000k/500000k"' in answer.stdout:
            break
        assert time.monotonic() < deadline, answer.stdout + answer.stderr
        time.sleep(1)
