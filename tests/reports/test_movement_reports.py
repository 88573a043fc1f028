"""Debtors, new connections and churn, plan migrations, traffic by NAS and plan: known scenarios built through the
actions (activations, plan changes, terminations, closures, payments, accounting), figures checked exactly, in the
page, the export and under a branch limit; bad filters give field errors."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from abonent.billing import actions
from abonent.billing.testing import run_on
from abonent.core import clock
from abonent.network import actions as network
from abonent.network.accounting import START, AcctRecord, write_batch
from abonent.network.models import UsageDay
from abonent.payments.actions.intake import do_receive_payment
from abonent.reports.pages import ReportFilterForm, get_report
from abonent.reports.results import do_compute_report
from abonent.staff.permissions import Role
from abonent.subscribers.actions import do_close_subscriber

D = Decimal
GB = 10**9
TZ = dt.UTC


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def computed(user, slug: str, **params) -> list[list[str]]:
    """What the worker computes for the filters ``user`` asks for, read back through the export."""
    form = ReportFilterForm(params, user=user, report=get_report(slug))
    assert form.is_valid(), form.errors
    do_compute_report(slug, form.query().as_params())
    return csv_rows(client_for(user).get(reverse("reports:report_export", args=[slug]), {"format": "csv", **params}))


def on(day: dt.date):
    return clock.travel_to(dt.datetime.combine(day, dt.time(12, 0), tzinfo=TZ))


# --- debtors ----------------------------------------------------------------------------------------------------


@pytest.fixture
def debts(make_plan, make_subscriber, admin, other_branch):
    """Петров paid 100 ₽ and owes 400 ₽ of a 500 ₽ fee; Сидоров never paid and owes 650 ₽; Иванов is in credit; in
    the other branch Кузнецов owes 500 ₽."""
    home = make_plan("home", "500.00", name="Домашний")
    internet_100 = make_plan("internet-100", "650.00", name="Интернет-100")
    petrov = make_subscriber(last_name="Петров", phone="+79160000011")
    sidorov = make_subscriber(last_name="Сидоров", phone="+79160000012")
    ivanov = make_subscriber(last_name="Иванов", phone="+79160000013")
    far = make_subscriber(last_name="Кузнецов", phone="+79160000014", branch_obj=other_branch)
    with on(dt.date(2026, 10, 30)):
        do_receive_payment(channel="bank", external_id="p-1", amount=D("100.00"), method="bank", subscriber=petrov)
        do_receive_payment(channel="bank", external_id="p-2", amount=D("900.00"), method="bank", subscriber=ivanov)
    with on(dt.date(2026, 11, 1)):
        for subscriber, plan in ((petrov, home), (sidorov, internet_100), (ivanov, home), (far, home)):
            actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    return {"petrov": petrov, "sidorov": sidorov, "ivanov": ivanov, "far": far}


@pytest.mark.django_db
def test_debtors_lists_who_owes_how_much_since_when_and_the_last_payment(debts, admin):
    client = client_for(admin)
    with on(dt.date(2026, 11, 10)):
        page = client.get(reverse("reports:debtors"))
        rows = csv_rows(client.get(reverse("reports:debtors_export"), {"format": "csv"}))

    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('data-subscriber="') == 3
    assert reverse("subscribers:card", args=[debts["sidorov"].pk]) in html
    assert rows[0][:4] == ["Account", "Subscriber", "Branch", "Debt"]
    table = {r[1].split()[0]: (r[2], r[3], r[5], r[6], r[8][:10], r[9]) for r in rows[1:]}
    # The biggest debt first; "in debt since" the activation that took the balance below zero.
    assert [r[1].split()[0] for r in rows[1:]] == ["Сидоров", "Кузнецов", "Петров"]
    assert table == {
        "Сидоров": ("Тверь", "650,00", "01.11.2026", "9", "", ""),
        "Кузнецов": ("Клин", "500,00", "01.11.2026", "9", "", ""),
        "Петров": ("Тверь", "400,00", "01.11.2026", "9", "30.10.2026", "100,00"),
    }


@pytest.mark.django_db
def test_debtors_filters_and_the_branch_limit_apply_to_the_page_and_the_export(debts, make_staff, branch):
    local = make_staff(Role.OPERATOR, branches=[branch])
    client = client_for(local)
    with on(dt.date(2026, 11, 10)):
        rows = csv_rows(client.get(reverse("reports:debtors_export"), {"format": "csv"}))
        bigger = csv_rows(client.get(reverse("reports:debtors_export"), {"format": "csv", "min_debt": "500"}))
        html = client.get(reverse("reports:debtors")).content.decode()

    assert sorted(r[1].split()[0] for r in rows[1:]) == ["Петров", "Сидоров"]
    assert [r[1].split()[0] for r in bigger[1:]] == ["Сидоров"]
    assert "Кузнецов" not in html


@pytest.mark.django_db
def test_debtors_refuses_bad_filters_with_field_errors(admin):
    client = client_for(admin)

    page = client.get(reverse("reports:debtors"), {"min_debt": "-5", "access": "nonsense"})
    export = client.get(reverse("reports:debtors_export"), {"format": "csv", "min_debt": "много"})

    assert page.status_code == 400
    html = page.content.decode()
    assert 'data-error="min_debt"' in html and 'data-error="access"' in html
    assert export.status_code == 400


# --- new connections and churn ----------------------------------------------------------------------------------


@pytest.fixture
def movement(make_plan, make_subscriber, admin, other_branch):
    """January–April 2026. А (Jan 10) stays; Б (Jan 5) terminated Mar 3; Е (Jan 1) terminated Feb 10 and back Apr 2;
    Д (Feb 1, the other branch) closed Mar 15 with its subscription left running."""
    home = make_plan("home", "500.00", name="Домашний")
    gamer = make_plan("gamer", "900.00", name="Игровой")
    a = make_subscriber(last_name="Абрамов", phone="+79160000021")
    b = make_subscriber(last_name="Борисов", phone="+79160000022")
    e = make_subscriber(last_name="Егоров", phone="+79160000023")
    d = make_subscriber(last_name="Данилов", phone="+79160000024", branch_obj=other_branch)
    subs = {}
    for subscriber, day, plan in (
        (e, dt.date(2026, 1, 1), home),
        (b, dt.date(2026, 1, 5), gamer),
        (a, dt.date(2026, 1, 10), home),
        (d, dt.date(2026, 2, 1), home),
    ):
        with on(day):
            subs[subscriber.pk] = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    with on(dt.date(2026, 2, 10)):
        actions.do_terminate_subscription(subs[e.pk], acting_user=admin, reason="moved away")
    with on(dt.date(2026, 3, 3)):
        actions.do_terminate_subscription(subs[b.pk], acting_user=admin, reason="another provider")
    with on(dt.date(2026, 3, 15)):
        do_close_subscriber(d, reason="contract ended", acting_user=admin)
    with on(dt.date(2026, 4, 2)):
        actions.do_activate_subscription(e, plan=home, acting_user=admin)
    return {"home": home, "gamer": gamer}


SPRING = {"period": "custom", "start": "2026-01-01", "end": "2026-04-30"}


@pytest.mark.django_db
def test_churn_counts_new_returned_and_churned_per_month(movement, admin):
    with on(dt.date(2026, 5, 1)):
        rows = computed(admin, "churn", **SPRING)

    assert rows[0] == ["Month", "Active at the start", "New", "Returned", "Churned", "Churn rate, %", "Net growth"]
    assert rows[1:] == [
        ["01.01.2026", "0", "3", "0", "0", "", "3"],
        ["01.02.2026", "3", "1", "0", "1", "33,33", "0"],  # Е left on the 10th
        ["01.03.2026", "3", "0", "0", "2", "66,67", "-2"],  # Б terminated, Д closed
        ["01.04.2026", "1", "0", "1", "0", "0,00", "1"],  # Е came back
        ["", "", "4", "1", "3", "", "2"],
    ]


@pytest.mark.django_db
def test_churn_by_plan_and_under_a_branch_limit(movement, admin, make_staff, branch):
    local = make_staff(Role.OPERATOR, branches=[branch])
    with on(dt.date(2026, 5, 1)):
        mine = computed(local, "churn", **SPRING)
        gamers = computed(admin, "churn", plan=str(movement["gamer"].pk), **SPRING)

    # Without Д (the other branch): no new in February, one churned in March.
    assert [r[1:5] for r in mine[1:5]] == [
        ["0", "3", "0", "0"],
        ["3", "0", "0", "1"],
        ["2", "0", "0", "1"],
        ["1", "0", "1", "0"],
    ]
    # Only Б was on "Игровой": came in January, left in March.
    assert [r[1:5] for r in gamers[1:5]] == [
        ["0", "1", "0", "0"],
        ["1", "0", "0", "0"],
        ["1", "0", "0", "1"],
        ["0", "0", "0", "0"],
    ]


# --- plan migrations --------------------------------------------------------------------------------------------


@pytest.fixture
def migrations(make_plan, make_subscriber, admin):
    """Х upgrades Домашний → Игровой on 16 February; У asks on 10 February for Игровой → Домашний, which the billing
    run applies on 1 March (a downgrade waits for the next period)."""
    home = make_plan("home", "500.00", name="Домашний")
    gamer = make_plan("gamer", "900.00", name="Игровой")
    x = make_subscriber(last_name="Харитонов", phone="+79160000031")
    y = make_subscriber(last_name="Яковлев", phone="+79160000032")
    with on(dt.date(2026, 2, 1)):
        up = actions.do_activate_subscription(x, plan=home, acting_user=admin)
        down = actions.do_activate_subscription(y, plan=gamer, acting_user=admin)
    with on(dt.date(2026, 2, 16)):
        actions.do_change_plan(up, plan=gamer, acting_user=admin)
    with on(dt.date(2026, 2, 10)):
        actions.do_change_plan(down, plan=home, acting_user=admin)
    run_on(dt.date(2026, 3, 1))
    return {"home": home, "gamer": gamer}


@pytest.mark.django_db
def test_plan_migrations_count_upgrades_downgrades_and_their_revenue_effect(migrations, admin):
    with on(dt.date(2026, 3, 20)):
        rows = computed(admin, "plan-migrations", period="custom", start="2026-02-01", end="2026-03-31")

    assert rows[0] == [
        "Period", "From plan", "To plan", "Direction", "Changes", "Price change a month", "Revenue effect a month",
    ]  # fmt: skip
    assert rows[1:] == [
        ["01.02.2026", "Домашний", "Игровой", "Upgrade", "1", "400,00", "400,00"],
        ["01.03.2026", "Игровой", "Домашний", "Downgrade", "1", "-400,00", "-400,00"],
        ["", "Total", "", "", "2", "", "0,00"],
    ]


# --- traffic ----------------------------------------------------------------------------------------------------


def start_session(nas, subscriber, unique: str, started: dt.datetime):
    write_batch(
        [
            AcctRecord(
                status=START,
                nas_id=nas.pk,
                event_time=started,
                unique_id=unique,
                acct_session_id=f"s-{unique}",
                username=unique,
                subscriber_id=subscriber.pk,
                framed_ip="100.64.0.9",
            )
        ]
    )


@pytest.fixture
def traffic(make_plan, make_subscriber, admin, other_branch):
    """Two NAS; Петров (Домашний) on the first, Сидоров (Игровой, the other branch) on the second; November and
    December traffic."""
    home = make_plan("home", "500.00", name="Домашний")
    gamer = make_plan("gamer", "900.00", name="Игровой")
    petrov = make_subscriber(last_name="Петров", phone="+79160000041")
    sidorov = make_subscriber(last_name="Сидоров", phone="+79160000042", branch_obj=other_branch)
    with on(dt.date(2026, 11, 1)):
        actions.do_activate_subscription(petrov, plan=home, acting_user=admin)
        actions.do_activate_subscription(sidorov, plan=gamer, acting_user=admin)
    first = network.do_create_nas(
        acting_user=admin, secret="s3cret-shared-16+", vendor="mikrotik", name="nas-1", ip_address="10.1.1.1"
    )
    second = network.do_create_nas(
        acting_user=admin, secret="s3cret-shared-16+", vendor="mikrotik", name="nas-2", ip_address="10.2.2.2"
    )
    start_session(first, petrov, "p", dt.datetime(2026, 11, 1, 9, tzinfo=TZ))
    start_session(second, sidorov, "s", dt.datetime(2026, 11, 1, 9, tzinfo=TZ))
    for subscriber, day, octets_in, octets_out in (
        (petrov, dt.date(2026, 11, 5), 1 * GB, 10 * GB),
        (petrov, dt.date(2026, 11, 6), 1 * GB, 5 * GB),
        (petrov, dt.date(2026, 12, 1), 2 * GB, 20 * GB),
        (sidorov, dt.date(2026, 11, 5), 3 * GB, 30 * GB),
    ):
        UsageDay.objects.create(subscriber=subscriber, day=day, input_octets=octets_in, output_octets=octets_out)


@pytest.mark.django_db
def test_traffic_by_nas_and_plan_per_month_and_per_day(traffic, admin, make_staff, branch):
    period = {"period": "custom", "start": "2026-11-01", "end": "2026-12-31"}
    with on(dt.date(2027, 1, 5)):
        monthly = computed(admin, "traffic", group_by="month", **period)
        daily = computed(admin, "traffic", group_by="day", start="2026-11-05", end="2026-11-06", period="custom")
        local = computed(make_staff(Role.OPERATOR, branches=[branch]), "traffic", group_by="month", **period)

    assert monthly[0] == ["Period", "NAS", "Plan", "Subscribers", "Download, GB", "Upload, GB", "Total, GB"]
    assert monthly[1:] == [
        ["01.11.2026", "nas-1", "Домашний", "1", "15,000", "2,000", "17,000"],
        ["01.11.2026", "nas-2", "Игровой", "1", "30,000", "3,000", "33,000"],
        ["01.12.2026", "nas-1", "Домашний", "1", "20,000", "2,000", "22,000"],
        ["", "Total", "", "", "65,000", "7,000", "72,000"],
    ]
    assert daily[1:3] == [
        ["05.11.2026", "nas-1", "Домашний", "1", "10,000", "1,000", "11,000"],
        ["05.11.2026", "nas-2", "Игровой", "1", "30,000", "3,000", "33,000"],
    ]
    assert daily[3][:4] == ["06.11.2026", "nas-1", "Домашний", "1"]
    assert [r[1] for r in local[1:-1]] == ["nas-1", "nas-1"]


@pytest.mark.django_db
def test_the_movement_reports_refuse_bad_filters_with_field_errors(admin):
    client = client_for(admin)
    for slug in ("churn", "plan-migrations", "traffic"):
        response = client.get(
            reverse("reports:report", args=[slug]), {"period": "custom", "start": "2026-05-01", "end": "2026-04-01"}
        )
        assert response.status_code == 400
        assert 'data-error="end"' in response.content.decode()
        export = client.get(reverse("reports:report_export", args=[slug]), {"format": "csv", "plan": "999999"})
        assert export.status_code == 400
