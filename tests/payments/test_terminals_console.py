"""Payment agents in the console (who may see and edit them, the secret shown once), the daily reconciliation
report (page, CSV, command) and the comparison with an agent's own register."""

import base64
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client

from abonent.billing import ledger
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.payments.actions.agents import do_create_agent, do_update_agent
from abonent.payments.models import Agent, Payment
from abonent.payments.models.agents import secret_matches
from abonent.payments.selectors.agents import agent_day_report, commission_of, compare_register, forget_agent
from abonent.staff.permissions import Role

D = Decimal


@pytest.fixture(autouse=True)
def _fresh_agent_cache():
    forget_agent()
    yield
    forget_agent()


def staff_client(make_staff, role):
    client = Client()
    client.force_login(make_staff(role))
    return client


FORM = {
    "code": "elecsnet",
    "name": "Элекснет",
    "inn": "7701234567",
    "contract": "№ 15 от 01.02.2026",
    "active": "on",
    "login": "elecsnet",
    "networks": "91.232.230.0/23, 79.142.16.0/20",
    "commission_percent": "1.5",
    "commission_fixed": "0",
    "commission_min": "5",
    "min_sum": "10",
    "max_sum": "15000",
    "active_accounts_only": "on",
    "time_zone": "Asia/Yekaterinburg",
}


@pytest.mark.django_db
def test_admin_adds_an_agent_and_sees_its_secret_once(make_staff):
    client = staff_client(make_staff, Role.ADMIN)
    response = client.post("/staff/payments/agents/new/", FORM)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    secret = body.split('<code id="agent-secret">')[1].split("</code>")[0]
    agent = Agent.objects.get(code="elecsnet")
    assert secret_matches(secret, agent.secret_hash) and secret not in agent.secret_hash
    assert agent.networks == "91.232.230.0/23\n79.142.16.0/20"
    assert agent.commission_percent == D("1.50") and agent.time_zone == "Asia/Yekaterinburg"
    assert "/pay/agents/elecsnet/" in body
    # The list and the edit page never show it again; the audit row does not hold it.
    for url in ("/staff/payments/agents/", f"/staff/payments/agents/{agent.pk}/"):
        page = client.get(url)
        assert page.status_code == 200 and secret not in page.content.decode()
    event = AuditEvent.objects.get(action="payments.agent_created")
    assert secret not in str(event.after) and agent.secret_hash not in str(event.after)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"networks": "10.0.0.0/33"}, "networks"),
        ({"networks": "not-a-net"}, "networks"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"min_sum": "0"}, "min_sum"),
        ({"min_sum": "100", "max_sum": "50"}, "max_sum"),
        ({"code": "Bad Code!"}, "code"),
        ({"commission_percent": "150"}, "commission_percent"),
        ({"commission_min": "-1"}, None),
    ],
)
def test_a_bad_agent_form_is_refused_and_nothing_is_written(make_staff, change, field):
    client = staff_client(make_staff, Role.ADMIN)
    response = client.post("/staff/payments/agents/new/", {**FORM, **change})
    assert response.status_code == 422
    if field:
        assert field in response.context["form"].errors
    assert Agent.objects.count() == 0


@pytest.mark.django_db
def test_a_taken_code_is_a_form_error(make_staff, admin):
    do_create_agent(code="elecsnet", name="E", login="e", acting_user=admin)
    response = staff_client(make_staff, Role.ADMIN).post("/staff/payments/agents/new/", FORM)
    assert response.status_code == 422 and "code" in response.context["form"].errors


@pytest.mark.django_db
def test_who_may_see_and_who_may_edit(make_staff, admin):
    agent, _secret = do_create_agent(code="qiwi", name="QIWI", login="q", acting_user=admin)
    cashier = staff_client(make_staff, Role.CASHIER)
    engineer = staff_client(make_staff, Role.ENGINEER)
    assert Client().get("/staff/payments/agents/").status_code == 302  # to the login page
    assert engineer.get("/staff/payments/agents/").status_code == 403
    assert cashier.get("/staff/payments/agents/").status_code == 200
    assert cashier.get(f"/staff/payments/agents/{agent.pk}/report/").status_code == 200
    assert cashier.get("/staff/payments/agents/new/").status_code == 403
    assert cashier.post(f"/staff/payments/agents/{agent.pk}/", {**FORM, "name": "X"}).status_code == 403
    before = Agent.objects.get().secret_hash
    assert cashier.post(f"/staff/payments/agents/{agent.pk}/secret/").status_code == 403
    assert Agent.objects.get().secret_hash == before and Agent.objects.get().name == "QIWI"


