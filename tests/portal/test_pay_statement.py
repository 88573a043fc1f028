"""The statement of account for any dates: the opening balance, every ledger line, the closing balance, adding
up exactly; bad, reversed or too long periods get a message; a CSV of the same."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions as billing
from abonent.billing import testing as billing_testing
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.payments import actions
from abonent.payments.models import PaymentMethod
from abonent.portal import pay_data

from .conftest import signed_in

D = Decimal
NOV, DEC = 11, 12


def day(month: int, d: int, year: int = 2026) -> dt.date:
    return dt.date(year, month, d)


def at(on: dt.date, hour: int = 12):
    return clock.travel_to(dt.datetime.combine(on, dt.time(hour)))


@pytest.fixture
def history(subscriber, admin):
    """November: 1,000 paid and 650 charged (the fixture); a 300 promised payment on the 10th, repaid by 500 cash
    on the 12th; 100 credited by staff on the 15th and reversed on the 16th. December: the billing run's 650 fee
    on the 1st (a batch) and a 650 online payment on the 3rd."""
    with at(day(NOV, 10)):
        billing.do_take_promised_payment(subscriber, acting_user=None, amount="300.00")
    with at(day(NOV, 12)):
        actions.do_receive_payment(
            channel="cash", external_id="c-1", amount="500.00", method=PaymentMethod.CASH, subscriber=subscriber
        )
    with at(day(NOV, 15)):
        credit = billing.do_adjust_balance(
            subscriber, amount="100.00", reason="Outage of 14 November", acting_user=admin
        )
    with at(day(NOV, 16)):
        billing.do_reverse_transaction(credit, reason="Credited twice", acting_user=admin)
    billing_testing.run_on(day(DEC, 1))
    with at(day(DEC, 3)):
        actions.do_receive_payment(
            channel="yookassa-test", external_id="y-1", amount="650.00", method=PaymentMethod.ONLINE,
            subscriber=subscriber,
        )  # fmt: skip
    return subscriber


def test_opening_plus_every_line_is_the_closing_balance_for_any_dates(history):
    whole = pay_data.statement(history, day(NOV, 1), day(DEC, 31))
    assert whole.opening == D("0.00")
    assert whole.closing == get_balance(history).balance == D("850.00")
    assert whole.opening + sum(line.amount for line in whole.lines) == whole.closing
    assert whole.credits + whole.debits == whole.closing - whole.opening
    assert [line.balance_after for line in whole.lines][-1] == whole.closing

    # Any cut: each part adds up, and one part's closing is the next one's opening.
    for cut in (day(NOV, 10), day(NOV, 12), day(NOV, 16), day(DEC, 1), day(DEC, 2)):
        before = pay_data.statement(history, day(NOV, 1), cut - dt.timedelta(days=1))
        after = pay_data.statement(history, cut, day(DEC, 31))
        assert before.opening + sum(line.amount for line in before.lines) == before.closing
        assert after.opening == before.closing, cut
        assert after.opening + sum(line.amount for line in after.lines) == after.closing == whole.closing


def test_every_kind_of_line_is_there_with_its_date_and_description(history):
    lines = pay_data.statement(history, day(NOV, 10), day(DEC, 31)).lines

    assert [(line.date, line.kind, line.amount) for line in lines] == [
        (day(NOV, 10), "promised_take", D("300.00")),
        (day(NOV, 12), "payment", D("500.00")),
        (day(NOV, 12), "promised_close", D("-300.00")),
        (day(NOV, 15), "adjustment", D("100.00")),
        (day(NOV, 16), "reversal", D("-100.00")),
        (day(DEC, 1), "fee", D("-650.00")),
        (day(DEC, 3), "payment", D("650.00")),
    ]
    described = {line.kind: line.description for line in lines}
    assert described["payment"] == "Online payment"
    assert described["fee"] == "Интернет-100 01.12.2026–31.12.2026"
    assert described["adjustment"] == "Outage of 14 November" and described["reversal"] == "Credited twice"
    assert [line.reversed for line in lines if line.kind == "adjustment"] == [True]


def test_the_page_shows_the_period_and_its_totals(history, now):
    client = signed_in(history)

    page = client.get("/my/pay/statement/", {"from": "2026-11-12", "to": "2026-12-31"})

    assert page.status_code == 200
    body = page.content.decode()
    assert '<dd class="col-5 text-end" data-testid="statement-opening">650.00\xa0₽</dd>' in body
    assert 'data-testid="statement-closing">850.00\xa0₽</dd>' in body
    assert body.count('data-testid="statement-line"') == 6
    default = client.get("/my/pay/statement/")
    assert default.status_code == 200 and default.context["statement"].start == day(9, 1)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2026-12-01", "to": "2026-11-01"}, "The start date is after the end date."),
        ({"from": "2020-01-01", "to": "2026-11-01"}, "A statement covers at most three years"),
        ({"from": "01.13.2026", "to": "2026-11-01"}, "Enter a valid date."),
        ({"from": "abc", "to": "2026-11-01"}, "Enter a valid date."),
        ({"from": "2026-11-01", "to": "99999-01-01"}, "Enter a valid date."),
    ],
)
def test_bad_dates_get_a_message_and_no_statement(portal_client, now, query, message):
    response = portal_client.get("/my/pay/statement/", query)

    assert response.status_code == 400 and message in response.content.decode()
    assert "statement" not in response.context or response.context.get("statement") is None
    assert portal_client.get("/my/pay/statement.csv", query).status_code == 400


def test_the_csv_has_the_same_lines_and_balances(history, now):
    response = signed_in(history).get("/my/pay/statement.csv", {"from": "2026-11-12", "to": "2026-12-31"})

    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert f"statement-{history.account_number}-20261112-20261231.csv" in response["Content-Disposition"]
    rows = response.content.decode("utf-8-sig").splitlines()
    assert rows[0] == "Date;Operation;Description;Amount;Balance after"
    assert rows[1] == "2026-11-12;Opening balance;;;650.00"
    assert rows[2] == "2026-11-12;Payment;Cash at the office;500.00;1150.00"
    assert rows[-1] == "2026-12-31;Closing balance;;;850.00"
    assert len(rows) == 2 + 6 + 1


def test_a_description_that_looks_like_a_formula_is_kept_as_text(subscriber, admin, now):
    billing.do_adjust_balance(subscriber, amount="10.00", reason='=HYPERLINK("x")', acting_user=admin)

    rows = signed_in(subscriber).get("/my/pay/statement.csv").content.decode("utf-8-sig").splitlines()

    (row,) = [row for row in rows if "HYPERLINK" in row]
    assert row == '2026-11-20;Manual adjustment;"\'=HYPERLINK(""x"")";10.00;360.00'
