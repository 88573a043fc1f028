"""The business reports on the seed article's month: what each shows equals the ledger; branch scope, permissions,
bounded filters, exports; the summary tables' rollup (no row lost to ids committing out of order) and the replica."""

import csv
import datetime as dt
import io
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from abonent.billing import actions
from abonent.billing.models import AccountKind, Charge, Posting
from abonent.billing.testing import run_on
from abonent.core import clock
from abonent.payments.actions.intake import do_receive_payment
from abonent.payments.actions.refunds import do_cancel_payment
from abonent.reports import facts, replica
from abonent.reports.models import PaymentFact, RevenueFact
from abonent.reports.results import do_compute_report
from abonent.staff.permissions import Role

D = Decimal


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def pay(subscriber, amount: str, external_id: str, channel: str = "bank"):
    return do_receive_payment(
        channel=channel, external_id=external_id, amount=D(amount), method="bank", subscriber=subscriber
    )


@pytest.fixture
def seed_month(make_plan, make_subscriber, admin, other_branch):
    """November 2026: account on "Интернет-100" (650 ₽ a month), an upgrade Домашний → Игровой on the 16th, a daily
    plan's 30 days adding up to its fee, a payment of 1,000 ₽ and one of 300 ₽ cancelled; another branch's 500 ₽."""
    internet_100 = make_plan("internet-100", "650.00", name="Интернет-100")
    home = make_plan("domashniy", "500.00", name="Домашний")
    gamer = make_plan("igrovoy", "900.00", name="Игровой")
    daily = make_plan("daily", "600.00", name="Посуточный", charge_mode="daily")
    a, b, c = (
        make_subscriber(phone="+79160000001"),
        make_subscriber(phone="+79160000002"),
        make_subscriber(phone="+79160000003"),
    )
    far = make_subscriber(phone="+79160000004", branch_obj=other_branch)
    with clock.travel_to(dt.date(2026, 11, 1)):
        actions.do_activate_subscription(a, plan=internet_100, acting_user=admin)
        upgraded = actions.do_activate_subscription(b, plan=home, acting_user=admin)
        actions.do_activate_subscription(c, plan=daily, acting_user=admin)
        actions.do_activate_subscription(far, plan=home, acting_user=admin)
    with clock.travel_to(dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)):
        actions.do_change_plan(upgraded, plan=gamer, acting_user=admin)
    for day in range(2, 31):
        run_on(dt.date(2026, 11, day))
    with clock.travel_to(dt.date(2026, 11, 20)):
        pay(a, "1000.00", "n-1")
        cancelled = pay(b, "300.00", "n-2")
        do_cancel_payment(cancelled.payment, reason="wrong account", acting_user=admin)
        pay(far, "500.00", "n-3")
    facts.do_roll_up_facts()
    return {"a": a, "b": b, "far": far, "other_branch": other_branch}


def report_rows(client, slug, **params):
    body = b"".join(
        client.get(reverse("reports:report_export", args=[slug]), {"format": "csv", **params}).streaming_content
    )
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


NOVEMBER = {"period": "custom", "start": "2026-11-01", "end": "2026-11-30", "group_by": "month"}


@pytest.mark.django_db
def test_the_facts_equal_the_ledger_to_the_kopeck(seed_month):
    assert facts.verify_facts().ok
    charged = Charge.objects.aggregate(total=Sum("amount"))["total"]
    # 650 + (500 − 250 + 450) + 600 (30 daily fees) + 500 (the other branch)
    assert charged == D("2450.00")
    assert RevenueFact.objects.aggregate(total=Sum("amount"))["total"] == charged
    revenue_postings = Posting.objects.filter(account__kind=AccountKind.REVENUE).aggregate(t=Sum("amount"))["t"]
    assert revenue_postings == charged
    assert PaymentFact.objects.aggregate(total=Sum("amount"))["total"] == D("1500.00")  # 1000 + 300 − 300 + 500
    # Rolled up again with nothing new: nothing changes.
    facts.do_roll_up_facts()
    assert RevenueFact.objects.aggregate(total=Sum("amount"))["total"] == D("2450.00")


