"""The issue's "must show", across apps: the seed article's record comes in from the old billing's XLSX and then
lives under its old account number 173829 everywhere a person or a machine types it — staff search, the
terminal ``pay`` protocol, a bank statement's purpose and the portal login — while the reconciliation report
shows the record unchanged."""

import base64
import re
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing import ledger
from abonent.billing.models import Subscription
from abonent.billing.selectors import get_balance
from abonent.imports import actions
from abonent.payments.actions.agents import do_create_agent
from abonent.payments.models import Payment
from abonent.payments.selectors.agents import forget_agent
from abonent.payments.statements.matching import match_line
from abonent.portal.identify import identify
from abonent.subscribers.models import Equipment, Subscriber
from abonent.subscribers.selectors import SubscriberFilters, search_subscribers

from .conftest import SEED, xlsx

pytestmark = pytest.mark.django_db
OPENING = Decimal("1234.56")


@pytest.fixture
def imported(configured, admin):
    forget_agent()
    job = configured(xlsx([SEED]))
    dry = actions.run_job(job, dry_run=True, acting_user=admin)
    done = actions.run_job(job, dry_run=False, acting_user=admin)
    yield dry, done, Subscriber.objects.get(legacy_account="173829")
    forget_agent()


def _terminal(admin) -> Client:
    _agent, secret = do_create_agent(code="qiwi", name="QIWI", login="qiwi", networks="127.0.0.0/8", acting_user=admin)
    token = base64.b64encode(f"qiwi:{secret}".encode()).decode()
    return Client(headers={"Authorization": f"Basic {token}"})


def _osmp(client: Client, **params) -> dict:
    text = client.get("/pay/agents/qiwi/", params).content.decode()
    return dict(re.findall(r"<(prv_txn|sum|result|comment)>(.*?)</\1>", text))


def test_the_record_is_unchanged_by_the_migration(imported):
    dry, done, subscriber = imported
    assert (
        dry.dry_run_report["balances"]
        == done.report["balances"]
        == {
            "old_total": "1234.56",
            "new_total": "1234.56",
            "difference": "0.00",
        }
    )
    assert subscriber.account_number != "173829" and subscriber.status == "active"
    subscription = Subscription.objects.get(subscriber=subscriber)
    assert (subscription.plan.name, subscription.status) == ("Интернет-100", "active")
    assert Equipment.objects.get(assignments__subscriber=subscriber).model == "GPON-ONT ZTE"
    assert get_balance(subscriber).balance == OPENING


def test_staff_search_and_the_portal_login_find_it_by_the_old_number(imported, admin):
    _dry, _done, subscriber = imported
    assert [s.pk for s in search_subscribers(admin, SubscriberFilters(query="173829")).results] == [subscriber.pk]
    assert identify("173829").subscriber == subscriber


def test_the_terminal_pays_the_old_number_once_into_that_account(imported, admin):
    _dry, _done, subscriber = imported
    terminal = _terminal(admin)

    assert _osmp(terminal, command="check", txn_id="9001", account="173829", sum="650")["result"] == "0"
    first = _osmp(terminal, command="pay", txn_id="9001", account="173829", sum="650.00")
    again = _osmp(terminal, command="pay", txn_id="9001", account="173829", sum="650.00")

    assert first["result"] == again["result"] == "0" and first["prv_txn"] == again["prv_txn"]
    assert Payment.objects.get().subscriber_id == subscriber.pk
    assert get_balance(subscriber).balance == OPENING + Decimal("650.00")
    assert ledger.verify() == []


def test_a_bank_transfer_naming_the_old_number_matches_it(imported):
    _dry, _done, subscriber = imported
    match = match_line("Оплата по л/с 173829 за интернет, НДС не облагается", "")
    assert match.subscriber == subscriber
