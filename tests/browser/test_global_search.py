"""The keyboard path of subscriber search (issue 17): "/" from any page to the search box, live results in the
navigation bar moved through with the arrows, Enter opens, Escape closes; on the list, Enter with one result
opens it and an exact phone opens the card."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

CARD = re.compile(r".*/staff/subscribers/\d+/$")


def _signed_in(demo_server, browser):
    page = browser.new_page(locale="en-US")
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "operator-demo")
    page.click("button[type=submit]")
    # Staff land on the dashboard; these tests start from the subscriber list.
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))
    page.goto(f"{demo_server['base']}/staff/subscribers/")
    return page


def test_slash_arrows_and_enter_open_a_subscriber_from_another_page(demo_server, browser):
    page = _signed_in(demo_server, browser)
    page.goto(f"{demo_server['base']}/staff/dashboard/")
    box = page.locator("#global-search-input")

    page.keyboard.press("/")
    assert box.evaluate("el => el === document.activeElement")
    page.keyboard.type("Иванов Иван")
    listbox = page.locator("#global-search-results [role=listbox]")
    listbox.wait_for(timeout=10_000)
    assert box.get_attribute("aria-expanded") == "true"
    first = page.locator("#global-search-results [role=option]").first
    assert "Иванов Иван" in first.inner_text()

    page.keyboard.press("ArrowDown")
    assert box.get_attribute("aria-activedescendant") == first.get_attribute("id")
    assert first.get_attribute("aria-selected") == "true"
    page.keyboard.press("Escape")
    assert page.locator("#global-search-results").is_hidden()
    assert box.get_attribute("aria-expanded") == "false"

    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    chosen = box.get_attribute("aria-activedescendant")
    href = page.locator(f"#{chosen}").get_attribute("data-href")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*{re.escape(href)}$"))
    page.close()


def test_slash_is_typed_into_a_field_not_taken_as_the_shortcut(demo_server, browser):
    page = _signed_in(demo_server, browser)
    page.goto(f"{demo_server['base']}/staff/dashboard/")
    box = page.locator("#global-search-input")
    box.click()
    page.keyboard.type("5/2")

    assert box.input_value() == "5/2"
    page.close()


def test_an_exact_phone_in_the_navbar_box_opens_the_card(demo_server, browser):
    page = _signed_in(demo_server, browser)
    page.goto(f"{demo_server['base']}/staff/dashboard/")

    page.keyboard.press("/")
    page.keyboard.type("8 (916) 123-45-67")
    page.keyboard.press("Enter")

    page.wait_for_url(CARD)
    assert "Иванов Иван Петрович" in page.locator("#subscriber-name").inner_text()
    page.close()


def test_on_the_list_one_result_and_enter_opens_it(demo_server, browser):
    page = _signed_in(demo_server, browser)
    page.fill("#id_q", "Иванов Иван Петрович")
    page.locator("#results [data-single-result]").wait_for(timeout=10_000)

    page.press("#id_q", "Enter")

    page.wait_for_url(CARD)
    assert "Иванов Иван Петрович" in page.locator("#subscriber-name").inner_text()
    page.close()


def test_on_the_list_the_arrows_go_from_the_box_into_the_results(demo_server, browser):
    page = _signed_in(demo_server, browser)
    page.fill("#id_q", "Иванов")
    # The list shows every subscriber before the search: wait for the search's own results (htmx pushes its URL
    # once they are in), not for the links already there, which the swap would replace under the focus.
    page.wait_for_url(re.compile(r"[?&]q=%D0%98"), timeout=10_000)
    page.locator("#results a.subscriber-link").first.wait_for(timeout=10_000)
    links = page.locator("#results a.subscriber-link")

    page.press("#id_q", "ArrowDown")
    assert links.nth(0).evaluate("el => el === document.activeElement")
    page.keyboard.press("ArrowDown")
    assert links.nth(1).evaluate("el => el === document.activeElement")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    assert page.locator("#id_q").evaluate("el => el === document.activeElement")
    page.close()
