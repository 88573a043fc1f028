"""The dashboard as the console's home: what each role sees on it, with the figures of the data made here, and how
few queries it takes."""

import datetime as dt
import re

import pytest
from django.test import Client

from abonent.core import clock
from abonent.dashboard.models import Snapshot
from abonent.dashboard.snapshot import do_take_snapshot
from abonent.helpdesk.actions import do_change_ticket_status, do_open_ticket
from abonent.helpdesk.validation import TicketData
from abonent.network import actions as network
from abonent.network.models import CoaReason, CoaRequest, CoaStatus, IpPool, NasHealth, PoolUsage, Session
from abonent.staff.permissions import Role

from .conftest import NOW, TODAY, at

pytestmark = pytest.mark.django_db

LATER = NOW + dt.timedelta(minutes=1)


def text_of(html: str, marker: str) -> str:
    """The text of the element carrying ``marker`` (an attribute), tags stripped."""
    match = re.search(rf"<[^>]*{re.escape(marker)}[^>]*>(.*?)</", html, re.S)
    assert match, marker
    return re.sub(r"[ \t\n]+", " ", re.sub(r"<[^>]+>", "", match.group(1))).strip()


def section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    end = html.find("</section>", start)
    return html[start:end]


@pytest.fixture
def world(make_subscriber, other_branch, charge, pay, receive, make_staff, admin):
    """A NAS silent with sessions stranded, one reporting; a pool full; debtors in two branches; payments this
    month and today; open tickets of several ages. The snapshot taken at NOW."""
    cashier = make_staff(Role.CASHIER, username="kassa")
    tver = make_subscriber(last_name="Тверской", phone="+79160000021")
    klin = make_subscriber(last_name="Клинский", phone="+79160000022", branch_obj=other_branch)
    charge(tver, "700.00", dt.date(2026, 6, 1))  # 14 days of debt
    charge(klin, "250.00", dt.date(2026, 3, 1))  # over 90 days
    receive(tver, "400.00", at(dt.date(2026, 6, 5)))  # bank, this month
    receive(tver, "100.00", at(TODAY, 9), channel="cash", method="cash", acting_user=cashier)  # today
    receive(klin, "50.00", at(TODAY, 10))  # today, bank
    silent = network.do_create_nas(
        acting_user=admin, name="bras-silent", ip_address="10.0.0.1", secret="a-long-shared-secret-x", vendor="mikrotik"
    )
    fine = network.do_create_nas(
        acting_user=admin, name="bras-fine", ip_address="10.0.0.2", secret="a-long-shared-secret-y", vendor="mikrotik"
    )
    NasHealth.objects.create(
        nas=silent, sampled_at=NOW, open_sessions=0, last_accounting_at=NOW - dt.timedelta(hours=1), stranded_at=NOW
    )
    NasHealth.objects.create(
        nas=fine, sampled_at=NOW, open_sessions=42, last_accounting_at=NOW - dt.timedelta(seconds=30)
    )
    session = Session.objects.create(
        nas=fine,
        unique_id="u-1",
        acct_session_id="s-1",
        subscriber=tver,
        username="tver",
        started_at=NOW,
        updated_at=NOW,
    )
    network.queue_disconnect(tver.pk, reason=CoaReason.SUSPEND)
    CoaRequest.objects.filter(session=session).update(
        status=CoaStatus.FAILED, finished_at=NOW - dt.timedelta(minutes=5)
    )
    pool = IpPool.objects.create(name="main", network="100.64.0.0/28")  # 14 addresses, all in use
    PoolUsage.objects.create(pool=pool, sampled_at=NOW, used=14)
    for days_ago, subject in ((0, "Нет связи"), (2, "Медленно"), (10, "Роутер")):
        with clock.travel_to(NOW - dt.timedelta(days=days_ago)):
            do_open_ticket(
                tver,
                TicketData(category="other", subject=subject, text="Помогите"),
                source="console",
                acting_user=admin,
            )
    with clock.travel_to(NOW - dt.timedelta(days=20)):
        done = do_open_ticket(
            klin, TicketData(category="other", subject="Решено", text="Уже"), source="console", acting_user=admin
        )
        do_change_ticket_status(done, status="resolved", acting_user=admin)
    do_take_snapshot(NOW)
    return {"cashier": cashier, "tver": tver, "klin": klin}


def page_of(client, path="/staff/dashboard/") -> str:
    with clock.travel_to(LATER):
        response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_the_console_root_and_the_brand_lead_to_the_dashboard(client_of):
    client, _user = client_of(Role.OPERATOR)

    assert client.get("/")["Location"] == "/staff/dashboard/"
    assert 'class="navbar-brand fw-semibold" href="/staff/dashboard/"' in page_of(client)


def test_staff_land_on_the_dashboard_after_signing_in(make_staff):
    make_staff(Role.CASHIER, username="olga", password="s3cret-pass!")

    response = Client().post("/staff/", {"username": "olga", "password": "s3cret-pass!"})

    assert response.status_code == 302 and response["Location"] == "/staff/dashboard/"


