"""Receivables ageing (abonent/reports/receivables.py): who is in debt since when, the buckets' and branches'
totals, the drill-down with its keyset pages and exports, branch limits and permissions."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook

from abonent.billing import actions as billing
from abonent.core import clock
from abonent.dunning.evaluation import evaluate
from abonent.reports import receivables
from abonent.staff.permissions import Role

D = Decimal
pytestmark = pytest.mark.django_db
TODAY = dt.date(2027, 4, 30)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def adjust(subscriber, amount, day, admin, *, evaluated=False):
    with clock.travel_to(dt.datetime.combine(day, dt.time(9, 0), tzinfo=dt.UTC)):
        billing.do_adjust_balance(subscriber, amount=D(amount), reason="test", acting_user=admin)
        if evaluated:
            evaluate([subscriber.pk])


@pytest.fixture
def debtors(make_subscriber, admin, other_branch):
    """Six subscribers, one of them paid up, one in another branch; the comments say where each debt comes from."""
    people = {
        name: make_subscriber(last_name=name, phone=f"+7916111000{i}")
        for i, name in enumerate(["Recent", "Unevaluated", "Credit", "Old", "Again", "Paid"])
    }
    people["Far"] = make_subscriber(last_name="Far", phone="+79161110009", branch_obj=other_branch)
    # Dunning's episode: restricted on 10 April (no credit limit: the episode is the debt).
    adjust(people["Recent"], "-300.00", dt.date(2027, 4, 10), admin, evaluated=True)
    # Never evaluated by dunning: the ledger says 15 March.
    adjust(people["Unevaluated"], "-120.00", dt.date(2027, 3, 15), admin)
    # A credit limit of 100: below zero on 10 February, restricted only when past the limit on 1 April. The debt is
    # the balance's: 10 February.
    with clock.travel_to(dt.datetime(2027, 1, 5, 9, 0, tzinfo=dt.UTC)):
        billing.do_set_credit_limit(people["Credit"], amount=D("100.00"), reason="test", acting_user=admin)
    adjust(people["Credit"], "-50.00", dt.date(2027, 2, 10), admin, evaluated=True)
    adjust(people["Credit"], "-100.00", dt.date(2027, 4, 1), admin, evaluated=True)
    # Below zero since December: past the window.
    adjust(people["Old"], "-75.00", dt.date(2026, 12, 1), admin)
    # In debt in December, paid up in March, in debt again on 25 April: since the 25th.
    adjust(people["Again"], "-40.00", dt.date(2026, 12, 1), admin)
    adjust(people["Again"], "100.00", dt.date(2027, 3, 1), admin)
    adjust(people["Again"], "-90.00", dt.date(2027, 4, 25), admin)
    adjust(people["Paid"], "-10.00", dt.date(2027, 4, 1), admin)
    adjust(people["Paid"], "10.00", dt.date(2027, 4, 2), admin)
    # Past the window, but dunning knows the day: 20 January.
    adjust(people["Far"], "-500.00", dt.date(2027, 1, 20), admin, evaluated=True)
    return people


@pytest.fixture(autouse=True)
def _today():
    with clock.travel_to(dt.datetime.combine(TODAY, dt.time(12, 0), tzinfo=dt.UTC)):
        yield


def test_each_debtor_is_in_debt_since_the_day_the_balance_last_went_below_zero(debtors, admin):
    rows = {a.subscriber.last_name: a for a in receivables.debtors(admin, today=TODAY).select_related("subscriber")}
    assert set(rows) == {"Recent", "Unevaluated", "Credit", "Old", "Again", "Far"}
    assert rows["Recent"].debt_since == dt.date(2027, 4, 10)
    assert rows["Unevaluated"].debt_since == dt.date(2027, 3, 15)
    assert rows["Credit"].debt_since == dt.date(2027, 2, 10)  # the ledger's, not dunning's 1 April
    assert rows["Old"].debt_since == receivables.before_window(TODAY)  # over 90 days: before the window
    assert rows["Again"].debt_since == dt.date(2027, 4, 25)
    assert rows["Far"].debt_since == dt.date(2027, 1, 20)
    assert rows["Recent"].access_state == "restricted" and rows["Unevaluated"].access_state is None


def test_the_page_shows_totals_per_bucket_and_branch(debtors, admin, branch, other_branch):
    html = client_for(admin).get(reverse("reports:receivables")).content.decode()

    def bucket(key):
        row = re.search(rf'data-bucket="{re.escape(key)}">(.*?)</tr>', html, re.S).group(1)
        return int(re.search(r"data-count>(\d+)<", row).group(1)), re.search(r"data-debt>([^<]+)<", row).group(1)

    # 0–30: Recent 300 + Again 30 (since 25 April, 5 days); 31–60: Unevaluated 120 (46 days);
    # 61–90: Credit 150 (79 days); over 90: Old 75 + Far 500 (since 20 January, 100 days).
    assert bucket("0-30") == (2, "330.00\xa0₽")
    assert bucket("31-60") == (1, "120.00\xa0₽")
    assert bucket("61-90") == (1, "150.00\xa0₽")
    assert bucket("90+") == (2, "575.00\xa0₽")
    assert bucket("total") == (6, "1,175.00\xa0₽")
    branch_row = re.search(rf'data-branch="{branch.pk}">(.*?)</tr>', html, re.S).group(1)
    assert "2 · 330.00" in branch_row and "5 · 675.00" in branch_row
    far_row = re.search(rf'data-branch="{other_branch.pk}">(.*?)</tr>', html, re.S).group(1)
    assert "1 · 500.00" in far_row and "0 · 0.00" in far_row


def test_the_drill_down_filters_by_bucket_sorts_and_pages(debtors, admin):
    client = client_for(admin)

    def shown(**params):
        html = client.get(reverse("reports:receivables"), params).content.decode()
        return [int(pk) for pk in re.findall(r'<tr data-subscriber="(\d+)"', html)], html

    ids, _html = shown()
    # The biggest debt first.
    assert ids == [debtors[n].pk for n in ("Far", "Recent", "Credit", "Unevaluated", "Old", "Again")]
    assert shown(bucket="0-30")[0] == [debtors["Recent"].pk, debtors["Again"].pk]
    assert shown(bucket="90+", sort="since")[0] == [debtors["Far"].pk, debtors["Old"].pk]
    assert shown(q=debtors["Credit"].account_number)[0] == [debtors["Credit"].pk]
    assert "more than 90 days" in shown(bucket="90+")[1]
    # Keyset pages of the oldest debts first, two a page.
    from abonent.core import listing

    page = listing.keyset_page(receivables.debtors(admin, today=TODAY), ordering=("debt_since", "id"), size=2)
    second = listing.keyset_page(
        receivables.debtors(admin, today=TODAY), ordering=("debt_since", "id"), cursor=page.next_cursor, size=2
    )
    assert [a.subscriber_id for a in page] == [debtors["Far"].pk, debtors["Old"].pk]
    assert [a.subscriber_id for a in second] == [debtors["Credit"].pk, debtors["Unevaluated"].pk]
    # A bad filter is left out, never a 500.
    assert client.get(reverse("reports:receivables"), {"bucket": "x", "branch": "abc", "sort": "?"}).status_code == 200


def test_the_exports_carry_the_filtered_debtors(debtors, admin):
    client = client_for(admin)
    response = client.get(reverse("reports:receivables_export"), {"format": "csv", "bucket": "0-30"})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert rows[0] == [
        "Account",
        "Subscriber",
        "Branch",
        "Debt",
        "In debt since",
        "Days in debt",
        "In debt for",
        "Access",
    ]
    assert rows[1][0] == debtors["Recent"].account_number and rows[1][3:7] == [
        "300,00",
        "10.04.2027",
        "20",
        "0–30 days",
    ]
    assert rows[1][7] == "Restricted" and rows[2][0] == debtors["Again"].account_number and len(rows) == 3

    response = client.get(reverse("reports:receivables_export"), {"format": "xlsx", "sort": "since"})
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))[1:]
    oldest_first = ("Far", "Old", "Credit", "Unevaluated", "Recent", "Again")
    assert [r[0] for r in rows] == [debtors[n].account_number for n in oldest_first]
    assert rows[0][3] == 500 and rows[0][4] == dt.datetime(2027, 1, 20) and rows[0][5] == 100  # dunning's day
    assert rows[1][3] == 75 and rows[1][4] is None and rows[1][6] == "over 90 days"  # older than the window


def test_branch_limits_and_permissions(debtors, make_staff, other_branch):
    limited = client_for(make_staff(Role.OPERATOR, branches=[other_branch]))
    html = limited.get(reverse("reports:receivables")).content.decode()
    assert re.findall(r'<tr data-subscriber="(\d+)"', html) == [str(debtors["Far"].pk)]
    assert re.search(r'data-bucket="total">.*?data-count>(\d+)<', html, re.S).group(1) == "1"
    body = b"".join(limited.get(reverse("reports:receivables_export"), {"format": "csv"}).streaming_content).decode()
    assert len(body.strip().splitlines()) == 2
    for role in (Role.CASHIER, Role.SUPPORT, Role.ENGINEER):
        client = client_for(make_staff(role))
        assert client.get(reverse("reports:receivables")).status_code == 403
        assert client.get(reverse("reports:receivables_export"), {"format": "csv"}).status_code == 403
