"""The columns and filters other apps add to the subscriber list (issue 17): billing's balance and debtors filter,
network's online column and filter, and dunning's access state standing in for the green "Active" of a debtor."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse

from abonent.core import clock
from abonent.network import actions as network
from abonent.network.models import Session
from abonent.staff.permissions import Role
from tests.dunning.console_data import RESTRICTED_AT, bring_to, monthly_plan, paying_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(make_plan):
    return monthly_plan(make_plan)


@pytest.fixture
def crowd(make_subscriber, plan, admin, settings):
    """A debtor on the payment-page redirect, a subscriber with money and an open session, one closed."""
    settings.ABONENT_QUIET_HOURS = ""
    debtor = paying_subscriber(make_subscriber, plan, admin, last_name="Должников", phone="+79030000001")
    online = paying_subscriber(make_subscriber, plan, admin, last_name="Сетевой", phone="+79030000002")
    from abonent.billing import actions as billing

    with clock.travel_to(dt.date(2026, 11, 2)):
        billing.do_post_payment(online, amount="5000.00", channel="test", external_id=f"big-{online.pk}")
    bring_to(debtor, "restricted", admin)
    closed = make_subscriber(last_name="Уехавший", phone="+79030000003")
    from abonent.subscribers import actions

    actions.do_close_subscriber(closed, reason="переезд", acting_user=admin)
    nas = network.do_create_nas(
        acting_user=admin, name="nas-1", ip_address="127.0.0.1", secret="a-long-shared-secret", vendor="mikrotik"
    )
    moment = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    Session.objects.create(
        nas=nas,
        unique_id="old",
        acct_session_id="1",
        subscriber=online,
        username="net",
        framed_ip="100.64.0.9",
        status="closed",
        started_at=moment - dt.timedelta(days=1),
        updated_at=moment,
        stopped_at=moment,
    )
    Session.objects.create(
        nas=nas,
        unique_id="now",
        acct_session_id="2",
        subscriber=online,
        username="net",
        framed_ip="100.64.0.10",
        started_at=moment,
        updated_at=moment,
    )
    Session.objects.create(
        nas=nas,
        unique_id="was",
        acct_session_id="3",
        subscriber=debtor,
        username="debt",
        framed_ip="100.64.0.11",
        status="closed",
        started_at=moment - dt.timedelta(days=2),
        updated_at=moment,
        stopped_at=moment,
    )
    return {"debtor": debtor, "online": online, "closed": closed}


def rows(html: str) -> dict[str, str]:
    """Surname → the row's HTML, from its account cell on (the bulk actions' tick box before it left out)."""
    found = re.findall(
        r"<tr>\s*(?:<td class=\"bulk-check\">.*?</td>\s*)?(<td class=\"account-number\">.*?</tr>)", html, re.S
    )
    return {re.search(r'class="subscriber-link">(\w+)', row).group(1): row for row in found}


def listing(user, **params) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    with clock.travel_to(RESTRICTED_AT):
        response = client.get(reverse("subscribers:list"), params)
    assert response.status_code == 200
    return rows(response.content.decode())


def test_a_debtor_on_the_redirect_is_not_shown_as_active(crowd, operator):
    listed = listing(operator)

    debtor = listed["Должников"]
    assert "access-restricted" in debtor and "Restricted" in debtor
    assert "text-bg-success" not in debtor.split("</td>")[5]  # the status cell
    assert ">Active<" not in debtor
    assert "Closed" in listed["Уехавший"]


def test_the_balance_column_and_the_debtors_filter(crowd, operator):
    listed = listing(operator)
    assert "text-danger" in listed["Должников"] and "−600.00" in listed["Должников"].replace("-", "−")
    assert "4,400.00\xa0₽" in listed["Сетевой"]

    debtors = listing(operator, balance="debtors")
    paid_up = listing(operator, balance="paid_up")

    assert sorted(debtors) == ["Должников"]
    assert sorted(paid_up) == ["Сетевой", "Уехавший"]


def test_the_online_column_and_filter(crowd, operator):
    listed = listing(operator)
    assert "online-badge" in listed["Сетевой"] and "100.64.0.10" in listed["Сетевой"]
    assert "online-badge" not in listed["Должников"]

    assert sorted(listing(operator, online="online")) == ["Сетевой"]
    assert sorted(listing(operator, online="offline")) == ["Должников", "Уехавший"]


def test_columns_follow_permissions(crowd, make_staff):
    engineer = listing(make_staff(Role.ENGINEER))  # network and billing, no dunning
    cashier = listing(make_staff(Role.CASHIER))  # billing and dunning, no network

    assert "online-badge" in engineer["Сетевой"] and "access-badge" not in engineer["Должников"]
    assert "online-badge" not in cashier["Сетевой"] and "access-restricted" in cashier["Должников"]
    assert "₽" in cashier["Сетевой"]


def test_the_list_reads_the_columns_in_a_constant_number_of_queries(
    crowd, operator, make_subscriber, plan, admin, django_assert_max_num_queries
):
    listing(operator)
    client = Client()
    client.force_login(operator)
    with clock.travel_to(RESTRICTED_AT), django_assert_max_num_queries(20) as few:
        client.get(reverse("subscribers:list"))
    for index in range(5):
        paying_subscriber(make_subscriber, plan, admin, last_name=f"Ещё{index}", phone=f"+7903000010{index}")
    with clock.travel_to(RESTRICTED_AT), django_assert_max_num_queries(len(few.captured_queries)):
        html = client.get(reverse("subscribers:list")).content.decode()
    assert len(rows(html)) == 8
