"""The import wizard in Debian's Chromium against a real ``abonent demo`` (its worker runs the dry run and the
import): the seed article's account 173829 from an XLSX mapped with the Mikbill profile, dry-run, imported and
opened, each step checked in the demo's database."""

from __future__ import annotations

import io
import re
import sqlite3

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

HEADERS = ["uid", "fio", "address", "mob_tel", "numdogovor", "packet", "deposit", "blocked", "user", "password", "ont"]
SEED = [
    "173829",
    "Куприянов Аркадий Львович",
    "г. Тверь, ул. Озёрная, д. 17, кв. 3",
    "8 (915) 700-18-29",
    "Д-173829",
    "Интернет-100",
    "650,00",
    "0",
    "kupriyanov173829",
    "s3cret-pass",
    "GPON-ONT ZTE",
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def workbook() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    sheet.append(SEED)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def query(demo, sql: str, *args):
    with sqlite3.connect(demo["db"]) as db:
        return db.execute(sql, args).fetchall()


def test_admin_imports_the_seed_account_through_the_wizard(demo_server, browser):
    context = browser.new_context(locale="ru-RU", viewport={"width": 1440, "height": 900})
    page = context.new_page()
    base = demo_server["base"]
    page.goto(f"{base}/staff/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin-demo")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/staff/(?!$).*"))

    # The menu leads to the jobs, and "New import" to the upload.
    page.goto(f"{base}/staff/imports/")
    page.click("#import-new")
    page.select_option("select[name=entity]", "subscribers")
    page.fill("input[name=source]", "mikbill-browser")
    page.set_input_files("input[name=file]", files=[{"name": "mikbill.xlsx", "mimeType": XLSX, "buffer": workbook()}])
    page.click("#upload-submit")
    page.wait_for_url(re.compile(r".*/staff/imports/\d+/mapping/$"))
    job_id = int(re.search(r"/imports/(\d+)/", page.url).group(1))
    assert query(demo_server, "SELECT status, row_count FROM imports_importjob WHERE id = ?", job_id) == [
        ("uploaded", 1)
    ]

    # The Mikbill profile maps its column names; the ONT's column is mapped by hand.
    page.select_option("#profile-select", "mikbill")
    page.click("#profile-apply")
    page.wait_for_url(re.compile(r".*/mapping/\?profile=mikbill$"))
    assert page.locator(f"select[name=col_{HEADERS.index('uid')}]").input_value() == "old_id"
    assert page.locator(f"select[name=col_{HEADERS.index('packet')}]").input_value() == "plan"
    page.select_option(f"select[name=col_{HEADERS.index('ont')}]", "equipment_model")
    page.click("#mapping-submit")
    page.wait_for_url(re.compile(r".*/options/$"))

    page.fill("input[name=cutover_date]", "2026-05-31")
    page.select_option("select[name=default_branch]", index=1)
    page.select_option("select[name=duplicate_default]", "import")
    page.click("#options-submit")
    # The progress bar polls until the worker's dry run is done, then the page goes on to the report.
    page.wait_for_url(re.compile(r".*/report/$"), timeout=60_000)
    assert page.locator("#balance-old").get_attribute("data-amount") == "650.00"
    assert page.locator("#balance-new").get_attribute("data-amount") == "650.00"
    assert page.locator("#balance-difference").get_attribute("data-amount") == "0.00"
    assert page.locator("#problem-rows tr[data-row]").count() == 0
    assert query(demo_server, "SELECT COUNT(*) FROM subscribers_subscriber WHERE legacy_account = '173829'") == [(0,)]

    page.click("#report-continue")
    page.wait_for_url(re.compile(r".*/run/$"))
    assert page.locator("#balance-new").get_attribute("data-amount") == "650.00"
    page.click("#confirm-submit")
    page.wait_for_url(re.compile(r".*/result/$"), timeout=60_000)
    assert page.locator("#balance-difference").get_attribute("data-amount") == "0.00"

    page.click("#result-subscribers")
    page.wait_for_url(re.compile(r".*/subscribers/$"))
    page.click("#imported-subscribers a")
    page.wait_for_selector("#account-number")
    card = page.content()
    assert "173829" in card and "Интернет-100" in card and "GPON-ONT ZTE" in card

    [(subscriber_id, status)] = query(
        demo_server, "SELECT id, status FROM subscribers_subscriber WHERE legacy_account = '173829'"
    )
    assert status == "active"
    assert page.url.endswith(f"/staff/subscribers/{subscriber_id}/")
    [(plan, balance)] = query(
        demo_server,
        "SELECT p.name, a.balance FROM billing_subscription s JOIN catalog_plan p ON p.id = s.plan_id"
        " JOIN billing_ledgeraccount a ON a.subscriber_id = s.subscriber_id WHERE s.subscriber_id = ?",
        subscriber_id,
    )
    assert plan == "Интернет-100" and str(balance) in ("650", "650.00", "650.0")
    assert query(
        demo_server,
        "SELECT e.model FROM subscribers_equipment e JOIN subscribers_equipmentassignment x ON x.equipment_id = e.id"
        " WHERE x.subscriber_id = ?",
        subscriber_id,
    ) == [("GPON-ONT ZTE",)]
    context.close()
