"""The finance pages besides receivables: billing runs with what they parked, the ledger's verification with
"verify now", the Finance menu, and who may see them."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult
from openpyxl import load_workbook

from abonent.billing import actions
from abonent.billing.models import BillingRunRecord, LedgerVerification
from abonent.billing.runs.verification import verify_and_record
from abonent.billing.testing import run_on
from abonent.core import clock
from abonent.staff.permissions import Role

D = Decimal
pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def runs(make_plan, make_subscriber, admin, other_branch):
    """Two runs: 1 February charges two subscriptions and parks two (one in another branch); 2 February nothing."""
    priced, future = make_plan("priced", "500.00"), make_plan("future", "500.00", valid_from=dt.date(2027, 1, 1))
    with clock.travel_to(dt.date(2027, 1, 1)):
        for i in range(2):
            actions.do_activate_subscription(make_subscriber(phone=f"+791600000{i}0"), plan=priced, acting_user=admin)
        here = actions.do_activate_subscription(make_subscriber(phone="+79160000099"), plan=future, acting_user=admin)
        far_subscriber = make_subscriber(phone="+79160000098", branch_obj=other_branch)
        far = actions.do_activate_subscription(far_subscriber, plan=future, acting_user=admin)
    type(here).objects.filter(pk__in=[here.pk, far.pk]).update(next_charge_on=dt.date(2026, 12, 1))
    run_on(dt.date(2027, 2, 1))
    run_on(dt.date(2027, 2, 2))
    first, second = BillingRunRecord.objects.order_by("pk")
    return {"first": first, "second": second, "here": here, "far": far}


def test_the_runs_list_shows_each_run_newest_first_and_exports(runs, operator):
    client = client_for(operator)
    html = client.get(reverse("reports:billing_runs")).content.decode()
    assert re.findall(r'<tr data-run="(\d+)"', html) == [str(runs["second"].pk), str(runs["first"].pk)]
    row = re.search(rf'<tr data-run="{runs["first"].pk}"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert "1,000.00" in row and "Finished" in row and re.findall(r">(\d+)</td>", row)[:3] == ["4", "2", "2"]

    body = b"".join(client.get(reverse("reports:billing_runs_export"), {"format": "csv"}).streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Started", "Finished", "Day billed", "Status"]
    assert [r[2] for r in rows[1:]] == ["02.02.2027", "01.02.2027"]
    assert rows[2][4:9] == ["4", "2", "1000,00", "2", "0"]
    response = client.get(reverse("reports:billing_runs_export"), {"format": "xlsx", "sort": "started"})
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert [r[2] for r in values[1:]] == [dt.datetime(2027, 2, 1), dt.datetime(2027, 2, 2)] and values[1][6] == 1000


def test_a_runs_page_lists_its_parked_subscriptions_within_the_users_branches(runs, operator, make_staff, branch):
    html = client_for(operator).get(reverse("reports:billing_run", args=[runs["first"].pk])).content.decode()
    assert 'data-reason="no_price"' in html and "The plan has no price for the period: <strong>2</strong>" in html
    parked = re.findall(r'<tr data-subscription="(\d+)"', html)
    assert sorted(parked) == sorted([str(runs["here"].pk), str(runs["far"].pk)])
    card = reverse("subscribers:card", args=[runs["here"].subscriber_id])
    assert f'href="{card}"' in html and "has no price on 2026-12-01" in html
    limited = client_for(make_staff(Role.OPERATOR, branches=[branch]))
    html = limited.get(reverse("reports:billing_run", args=[runs["first"].pk])).content.decode()
    assert re.findall(r'<tr data-subscription="(\d+)"', html) == [str(runs["here"].pk)]
    assert client_for(operator).get(reverse("reports:billing_run", args=[999999])).status_code == 404


def test_a_failed_run_shows_its_error(runs, operator):
    BillingRunRecord.objects.filter(pk=runs["second"].pk).update(status="failed", error="RuntimeError: disk full")
    html = client_for(operator).get(reverse("reports:billing_run", args=[runs["second"].pk])).content.decode()
    assert 'id="run-error"' in html and "RuntimeError: disk full" in html


def test_the_ledger_page_shows_the_last_result_in_green_or_red_and_the_history(admin, operator):
    client = client_for(operator)
    assert 'data-status="none"' in client.get(reverse("reports:ledger")).content.decode()
    verify_and_record(source="scheduled")
    html = client.get(reverse("reports:ledger")).content.decode()
    assert 'border-success" id="ledger-latest" data-status="ok"' in html and "The ledger is consistent" in html
    # The operator sees the result but cannot ask for a verification.
    assert "Verify now" not in html
    assert client.post(reverse("reports:ledger_verify")).status_code == 403
    LedgerVerification.objects.create(
        status="problems",
        source="command",
        created_at=clock.now(),
        started_at=clock.now(),
        finished_at=clock.now(),
        seconds=1.5,
        problems=3,
        first_problems=["account 7 (subscriber:7): cached balance 5 but postings sum to 0"],
    )
    html = client.get(reverse("reports:ledger")).content.decode()
    assert 'border-danger" id="ledger-latest" data-status="problems"' in html
    assert "found 3 problems" in html and "cached balance 5 but postings sum to 0" in html
    assert len(re.findall(r'<tr data-verification="\d+"', html)) == 2


def test_verify_now_queues_the_job_once_and_does_not_run_it_in_the_request(admin, django_capture_on_commit_callbacks):
    client = client_for(admin)
    assert "Verify now" in client.get(reverse("reports:ledger")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(reverse("reports:ledger_verify"), follow=True).content.decode()
        second = client.post(reverse("reports:ledger_verify"), follow=True).content.decode()
    assert "The verification is queued" in first and "queued or running already" in second
    [row] = LedgerVerification.objects.all()
    assert row.status == "queued" and row.requested_by == admin and row.started_at is None
    assert DBTaskResult.objects.filter(task_path__endswith="verify_ledger").count() == 1
    assert 'id="ledger-pending"' in second and "disabled" in second


def test_the_finance_menu_and_who_sees_the_pages(make_staff, admin):
    pages = [reverse("reports:receivables"), reverse("reports:billing_runs"), reverse("reports:ledger")]
    for role in (Role.CASHIER, Role.SUPPORT, Role.ENGINEER):
        client = client_for(make_staff(role))
        for url in pages:
            assert client.get(url).status_code == 403, (role, url)
    cashier_menu = client_for(make_staff(Role.CASHIER)).get(reverse("subscribers:list")).content.decode()
    menu = re.search(r'id="nav-finance">(.*?)</ul>', cashier_menu, re.S)
    assert reverse("payments:journal") in menu.group(1) and reverse("payments:suspense") in menu.group(1)
    assert reverse("reports:receivables") not in cashier_menu
    admin_menu = client_for(admin).get(reverse("subscribers:list")).content.decode()
    for url in [*pages, reverse("payments:journal"), reverse("payments:cash_reports")]:
        assert f'href="{url}"' in admin_menu
    engineer_menu = client_for(make_staff(Role.ENGINEER)).get(reverse("subscribers:list")).content.decode()
    assert 'id="nav-finance"' not in engineer_menu