def test_a_cashier_sees_payments_by_channel_and_own_cash_not_receivables_nor_the_network(world):
    client = Client()
    client.force_login(world["cashier"])

    html = page_of(client)

    assert 'id="widget-payments"' in html and 'id="widget-cash"' in html
    assert 'id="widget-finance"' not in html and 'data-figure="receivables"' not in html
    assert 'id="widget-network"' not in html
    payments = section(html, "widget-payments")
    assert text_of(payments, 'data-figure="payments-today"') == "150.00\xa0₽"
    assert "Cash desk" in payments and "Bank transfers" in payments
    # This month: 400 of 5 June from the snapshot and today's 150 live.
    assert text_of(payments, 'data-figure="payments-month"') == "550.00\xa0₽"
    assert text_of(html, 'data-figure="cash-payments"') == "100.00\xa0₽"
    assert text_of(html, 'data-figure="cash-net"') == "100.00\xa0₽"


def test_payments_recorded_after_the_snapshot_are_counted_live(client_of, world, receive):
    client, _user = client_of(Role.OPERATOR)
    receive(world["klin"], "25.00", NOW + dt.timedelta(seconds=30))  # after the snapshot of NOW

    payments = section(page_of(client), "widget-payments")

    assert text_of(payments, 'data-figure="payments-today"') == "175.00\xa0₽"
    assert text_of(payments, 'data-figure="payments-month"') == "575.00\xa0₽"


def test_with_a_snapshot_of_another_day_today_is_counted_whole_and_live(client_of, world, receive):
    client, _user = client_of(Role.OPERATOR)

    with clock.travel_to(NOW + dt.timedelta(days=1)):
        receive(world["klin"], "10.00", NOW + dt.timedelta(days=1))
        html = client.get("/staff/dashboard/").content.decode()

    payments = section(html, "widget-payments")
    assert text_of(payments, 'data-figure="payments-today"') == "10.00\xa0₽"
    assert text_of(payments, 'data-figure="payments-month"') == "550.00\xa0₽"  # the snapshot's, as of its time
    assert 'id="snapshot-stale"' in html


def test_an_engineer_sees_nas_health_with_the_silent_nas_flagged_and_no_money(client_of, world):
    client, _user = client_of(Role.ENGINEER)

    html = page_of(client)

    network_widget = section(html, "widget-network")
    assert 'id="silent-nas-alert"' in network_widget and "bras-silent" in network_widget
    silent_row = network_widget.split('data-nas="bras-silent"', 1)[1].split("</tr>", 1)[0]
    fine_row = network_widget.split('data-nas="bras-fine"', 1)[1].split("</tr>", 1)[0]
    assert "silent-nas" in silent_row and "silent-nas" not in fine_row
    assert ">42<" in fine_row  # sessions online at the last sample
    assert text_of(fine_row, 'data-figure="coa-failures"') == "1"
    assert text_of(network_widget, 'data-figure="online"') == "42"
    assert 'data-pool="main" data-level="danger"' in network_widget and 'id="pools-alarm"' in network_widget
    assert 'id="widget-payments"' not in html and 'id="widget-finance"' not in html


def test_an_operator_sees_everything_with_the_numbers_of_the_data(client_of, world):
    client, _user = client_of(Role.OPERATOR)

    html = page_of(client)

    for widget in ("widget-network", "widget-payments", "widget-finance", "widget-tickets"):
        assert f'id="{widget}"' in html
    assert 'id="widget-cash"' not in html  # takes no payments
    finance = section(html, "widget-finance")
    # Тверской: 700 charged, 400 + 100 paid; Клинский: 250 charged, 50 paid (both before the snapshot).
    assert text_of(finance, 'data-figure="receivables"') == "400.00\xa0₽"
    assert "2 debtors" in finance
    ageing = finance.split('id="ageing"', 1)[1]
    assert re.search(r'data-bucket="0"><td>0–30 days</td><td class="text-end">1</td><td[^>]*>200.00', ageing)
    assert re.search(r'data-bucket="3"><td>over 90 days</td><td class="text-end">1</td><td[^>]*>200.00', ageing)
    assert text_of(finance, 'data-figure="revenue-month"') == "700.00\xa0₽"
    tickets = section(html, "widget-tickets")
    new_row = tickets.split('data-status="new"', 1)[1].split("</tr>", 1)[0]
    # Opened today, 2 days ago and 10 days ago; the resolved one is not open.
    assert re.findall(r">(\d+)</td>", new_row) == ["1", "1", "0", "1", "3"]


def test_a_branch_limited_operator_sees_only_their_branchs_debts_and_no_isp_revenue(client_of, world, other_branch):
    client, _user = client_of(Role.OPERATOR, branches=[other_branch])

    html = page_of(client)

    finance = section(html, "widget-finance")
    assert text_of(finance, 'data-figure="receivables"') == "200.00\xa0₽"
    assert 'id="revenue-whole-isp"' in finance and 'data-figure="revenue-month"' not in finance
    # Today's payments of their branch only: Клин's 50 by bank.
    assert text_of(section(html, "widget-payments"), 'data-figure="payments-today"') == "50.00\xa0₽"