@pytest.mark.django_db
def test_the_revenue_report_shows_the_months_charges_by_plan(seed_month, admin):
    rows = report_rows(client_for(admin), "revenue", **NOVEMBER)
    assert rows[0] == ["Period", "Service", "Plan", "Charged", "Credited and reversed", "Revenue", "Charges"]
    by_plan = {r[2]: r[3:6] for r in rows[1:-1]}
    assert by_plan["Интернет-100"] == ["650,00", "0,00", "650,00"]
    assert by_plan["Домашний"] == ["1000,00", "-250,00", "750,00"]  # two subscribers' 500, one credited back 250
    assert by_plan["Игровой"] == ["450,00", "0,00", "450,00"]
    assert by_plan["Посуточный"] == ["600,00", "0,00", "600,00"]
    assert rows[-1][5] == "2450,00"


@pytest.mark.django_db
def test_cash_and_payments_by_channel_net_of_cancellations(seed_month, admin):
    client = client_for(admin)
    cash = report_rows(client, "revenue-cash", **NOVEMBER)
    assert cash[1][1:4] == ["1800,00", "-300,00", "1500,00"]
    channels = report_rows(client, "payments", **NOVEMBER)
    assert channels[1][1:] == ["Bank statement", "3", "1800,00", "-300,00", "1500,00"]


@pytest.mark.django_db
def test_a_branch_operator_sees_no_figures_of_another_branch(seed_month, make_staff, branch):
    limited = make_staff(Role.OPERATOR, username="branch-a", branches=[branch])
    client = client_for(limited)
    rows = report_rows(client, "revenue", **NOVEMBER)
    assert rows[-1][5] == "1950,00"  # 2450 without the other branch's 500
    cash = report_rows(client, "revenue-cash", **NOVEMBER)
    assert cash[-1][3] == "1000,00"
    other = str(seed_month["other_branch"].pk)
    response = client.get(reverse("reports:report", args=["revenue"]), {**NOVEMBER, "branch": other})
    assert response.status_code == 400 and b'data-error="branch"' in response.content


@pytest.mark.django_db
def test_a_cashier_may_not_open_reports(make_staff):
    cashier = make_staff(Role.CASHIER, username="cashier")
    client = client_for(cashier)
    assert client.get(reverse("reports:report", args=["revenue"])).status_code == 403
    assert client.get(reverse("reports:report_export", args=["revenue"]), {"format": "csv"}).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "custom", "start": "1900-01-01", "end": "2026-11-30"}, "start"),
        ({"period": "custom", "start": "2026-11-30", "end": "2026-11-01"}, "end"),
        ({"period": "custom", "start": "2020-01-01", "end": "2026-11-30", "group_by": "day"}, "group_by"),
        ({"period": "custom", "start": "99999-01-01", "end": "2026-11-30"}, "start"),
    ],
)
def test_absurd_filters_are_a_field_error_not_a_500(admin, params, field):
    client = client_for(admin)
    response = client.get(reverse("reports:report", args=["revenue"]), params)
    assert response.status_code == 400
    assert f'data-error="{field}"'.encode() in response.content
    assert (
        client.get(reverse("reports:report_export", args=["revenue"]), {**params, "format": "csv"}).status_code == 400
    )


@pytest.mark.django_db
def test_the_report_page_renders_chart_and_table(seed_month, admin):
    html = client_for(admin).get(reverse("reports:report", args=["revenue"]), NOVEMBER).content.decode()
    assert 'id="report-chart"' in html and 'data-chart="report-chart"' in html
    assert "Интернет-100" in html and 'id="report-totals"' in html
    assert 'data-report="forecast"' in html


