"""What a branch-limited engineer sees of the network's figures: their branches' sessions counted, the shared
NAS listed, the whole network's series labelled so; and the traffic page's calendar bounds."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import translation

from abonent.core import clock
from abonent.dashboard.snapshot import do_take_snapshot
from abonent.network import actions as network
from abonent.network.accounting import START, AcctRecord, write_batch
from abonent.network.models import LoginKind
from abonent.network.monitoring.sampler import take_samples
from abonent.network.monitoring.traffic import traffic_report
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db


def start(nas, subscriber, unique, username):
    write_batch(
        [
            AcctRecord(
                status=START,
                nas_id=nas.pk,
                event_time=clock.now(),
                unique_id=unique,
                acct_session_id=f"s-{unique}",
                username=username,
                subscriber_id=subscriber.pk,
            )
        ]
    )


@pytest.fixture
def online(customer, make_subscriber, make_nas, admin, other_branch):
    """Тверь: Иванов on tver-nas. Клин: two subscribers on klin-nas. Sampled and a snapshot taken."""
    tver_nas, klin_nas = make_nas(name="tver-nas"), make_nas(name="klin-nas", ip_address="10.9.9.9")
    start(tver_nas, customer, "t1", "ivanov")
    for n in (1, 2):
        klin = make_subscriber(phone=f"+7916000007{n}", branch_obj=other_branch)
        network.do_create_login(
            klin, acting_user=admin, kind=LoginKind.PPPOE, username=f"klin{n}", password="pw-pw-pw-9"
        )
        start(klin_nas, klin, f"k{n}", f"klin{n}")
    take_samples()
    do_take_snapshot(clock.now())


def row_of(html: str, nas: str) -> str:
    return html.split(f'data-nas="{nas}"', 1)[1].split("</tr>", 1)[0]


def test_dashboard_counts_the_branchs_sessions_and_labels_the_whole_network_series(online, make_staff, branch):
    client = Client()
    client.force_login(make_staff(Role.ENGINEER, branches=[branch]))
    with translation.override("en"):
        response = client.get("/staff/dashboard/widgets/")
    html, board = response.content.decode(), response.context["board"]

    assert board.network.online == 1 and not board.network.whole_network
    assert {row.state.nas.name: row.online for row in board.network.nas} == {"tver-nas": 1, "klin-nas": 0}
    assert 'data-nas="klin-nas"' in html  # the equipment stays listed
    assert "Sessions online in the whole network, 24 hours" in html and "Whole network's peak, 24 hours" in html
    assert board.charts["online_day"]["series"][0]["label"] == "Sessions online, whole network"


def test_dashboard_of_a_user_without_a_branch_limit_counts_every_session(online, make_staff):
    client = Client()
    client.force_login(make_staff(Role.ENGINEER))
    with translation.override("en"):
        response = client.get("/staff/dashboard/widgets/")
    html, board = response.content.decode(), response.context["board"]

    assert board.network.online == 3 and board.network.whole_network
    assert {row.state.nas.name: row.online for row in board.network.nas} == {"tver-nas": 1, "klin-nas": 2}
    assert "whole network" not in html


def test_nas_list_counts_the_sessions_the_user_may_see(online, make_staff, branch):
    limited, everyone = Client(), Client()
    limited.force_login(make_staff(Role.ENGINEER, branches=[branch]))
    everyone.force_login(make_staff(Role.ENGINEER))

    def counts(client):
        html = client.get("/staff/network/nas/").content.decode()
        cell = lambda nas: row_of(html, nas).split('class="online-count">', 1)[1].split("<", 1)[0]  # noqa: E731
        return {nas: cell(nas) for nas in ("tver-nas", "klin-nas")}

    assert counts(limited) == {"tver-nas": "1", "klin-nas": "0"}
    assert counts(everyone) == {"tver-nas": "1", "klin-nas": "2"}


@pytest.mark.parametrize(
    ("field", "period"),
    [("date_from", "date_from=1999-12-31&date_to=2000-01-05"), ("date_to", "date_from=2026-01-01&date_to=9999-12-31")],
)
def test_traffic_page_refuses_days_outside_its_calendar_next_to_the_field(make_staff, field, period):
    client = Client()
    client.force_login(make_staff(Role.ENGINEER))
    with translation.override("en"):
        response = client.get(f"/staff/network/traffic/?{period}")

    assert response.status_code == 422
    assert response.context["report"] is None
    assert response.context["form"].errors[field][0].startswith("Choose a day between")


@pytest.mark.parametrize(("start", "end"), [(dt.date.max, dt.date.max), (dt.date.min, dt.date.min)])
def test_traffic_report_at_the_calendars_edges_is_an_empty_report(start, end):
    report = traffic_report(start, end)

    assert report.rows == [] and report.start <= report.end