@pytest.mark.django_db
def test_admin_edits_an_agent_and_rotates_its_secret(make_staff, admin):
    agent, old = do_create_agent(code="qiwi", name="QIWI", login="q", acting_user=admin)
    client = staff_client(make_staff, Role.ADMIN)
    response = client.post(f"/staff/payments/agents/{agent.pk}/", {**FORM, "code": "ignored", "name": "QIWI Кошелёк"})
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.name == "QIWI Кошелёк" and agent.code == "qiwi" and agent.max_sum == D("15000.00")
    assert client.get(f"/staff/payments/agents/{agent.pk}/secret/").status_code == 405
    page = client.post(f"/staff/payments/agents/{agent.pk}/secret/")
    new = page.content.decode().split('<code id="agent-secret">')[1].split("</code>")[0]
    agent.refresh_from_db()
    assert secret_matches(new, agent.secret_hash) and not secret_matches(old, agent.secret_hash)
    assert AuditEvent.objects.filter(action="payments.agent_secret_rotated").count() == 1


def _pay(client, account, txn_id, amount, txn_date):
    return client.get(
        "/pay/agents/qiwi/",
        {"command": "pay", "txn_id": txn_id, "account": account, "sum": amount, "txn_date": txn_date},
    )


@pytest.fixture
def paid_day(admin, make_subscriber):
    """Three payments taken on 5 December 2026 (Moscow), one of 4 December that reached us on the 5th."""
    agent, secret = do_create_agent(
        code="qiwi",
        name="QIWI",
        login="qiwi",
        networks="127.0.0.1/32",
        commission_percent=D("2"),
        commission_min=D("3.00"),
        acting_user=admin,
    )
    client = Client(headers={"Authorization": "Basic " + base64.b64encode(f"qiwi:{secret}".encode()).decode()})
    one, two = make_subscriber(), make_subscriber(last_name="Петров")
    with clock.travel_to(dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)):
        _pay(client, one.account_number, "1", "1000.00", "20261205100000")
        _pay(client, two.account_number, "2", "100.00", "20261205235959")
        _pay(client, one.account_number, "3", "50.00", "20261205000000")
        _pay(client, two.account_number, "0", "500.00", "20261204235000")  # late
        _pay(client, two.account_number, "9", "70.00", "20261206000000")  # the next day
    return agent, one, two


@pytest.mark.django_db
def test_the_day_report_counts_commission_net_and_late_payments(paid_day):
    agent, _one, _two = paid_day
    report = agent_day_report(agent, dt.date(2026, 12, 5))
    assert [line.payment.external_id for line in report.lines] == ["3", "1", "2"]
    assert report.count == 3 and report.total == D("1150.00")
    # 2 % of 1000 = 20.00; 2 % of 100 = 2.00 → minimum 3.00; 2 % of 50 = 1.00 → 3.00.
    assert report.commission == D("26.00") and report.net == D("1124.00")
    assert [line.payment.external_id for line in report.late] == ["0"]
    assert commission_of(agent, D("1.00")) == D("1.00")  # never more than the payment
    assert ledger.verify() == []


