"""A NAS's card (its figures, charts' data, sessions, CoA failures, the silent flag), the NAS list's flags, the pool
list's use, and traffic by NAS and plan from the daily traffic."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing import actions as billing
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.network import actions as network
from abonent.network.accounting import START, AcctRecord, write_batch
from abonent.network.models import (
    CoaError,
    CoaReason,
    CoaRequest,
    CoaStatus,
    IpPool,
    NasHealth,
    NasSample,
    PoolUsage,
    Session,
    UsageDay,
)
from abonent.network.monitoring.traffic import traffic_report
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer(make_staff):
    client = Client()
    client.force_login(make_staff(Role.ENGINEER))
    return client


def start(nas, subscriber, *, unique="a", username="ivanov", started=None):
    write_batch(
        [
            AcctRecord(
                status=START,
                nas_id=nas.pk,
                event_time=started or clock.now(),
                unique_id=unique,
                acct_session_id=f"s-{unique}",
                username=username,
                subscriber_id=subscriber.pk,
                framed_ip="100.64.0.9",
            )
        ]
    )
    return Session.objects.get(nas=nas, unique_id=unique)


def chart_data(html: str) -> dict:
    return json.loads(html.split('<script id="nas-charts" type="application/json">', 1)[1].split("</script>", 1)[0])


# --- the card -------------------------------------------------------------------------------------------------


def test_the_card_shows_figures_charts_sessions_and_coa_failures(engineer, customer, make_nas):
    # Half past an hour: the two recent samples (5 and 10 minutes ago) share the hour of the weekly chart.
    at = clock.now().replace(minute=30, second=0, microsecond=0)
    with clock.travel_to(at):
        _the_card_shows_figures(engineer, customer, make_nas)


def _the_card_shows_figures(engineer, customer, make_nas):
    nas = make_nas()
    session = start(nas, customer)
    now = clock.now()
    for minutes_ago, sessions, octets_out in ((10, 3, 60_000_000), (5, 4, 30_000_000)):
        NasSample.objects.create(
            nas=nas,
            taken_at=now - dt.timedelta(minutes=minutes_ago),
            interval_seconds=300,
            open_sessions=sessions,
            output_octets=octets_out,
            input_octets=octets_out // 10,
            accepts=7,
            rejects=1,
        )
    NasSample.objects.create(nas=nas, taken_at=now - dt.timedelta(days=3), interval_seconds=300, open_sessions=9)
    network.queue_disconnect(customer.pk, reason=CoaReason.SUSPEND)
    CoaRequest.objects.update(
        status=CoaStatus.FAILED,
        last_error=CoaError.NO_ANSWER,
        error_detail="3",
        finished_at=now - dt.timedelta(hours=1),
    )
    NasHealth.objects.create(nas=nas, sampled_at=now, open_sessions=1, last_accounting_at=now - dt.timedelta(minutes=1))

    html = engineer.get(f"/staff/network/nas/{nas.pk}/").content.decode()

    assert re.search(r'id="nas-online">\s*1\s*<', html)
    assert "No answer from the NAS within 3 s." in html and re.search(r'id="nas-coa-failures">\s*1\s*<', html)
    assert "Download: <span" in html and "85.8\xa0MB" in html  # 90,000,000 bytes down over the last day, in human units
    assert f'href="/staff/subscribers/{customer.pk}/#panel-network"' in html and "100.64.0.9" in html
    assert f'href="/staff/network/nas/{nas.pk}/edit/"' in html  # the engineer may edit
    charts = chart_data(html)
    assert charts["day_sessions"]["series"][0]["values"] == [3, 4]
    # bit/s: 30 MB in 300 s is 800,000 bit/s down
    assert charts["day_traffic"]["series"][0]["values"] == [1_600_000, 800_000]
    assert sum(charts["week_sessions"]["series"][0]["values"]) == 9 + 4  # hourly highest: the recent two share an hour
    assert 'data-chart="nas-charts" data-chart-key="week_traffic"' in html
    assert "silent-nas" not in html
    assert session.pk


def test_the_card_and_the_list_flag_a_silent_nas(engineer, make_nas):
    nas = make_nas()
    make_nas(name="fine", ip_address="10.9.9.9")
    now = clock.now()
    NasHealth.objects.create(
        nas=nas, sampled_at=now, open_sessions=12, last_accounting_at=now - dt.timedelta(minutes=40)
    )

    card = engineer.get(f"/staff/network/nas/{nas.pk}/").content.decode()
    listing = engineer.get("/staff/network/nas/").content.decode()

    assert 'id="silent-nas-alert"' in card and "Flagged after 15 minutes without accounting" in card
    assert 'id="silent-nas-alert"' in listing
    row = listing.split(f'data-nas="{nas.name}"', 1)[1].split("</tr>", 1)[0]
    fine = listing.split('data-nas="fine"', 1)[1].split("</tr>", 1)[0]
    assert "silent-nas" in row and "silent-nas" not in fine


def test_support_sees_the_card_without_the_edit_button(make_staff, make_nas):
    client = Client()
    client.force_login(make_staff(Role.SUPPORT))
    nas = make_nas()

    html = client.get(f"/staff/network/nas/{nas.pk}/").content.decode()

    assert "/edit/" not in html
    assert client.get(f"/staff/network/nas/{nas.pk}/edit/").status_code == 403


def test_saving_the_edit_page_returns_to_the_card(engineer, make_nas):
    nas = make_nas()
    form = {
        "name": "renamed",
        "ip_address": "127.0.0.1",
        "vendor": "mikrotik",
        "require_message_authenticator": "on",
        "coa_port": "3799",
        "interim_interval": "300",
        "debtor_address_list": "debtors",
        "is_active": "on",
        "secret": "",
    }

    response = engineer.post(f"/staff/network/nas/{nas.pk}/edit/", form)

    assert response["Location"] == f"/staff/network/nas/{nas.pk}/"
    nas.refresh_from_db()
    assert nas.name == "renamed"


def test_the_pool_list_shows_use_and_its_level(engineer, settings):
    settings.ABONENT_NETWORK_POOL_WARNING_PERCENT = 80
    settings.ABONENT_NETWORK_POOL_DANGER_PERCENT = 95
    now = clock.now()
    for name, network_text, used in (
        ("calm", "10.0.0.0/24", 10),
        ("busy", "10.0.1.0/24", 210),
        ("full", "10.0.2.0/24", 250),
    ):
        PoolUsage.objects.create(pool=IpPool.objects.create(name=name, network=network_text), sampled_at=now, used=used)
    IpPool.objects.create(name="unsampled", network="10.0.3.0/24")

    html = engineer.get("/staff/network/pools/").content.decode()

    assert 'data-pool="calm" data-level="ok"' in html
    assert 'data-pool="busy" data-level="warning"' in html and "82.7&nbsp;%" in html
    assert 'data-pool="full" data-level="danger"' in html and "nearly exhausted" in html
    assert 'data-pool="unsampled" data-level="ok"' in html
    assert html.index('data-pool="full"') < html.index('data-pool="busy"') < html.index('data-pool="calm"')


# --- traffic by NAS and plan ----------------------------------------------------------------------------------


TODAY = clock.today()
DAY = dt.timedelta(days=1)
GB = 1024**3


@pytest.fixture
def traffic_world(customer, make_subscriber, make_nas, admin, internet, plan):
    """Иванов (plan "Домашний 100") on the first NAS; Петров (plan "Игровой") moved from the first NAS to the second
    within the period; Сидоров without an internet plan, on the second; traffic over the last three days."""
    gamer = catalog.do_create_plan(
        code="gamer", name="Игровой", service=internet, monthly_fee=Decimal("900.00"), valid_from=dt.date(2020, 1, 1),
        acting_user=admin,
    )  # fmt: skip
    petrov = make_subscriber(last_name="Петров", phone="+79160000041")
    sidorov = make_subscriber(last_name="Сидоров", phone="+79160000042")
    billing.do_post_payment(petrov, amount="2000.00", channel="cash", external_id="c-p", acting_user=admin)
    billing.do_activate_subscription(petrov, plan=gamer, acting_user=admin)
    first, second = make_nas(), make_nas(name="second", ip_address="10.2.2.2")
    now = clock.now()
    start(first, customer, unique="i", started=now - 2 * DAY)
    start(first, petrov, unique="p1", username="petrov", started=now - 2 * DAY)
    start(second, petrov, unique="p2", username="petrov", started=now - DAY)
    start(second, sidorov, unique="s", username="sidorov", started=now - 2 * DAY)
    rows = [
        (customer, TODAY - 2 * DAY, 1 * GB, 10 * GB),
        (customer, TODAY - DAY, 1 * GB, 5 * GB),
        (petrov, TODAY - 2 * DAY, 2 * GB, 20 * GB),
        (petrov, TODAY, 0, 4 * GB),
        (sidorov, TODAY - DAY, 0, 1 * GB),
        (customer, TODAY - 3 * DAY, 99 * GB, 99 * GB),  # before the period
    ]
    for subscriber, day, octets_in, octets_out in rows:
        UsageDay.objects.update_or_create(
            subscriber=subscriber, day=day, defaults={"input_octets": octets_in, "output_octets": octets_out}
        )
    return {"first": first, "second": second}


def test_traffic_by_nas_and_plan_sums_the_daily_traffic_of_the_period(traffic_world):
    report = traffic_report(TODAY - 2 * DAY, TODAY)

    table = {(r.nas_name, r.plan_name): (r.subscribers, r.input_octets, r.output_octets) for r in report.rows}
    assert table == {
        ("nas-mikrotik", "Домашний 100"): (1, 2 * GB, 15 * GB),
        # Петров counts wholly on the NAS of his newest session by the period's end.
        ("second", "Игровой"): (1, 2 * GB, 24 * GB),
        ("second", ""): (1, 0, 1 * GB),
    }
    assert report.output_octets == 40 * GB
    assert report.days == [TODAY - 2 * DAY, TODAY - DAY, TODAY]
    first, second = traffic_world["first"].pk, traffic_world["second"].pk
    assert report.download_by_nas == {first: [10 * GB, 5 * GB, 0], second: [20 * GB, 1 * GB, 4 * GB]}


def test_the_traffic_page_shows_the_table_and_the_chart(engineer, traffic_world):
    period = f"date_from={(TODAY - 2 * DAY).isoformat()}&date_to={TODAY.isoformat()}"

    html = engineer.get(f"/staff/network/traffic/?{period}").content.decode()

    row = html.split('data-nas="second" data-plan="Игровой"', 1)[1].split("</tr>", 1)[0]
    assert "24.0\xa0GB" in row and "2.0\xa0GB" in row and "26.0\xa0GB" in row
    chart = json.loads(html.split('<script id="traffic-chart" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert [s["label"] for s in chart["series"]] == ["nas-mikrotik", "second"]
    assert len(chart["x"]) == 3


def test_the_traffic_page_refuses_a_period_backwards(engineer):
    response = engineer.get("/staff/network/traffic/?date_from=2026-06-03&date_to=2026-06-01")

    assert response.status_code == 422
    assert "The end of the period is before its start." in response.content.decode()


def test_the_traffic_page_defaults_to_the_last_week(engineer):
    response = engineer.get("/staff/network/traffic/")

    assert response.status_code == 200
    assert "No traffic in this period." in response.content.decode()


def test_a_cashier_cannot_see_the_traffic(make_staff):
    client = Client()
    client.force_login(make_staff(Role.CASHIER))

    assert client.get("/staff/network/traffic/").status_code == 403
