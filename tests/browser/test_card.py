"""The subscriber card in a real browser (issue 17): the header stays on screen, the downgrade checkbox follows the
plan chosen (console.js), a freeze shows its amounts before it is confirmed, and nothing overflows at 1024 px."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]


@pytest.fixture
def card(demo_server, browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1024, "height": 800})
    page = context.new_page()
    page.goto(f"{demo_server['base']}/staff/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "operator-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/dashboard/.*"))  # staff land on the dashboard
    page.goto(f"{demo_server['base']}/staff/subscribers/")
    page.fill("#id_q", "+7 916 123-45-67")
    page.locator("#results a.subscriber-link", has_text="Иванов Иван Петрович").click()
    page.wait_for_selector("#card-header")
    yield page
    context.close()


def test_the_header_stays_on_screen_and_nothing_overflows_at_1024(card):
    page = card
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    assert "will be charged" in page.locator("#header-billing").inner_text()
    page.mouse.wheel(0, 3000)
    page.wait_for_timeout(300)
    assert page.locator("#card-header").bounding_box()["y"] == 0
    assert page.locator("#header-phone").is_visible()
    sessions = page.locator("#panel-network").bounding_box()
    assert page.locator("#panel-network .table-responsive").first.bounding_box()["width"] <= sessions["width"]


def test_the_downgrade_checkbox_follows_the_plan_chosen(card):
    page = card
    subscription = page.locator("#panel-subscriptions .subscription").first
    subscription.locator("summary", has_text="Change plan").click()
    select = subscription.locator("select[name=plan]")
    force = subscription.locator("[data-show-for-direction=downgrade]")
    upgrade = select.locator("option[data-direction=upgrade]").first.get_attribute("value")
    downgrade = select.locator("option[data-direction=downgrade]").first.get_attribute("value")

    select.select_option(downgrade)
    assert force.is_visible()
    force.locator("input[type=checkbox]").check()
    select.select_option(upgrade)
    assert not force.is_visible()
    assert not force.locator("input[type=checkbox]").is_checked()
    from playwright.sync_api import expect  # imported here as in conftest: collected without Playwright too

    # The downgrade's preview may land first: wait for the one of the plan chosen last.
    expect(subscription.locator(".plan-change-preview")).to_contain_text("takes effect now")


def test_a_freeze_shows_its_amounts_before_it_is_confirmed(card):
    page = card
    subscription = page.locator("#panel-subscriptions .subscription").first
    subscription.locator("summary", has_text="Freeze").click()
    subscription.locator("input[name=days]").fill("10")
    preview = subscription.locator(".freeze-preview")
    preview.wait_for(timeout=10_000)
    text = preview.inner_text()
    assert "Frozen for 10 days" in text and "Freeze fee" in text and "Balance after the freeze" in text
    assert preview.locator("button", has_text="Freeze the subscription").is_visible()
