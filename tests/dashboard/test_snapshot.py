"""The snapshot task computes the dashboard's heavy figures right: receivables, debtors by days of debt (first in,
first out), payments this month, revenue by service and ARPU, sessions online over time."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions as billing
from abonent.core import clock
from abonent.dashboard.models import Snapshot
from abonent.dashboard.snapshot import compute_figures, do_take_snapshot
from abonent.network import actions as network
from abonent.network.models import NasSample
from abonent.payments.actions.refunds import do_cancel_payment
from abonent.staff.permissions import Role

from .conftest import NOW, TODAY, at

pytestmark = pytest.mark.django_db


@pytest.fixture
def debtors(make_subscriber, other_branch, charge, pay):
    """Four debtors and one subscriber paid up, today being 15 June 2026:

    - A (Тверь) owes 500 charged on 10 June: 5 days of debt;
    - B (Тверь) was charged 300 on 20 April and 300 on 20 May and paid 200 on 1 June: the payment pays the oldest
      charge first, so the 400 owed are 100 of April's and all of May's: 56 days of debt;
    - C (Клин) was charged 1000 on 10 January and paid 100: 900 owed, older than any charge of the last 90 days;
    - D (Клин) was charged 200 on 17 March (exactly 90 days ago) and 100 yesterday: 300 owed, 90 days of debt;
    - E (Тверь) paid 1000 and was charged 500: not a debtor."""
    a = make_subscriber(last_name="Алексеев", phone="+79160000001")
    b = make_subscriber(last_name="Борисов", phone="+79160000002")
    c = make_subscriber(last_name="Сидоров", phone="+79160000003", branch_obj=other_branch)
    d = make_subscriber(last_name="Дмитриев", phone="+79160000004", branch_obj=other_branch)
    e = make_subscriber(last_name="Егоров", phone="+79160000005")
    charge(a, "500.00", dt.date(2026, 6, 10))
    charge(b, "300.00", dt.date(2026, 4, 20))
    charge(b, "300.00", dt.date(2026, 5, 20))
    pay(b, "200.00", dt.date(2026, 6, 1))
    charge(c, "1000.00", dt.date(2026, 1, 10))
    pay(c, "100.00", dt.date(2026, 2, 1))
    charge(d, "200.00", dt.date(2026, 3, 17))
    charge(d, "100.00", dt.date(2026, 6, 14))
    pay(e, "1000.00", dt.date(2026, 6, 1))
    charge(e, "500.00", dt.date(2026, 6, 5))
    return a, b, c, d, e


def test_receivables_and_ageing_by_days_of_debt_first_in_first_out(debtors, branch, other_branch):
    figures = compute_figures(NOW)

    tver, klin = figures["branches"][str(branch.pk)], figures["branches"][str(other_branch.pk)]
    # Тверь: A (5 days) and B (56 days); E is paid up.
    assert (tver["debtors"], tver["receivables"]) == (2, "900.00")
    assert tver["ageing"] == [[1, "500.00"], [1, "400.00"], [0, "0.00"], [0, "0.00"]]
    # Клин: D (90 days, the oldest bucket's edge) and C (over 90 days).
    assert (klin["debtors"], klin["receivables"]) == (2, "1200.00")
    assert klin["ageing"] == [[0, "0.00"], [0, "0.00"], [1, "300.00"], [1, "900.00"]]


def test_a_debt_moves_to_an_older_bucket_as_days_pass(debtors, branch):
    # A's 500 of 10 June: 30 days later still "0–30", a day after that "31–60".
    on_day_30 = compute_figures(at(dt.date(2026, 7, 10), 12))["branches"][str(branch.pk)]["ageing"]
    on_day_31 = compute_figures(at(dt.date(2026, 7, 11), 12))["branches"][str(branch.pk)]["ageing"]

    assert on_day_30[0] == [1, "500.00"]
    assert on_day_31[0] == [0, "0.00"] and on_day_31[1] == [1, "500.00"]
    assert on_day_31[2] == [1, "400.00"]  # B's oldest unpaid charge, of 20 April, is 82 days old by then


def test_revenue_by_service_this_month_and_last(debtors):
    figures = compute_figures(NOW)

    # June: A 500, D 100 (yesterday), E 500; May: B's 300. All on the internet service's revenue account.
    assert figures["revenue"]["month"] == "1100.00"
    assert figures["revenue"]["previous"] == "300.00"
    assert figures["revenue"]["services"] == [{"name": "Интернет", "month": "1100.00", "previous": "300.00"}]


def test_arpu_is_the_month_revenue_over_the_subscribers_with_a_subscription_then(
    make_subscriber, make_plan, admin, charge, internet
):
    plan = make_plan("internet-100", "650.00")
    first = make_subscriber(last_name="Первый", phone="+79160000011")
    second = make_subscriber(last_name="Второй", phone="+79160000012")
    make_subscriber(last_name="Без тарифа", phone="+79160000013")  # no subscription: not in the denominator
    with clock.travel_to(at(dt.date(2026, 5, 1))):
        for subscriber in (first, second):
            billing.do_post_payment(
                subscriber, amount="5000.00", channel="bank", external_id=f"x-{subscriber.pk}", acting_user=admin
            )
            billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    charge(first, "200.00", dt.date(2026, 6, 2))

    figures = compute_figures(NOW)

    # May: two fees of 650 over two subscribers; June so far: 200 over the same two.
    assert figures["revenue"]["previous"] == "1300.00"
    assert figures["arpu"] == {
        "month": "100.00",
        "month_subscribers": 2,
        "previous": "650.00",
        "previous_subscribers": 2,
    }


def test_payments_this_month_and_today_until_a_margin_before_the_snapshot(make_subscriber, make_staff, receive, branch):
    cashier = make_staff(Role.CASHIER)
    subscriber = make_subscriber()
    receive(subscriber, "999.00", at(dt.date(2026, 5, 31), 23))  # last month
    receive(subscriber, "500.00", at(dt.date(2026, 6, 3)), channel="cash", method="cash", acting_user=cashier)
    receive(subscriber, "1000.00", at(dt.date(2026, 6, 10)))
    cancelled = receive(
        subscriber, "70.00", at(dt.date(2026, 6, 10)), channel="cash", method="cash", acting_user=cashier
    )
    receive(subscriber, "300.00", at(TODAY, 9))  # today
    receive(subscriber, "40.00", NOW - dt.timedelta(minutes=1))  # within the margin: the page counts it live
    with clock.travel_to(at(dt.date(2026, 6, 10), 11)):
        do_cancel_payment(cancelled, acting_user=cashier, reason="Ошибся суммой")

    figures = compute_figures(NOW)
    payments = figures["branches"][str(branch.pk)]["payments"]

    assert figures["payments_until"] == (NOW - dt.timedelta(minutes=2)).isoformat()
    assert payments["by_channel"] == {"cash": ["500.00", 1], "bank": ["1300.00", 2]}
    assert payments["today_by_channel"] == {"bank": ["300.00", 1]}
    assert payments["by_day"] == {"2026-06-03": "500.00", "2026-06-10": "1000.00", "2026-06-15": "300.00"}


def test_sessions_online_over_the_day_and_week_from_the_samples(make_nas_for_dashboard):
    first, second = make_nas_for_dashboard("bras-1", "10.0.0.1"), make_nas_for_dashboard("bras-2", "10.0.0.2")
    for minutes_ago, a, b in ((5, 100, 40), (10, 90, 45), (60 * 30, 300, 10)):
        taken = NOW - dt.timedelta(minutes=minutes_ago)
        NasSample.objects.create(nas=first, taken_at=taken, open_sessions=a, interval_seconds=300)
        NasSample.objects.create(nas=second, taken_at=taken, open_sessions=b, interval_seconds=300)
    NasSample.objects.create(nas=first, taken_at=NOW - dt.timedelta(days=8), open_sessions=999)  # too old

    online = compute_figures(NOW)["online"]

    # The last day: two runs, the NAS summed per run; the week adds the run of 30 hours ago.
    assert online["day"]["sessions"] == [135, 140]
    assert online["peak_day"] == 140
    assert online["peak_week"] == 310
    assert sum(online["week"]["sessions"]) == 310 + 140  # hourly buckets: the two recent runs share one hour


def test_the_task_stores_a_snapshot_and_prunes_those_older_than_a_day(debtors):
    Snapshot.objects.create(taken_at=NOW - dt.timedelta(days=2), figures={})
    Snapshot.objects.create(taken_at=NOW - dt.timedelta(hours=3), figures={})

    snapshot = do_take_snapshot(NOW)

    assert snapshot.taken_at == NOW and snapshot.figures["day"] == "2026-06-15"
    assert Snapshot.objects.count() == 2


def test_the_snapshot_figures_are_exact_decimals_whatever_the_engine(make_subscriber, charge):
    subscriber = make_subscriber()
    for n in range(7):
        charge(subscriber, "0.10", dt.date(2026, 6, 1 + n))  # 0.1 has no exact float

    branch_figures = next(iter(compute_figures(NOW)["branches"].values()))

    assert branch_figures["receivables"] == "0.70"
    assert Decimal(branch_figures["ageing"][0][1]) == Decimal("0.70")


@pytest.fixture
def make_nas_for_dashboard(admin):
    def make(name, address):
        return network.do_create_nas(
            acting_user=admin, name=name, ip_address=address, secret="a-long-shared-secret-for-tests", vendor="mikrotik"
        )

    return make
