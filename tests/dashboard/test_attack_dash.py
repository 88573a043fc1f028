"""Attack review of the dashboard (h-dash): the snapshot's figures against the ledger, and who sees what.

Tests marked ``# FAILS`` show a defect on the reviewed code; the others are defences that hold."""

import datetime as dt

import pytest
from django.test import Client

from abonent.core import clock
from abonent.dashboard.snapshot import compute_figures, do_take_snapshot
from abonent.payments.actions.refunds import do_cancel_payment
from abonent.staff.permissions import Role

from .conftest import NOW, TODAY, at

pytestmark = pytest.mark.django_db


def bucket_of(figures, branch) -> list[int]:
    return [count for count, _debt in figures["branches"][str(branch.pk)]["ageing"]]


# --- ageing against the ledger ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "bucket"), [(0, 0), (30, 0), (31, 1), (60, 1), (61, 2), (90, 2), (91, 3), (400, 3)])
def test_ageing_bucket_boundaries(make_subscriber, charge, branch, days, bucket):
    subscriber = make_subscriber()
    charge(subscriber, "100.00", TODAY - dt.timedelta(days=days))

    figures = compute_figures(NOW)

    expected = [0, 0, 0, 0]
    expected[bucket] = 1
    assert bucket_of(figures, branch) == expected


def test_paid_back_then_in_debt_again_counts_from_the_new_charge(make_subscriber, charge, pay, branch):
    subscriber = make_subscriber()
    charge(subscriber, "300.00", TODAY - dt.timedelta(days=200))
    pay(subscriber, "300.00", TODAY - dt.timedelta(days=150))
    charge(subscriber, "50.00", TODAY - dt.timedelta(days=45))

    figures = compute_figures(NOW)

    assert figures["branches"][str(branch.pk)]["ageing"][1] == [1, "50.00"]
    assert figures["branches"][str(branch.pk)]["receivables"] == "50.00"


def test_a_cancelled_payment_does_not_make_an_old_debt_look_fresh(make_subscriber, charge, receive, admin, branch):
    # FAILS: dashboard/snapshot.py _ageing_sql takes every negative posting on the account as a "charge" dated by
    # its transaction. Cancelling a payment posts a reversal dated today (billing/ledger.reverse), so a debt
    # whose unpaid charge is 150 days old lands in the 0-30 days bucket instead of "over 90 days".
    subscriber = make_subscriber()
    charge(subscriber, "500.00", TODAY - dt.timedelta(days=150))
    payment = receive(subscriber, "500.00", at(TODAY - dt.timedelta(days=140)))
    with clock.travel_to(at(TODAY - dt.timedelta(days=1))):
        do_cancel_payment(payment, acting_user=admin, reason="wrong account")

    figures = compute_figures(NOW)

    assert figures["branches"][str(branch.pk)]["receivables"] == "500.00"
    assert bucket_of(figures, branch) == [0, 0, 0, 1]


def test_zero_subscribers_gives_no_arpu_and_the_page_renders(make_staff):
    with clock.travel_to(NOW):
        do_take_snapshot(NOW)
        figures = compute_figures(NOW)
        client = Client()
        client.force_login(make_staff(Role.ADMIN))
        response = client.get("/staff/dashboard/widgets/")

    assert figures["arpu"]["month"] is None and figures["arpu"]["previous"] is None
    assert response.status_code == 200
    assert 'data-figure="arpu-previous">—<' in response.content.decode()


def test_snapshot_taken_twice_in_the_same_moment_keeps_the_page_working(make_subscriber, charge, make_staff):
    charge(make_subscriber(), "100.00", TODAY)
    with clock.travel_to(NOW):
        do_take_snapshot(NOW)
        do_take_snapshot(NOW)
        client = Client()
        client.force_login(make_staff(Role.ADMIN))
        response = client.get("/staff/dashboard/widgets/")

    assert response.status_code == 200
    assert str(response.context["board"].snapshot.receivables) == "100.00"


# --- who sees what ----------------------------------------------------------------------------------------------


@pytest.fixture
def world(make_subscriber, charge, other_branch):
    """Тверь owes 111, Клин owes 999 999; a snapshot taken."""
    charge(make_subscriber(phone="+79160000081"), "111.00", TODAY - dt.timedelta(days=3))
    charge(make_subscriber(phone="+79160000082", branch_obj=other_branch), "999999.00", TODAY - dt.timedelta(days=3))
    do_take_snapshot(NOW)


@pytest.mark.parametrize("role", [Role.CASHIER, Role.SUPPORT, Role.ENGINEER])
@pytest.mark.parametrize("url", ["/staff/dashboard/", "/staff/dashboard/widgets/"])
def test_roles_without_finance_see_no_receivables_or_revenue(world, make_staff, role, url):
    client = Client()
    client.force_login(make_staff(role))
    with clock.travel_to(NOW):
        html = client.get(url).content.decode()

    assert "widget-finance" not in html
    assert 'data-figure="receivables"' not in html and 'data-figure="revenue-month"' not in html


def test_branch_limited_operator_sees_only_their_branchs_receivables(world, make_staff, branch):
    client = Client()
    client.force_login(make_staff(Role.OPERATOR, branches=[branch]))
    with clock.travel_to(NOW):
        response = client.get("/staff/dashboard/widgets/")

    board = response.context["board"]
    assert str(board.snapshot.receivables) == "111.00"
    assert board.snapshot.debtors == 1
    assert 'data-figure="revenue-month"' not in response.content.decode()
    assert 'data-figure="arpu-previous"' not in response.content.decode()


def test_anonymous_polling_gets_no_figures():
    response = Client().get("/staff/dashboard/widgets/", headers={"HX-Request": "true"})

    assert response.status_code == 204 and "HX-Redirect" in response