@pytest.mark.django_db
def test_the_report_page_the_csv_and_the_command_agree(paid_day, make_staff):
    agent, one, _two = paid_day
    client = staff_client(make_staff, Role.CASHIER)
    page = client.get(f"/staff/payments/agents/{agent.pk}/report/", {"day": "2026-12-05"})
    assert page.status_code == 200
    assert page.context["report"].net == D("1124.00")
    csv_response = client.get(f"/staff/payments/agents/{agent.pk}/report.csv", {"day": "2026-12-05"})
    assert csv_response["Content-Type"] == "text/csv; charset=utf-8"
    text = csv_response.content.decode()
    assert text.splitlines()[0] == "txn_id;prv_txn;account;sum;commission;txn_date;status;late"
    assert f"1;{Payment.objects.get(external_id='1').pk};{one.account_number};1000.00;20.00;2026-12-05 10:00:00" in text
    assert "net;1124.00" in text
    # A malformed day falls back to today, not a 500.
    assert client.get(f"/staff/payments/agents/{agent.pk}/report/", {"day": "2026-13-45"}).status_code == 200

    out = io.StringIO()
    call_command("payments", "agent-report", "--agent", "qiwi", "--date", "2026-12-05", stdout=out)
    assert (
        "3 payments, sum 1150.00, commission 26.00, to transfer 1124.00; 1 of other days arrived late" in out.getvalue()
    )
    out = io.StringIO()
    call_command("payments", "agent-report", "--agent", "qiwi", "--date", "2026-12-05", "--csv", stdout=out)
    assert out.getvalue().splitlines()[0].startswith("txn_id;prv_txn")


@pytest.mark.django_db
def test_the_agents_register_compared_with_ours(paid_day, tmp_path):
    agent, one, two = paid_day
    register = "\n".join(
        [
            "txn_id;sum;account;date",
            f"1;1000.00;{one.account_number};20261205100000",  # matches
            f"2;100,00;{two.account_number};05.12.2026 23:59:59",  # matches (comma, other date format)
            f"4;300.00;{one.account_number};2026-12-05 11:00:00",  # we never got it
            f"0;500.00;{two.account_number};20261205000100",  # ours is dated the 4th: still matched by id
            "garbage line",
            f"5;1e3;{one.account_number};20261205110000",
        ]
    )
    result = compare_register(agent, register)
    assert result.days == [dt.date(2026, 12, 5)]
    assert sorted(row.txn_id for row, _p in result.matched) == ["0", "1", "2"]
    assert [row.txn_id for row in result.only_theirs] == ["4"]
    assert [p.external_id for p in result.only_ours] == ["3"]
    assert [n for n, _line in result.unreadable] == [6, 7]

    differ = compare_register(agent, f"1;999.00;{one.account_number};20261205100000")
    assert [(row.txn_id, p.amount) for row, p in differ.differ] == [("1", D("1000.00"))]

    path = tmp_path / "register.csv"
    path.write_text(register, encoding="utf-8")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("payments", "agent-register", "--agent", "qiwi", "--file", str(path), stdout=out)
    assert exit_info.value.code == 1
    assert "only in the register: line 4 txn_id=4" in out.getvalue()
    assert "only with us: txn_id=3" in out.getvalue()


@pytest.mark.django_db
def test_update_without_changes_writes_no_audit_row(admin):
    agent, _secret = do_create_agent(code="qiwi", name="QIWI", login="q", acting_user=admin)
    do_update_agent(agent, name="QIWI", acting_user=admin)
    assert AuditEvent.objects.filter(action="payments.agent_changed").count() == 0


@pytest.mark.django_db
def test_the_register_uploaded_in_the_console(paid_day, make_staff):
    from django.core.files.uploadedfile import SimpleUploadedFile

    agent, one, _two = paid_day
    client = staff_client(make_staff, Role.CASHIER)
    url = f"/staff/payments/agents/{agent.pk}/register/"
    register = f"txn_id;sum;account;date\n1;1000.00;{one.account_number};20261205100000\n=cmd;5;x;20261205100000\n"
    upload = SimpleUploadedFile("reestr.csv", register.encode("utf-8-sig"), content_type="text/csv")
    response = client.post(url, {"register": upload, "day": "2026-12-05"})
    assert response.status_code == 200
    comparison = response.context["comparison"]
    assert [p.external_id for p in comparison.only_ours] == ["2", "3"]
    assert [row.txn_id for row in comparison.only_theirs] == ["=cmd"]
    count = Payment.objects.count()
    # Not UTF-8, or no file: a form error, nothing written.
    bad = SimpleUploadedFile("reestr.csv", "1;10;счёт".encode("cp1251"), content_type="text/csv")
    assert client.post(url, {"register": bad}).status_code == 422
    assert client.post(url, {}).status_code == 422
    assert client.get(url).status_code == 405
    assert staff_client(make_staff, Role.ENGINEER).post(url, {}).status_code == 403
    assert Payment.objects.count() == count