@pytest.mark.django_db
def test_arpu_and_forecast_are_computed_by_the_worker(seed_month, admin, make_plan):
    client = client_for(admin)
    url = reverse("reports:report", args=["arpu"])
    html = client.get(url, NOVEMBER).content.decode()
    assert 'id="report-pending"' in html
    with clock.travel_to(dt.date(2026, 12, 1)):
        from abonent.reports.pages import ReportFilterForm, get_report

        form = ReportFilterForm(NOVEMBER, user=admin, report=get_report("arpu"))
        assert form.is_valid()
        result = do_compute_report("arpu", form.query().as_params())
    (row,) = result.rows
    assert row["subscribers"] == 4 and row["revenue"] == {"n": "2450.00"} and row["arpu"] == {"n": "612.50"}
    html = client.get(url, NOVEMBER).content.decode()
    assert 'id="report-computed"' in html and "612.50" in html

    with clock.travel_to(dt.date(2026, 11, 25)):
        form = ReportFilterForm({"period": "last_month"}, user=admin, report=get_report("forecast"))
        assert form.is_valid()
        forecast = do_compute_report("forecast", form.query().as_params()).rows
    # December: 650 + 900 (the upgraded plan) + 600 + 500 = 2650, four subscriptions.
    assert forecast[-1]["amount"] == {"n": "2650.00"} and forecast[-1]["subscriptions"] == 4


@pytest.mark.django_db
def test_rebuild_from_a_day_gives_the_same_facts(seed_month):
    before = sorted(RevenueFact.objects.values_list("day", "branch_id", "plan_id", "kind", "amount", "count"))
    facts.do_rebuild_facts(since=dt.date(2026, 11, 15))
    assert sorted(RevenueFact.objects.values_list("day", "branch_id", "plan_id", "kind", "amount", "count")) == before
    facts.do_rebuild_facts()
    assert sorted(RevenueFact.objects.values_list("day", "branch_id", "plan_id", "kind", "amount", "count")) == before
    assert facts.verify_facts().ok


@pytest.mark.skipif(connection.vendor != "postgresql", reason="ids committing out of order need concurrent writers")
@pytest.mark.django_db(transaction=True)
def test_a_lower_id_committed_after_a_rollup_is_not_lost(make_subscriber):
    """Transaction A takes its ids first and commits last; B commits in between. The rollup that sees B must not move
    past A's ids: it waits for A (here, past its deadline, it does not move at all), and the next one counts both."""
    first, second = make_subscriber(phone="+79160000011"), make_subscriber(phone="+79160000012")
    # The channel's and the subscribers' ledger accounts exist before: the two payments contend for nothing else.
    pay(first, "1.00", "warm-1")
    pay(second, "1.00", "warm-2")
    facts.do_roll_up_facts()
    assert PaymentFact.objects.aggregate(total=Sum("amount"))["total"] == D("2.00")
    took_ids, release = threading.Event(), threading.Event()

    def slow():
        try:
            with transaction.atomic():
                pay(first, "111.00", "slow")
                took_ids.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow)
    thread.start()
    assert took_ids.wait(10)
    pay(second, "222.00", "fast")  # a higher id, committed first
    assert facts.do_roll_up_facts(wait_seconds=0.3).moved is False
    assert PaymentFact.objects.aggregate(total=Sum("amount"))["total"] == D("2.00")
    release.set()
    thread.join(10)
    assert facts.do_roll_up_facts().moved is True
    assert PaymentFact.objects.aggregate(total=Sum("amount"))["total"] == D("335.00")
    assert facts.verify_facts().ok


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="a replica is a PostgreSQL deployment; SQLite's in-memory test database cannot be flushed under a mirror",
)
@pytest.mark.django_db(transaction=True, databases=["default", replica.REPLICA])
def test_the_reports_read_from_the_replica_when_there_is_one(seed_month, admin, settings):
    """The replica alias is the test database's mirror (tests/reports/conftest.py, Django's TEST MIRROR): with it in
    the settings the report's queries go to it, none of them to the default database."""
    settings.DATABASE_REPLICA_URL = "the test database's mirror"
    try:
        assert replica.reading_db() == replica.REPLICA
        from abonent.reports.pages import ReportQuery, get_report

        query = ReportQuery(start=dt.date(2026, 11, 1), end=dt.date(2026, 12, 1))
        with (
            CaptureQueriesContext(connections[replica.REPLICA]) as on_replica,
            CaptureQueriesContext(connection) as on_default,
        ):
            rows = get_report("revenue").rows(query, using=replica.reading_db())
        assert sum(r["net"] for r in rows) == D("2450.00")
        assert any("reports_revenuefact" in q["sql"] for q in on_replica.captured_queries)
        assert on_default.captured_queries == []
    finally:
        connections[replica.REPLICA].close()