def test_support_sees_the_network_and_payments_but_not_finance(client_of, world):
    client, _user = client_of(Role.SUPPORT)

    html = page_of(client)

    assert 'id="widget-network"' in html and 'id="widget-payments"' in html and 'id="widget-tickets"' in html
    assert 'id="widget-finance"' not in html


def test_the_page_says_how_old_the_totals_are_and_warns_when_the_worker_stopped(client_of, world):
    client, _user = client_of(Role.OPERATOR)

    fresh = page_of(client)
    with clock.travel_to(NOW + dt.timedelta(hours=2)):
        stale = client.get("/staff/dashboard/").content.decode()

    assert text_of(fresh, 'id="snapshot-as-of"') == "Totals as of 12:00."
    assert 'id="snapshot-stale"' not in fresh
    assert 'id="snapshot-stale"' in stale


def test_without_a_snapshot_the_page_says_when_the_totals_come(client_of, make_subscriber):
    client, _user = client_of(Role.OPERATOR)

    html = page_of(client)

    assert 'id="snapshot-missing"' in html and 'data-figure="receivables"' not in html
    assert Snapshot.objects.count() == 0


def test_the_widgets_reload_themselves_as_a_fragment(client_of, world):
    client, _user = client_of(Role.OPERATOR)

    page = page_of(client)
    fragment = page_of(client, "/staff/dashboard/widgets/")

    assert 'hx-get="/staff/dashboard/widgets/" hx-trigger="every 30s" hx-swap="outerHTML"' in page
    assert fragment.lstrip().startswith('<div id="dashboard"') and "<html" not in fragment
    assert 'data-chart="dashboard-charts"' in page and 'id="dashboard-charts"' in page
    assert "<script>" not in page and "onclick" not in page  # the Content-Security-Policy: data, not code


def test_a_signed_out_poll_sends_the_page_to_the_login(client):
    response = client.get("/staff/dashboard/widgets/")

    assert response.status_code == 204
    assert response["HX-Redirect"] == "/staff/?next=/staff/dashboard/"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.CASHIER, Role.ENGINEER])
def test_query_count_is_pinned_and_does_not_grow_with_the_data(
    client_of, world, admin, role, django_assert_max_num_queries
):
    client, _user = client_of(role)
    page_of(client)  # warm: content types, the session
    # Budget: session and user, branches, snapshot, NAS with health, CoA failures, CoA waiting, pools with use,
    # payments today, the cash desk (payments, by method, refunds: the cash report's own selector), tickets, the
    # SLA's counts, the open incidents.
    budget = {Role.ADMIN: 15, Role.CASHIER: 11, Role.ENGINEER: 11}[role]
    with django_assert_max_num_queries(budget):
        page_of(client)
    for n in range(5):
        network.do_create_nas(
            acting_user=admin,
            name=f"more-{n}",
            ip_address=f"10.9.0.{n + 1}",
            secret="a-long-shared-secret-z",
            vendor="mikrotik",
        )
        IpPool.objects.create(name=f"extra-{n}", network=f"100.65.{n}.0/24")

    with django_assert_max_num_queries(budget):
        page_of(client)


def test_the_tickets_widget_counts_the_sla_and_lists_open_incidents(client_of, world, admin):
    """Issue 18 on the dashboard: the SLA's overdue and escalated figures link to the list filtered the same way
    (and agree with it), and the open mass incidents are listed with their affected count."""
    from abonent.helpdesk.incidents.actions import do_open_incident
    from abonent.helpdesk.incidents.validation import IncidentData
    from abonent.helpdesk.selectors import SLA_OVERDUE, TicketFilters, filtered_tickets

    nas_id = Session.objects.get(subscriber=world["tver"]).nas_id
    with clock.travel_to(NOW):
        do_open_incident(
            IncidentData(
                title="Авария <b>на Тверской</b>",
                description="Чиним",
                kind="outage",
                starts_at=NOW - dt.timedelta(hours=1),
                nas_ids=[nas_id],
            ),
            acting_user=admin,
        )
    client, user = client_of(Role.ADMIN)

    page = page_of(client)

    with clock.travel_to(LATER):
        overdue = filtered_tickets(user, TicketFilters(sla=SLA_OVERDUE)).count()
    assert overdue >= 1  # the request opened ten days before has had no answer
    shown = re.search(r'data-figure="sla-overdue"[^>]*>([^<]+)</a>', page).group(1)
    assert shown == f"overdue: {overdue}"
    assert '?sla=overdue" data-figure="sla-overdue"' in page
    incidents = page.split('id="widget-incidents"')[1].split("</section>")[0]
    assert "Авария &lt;b&gt;на Тверской&lt;/b&gt;" in incidents and "affected: 1" in incidents
