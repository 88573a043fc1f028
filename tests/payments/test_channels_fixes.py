"""The fixes of the channels' attack review (test_attack_channels) do not open the doors they answer through."""

import base64
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from abonent.billing import ledger
from abonent.payments import actions
from abonent.payments.actions.agents import do_create_agent, do_update_agent
from abonent.payments.models import BankStatement, Payment, StatementLine
from abonent.payments.selectors.agents import forget_agent

from .statement_samples import cp1251, document, statement

D = Decimal
URL = "/pay/agents/qiwi/"


@pytest.fixture(autouse=True)
def _fresh_agent_cache():
    forget_agent()
    yield
    forget_agent()


@pytest.fixture
def agent_and_secret(admin):
    return do_create_agent(code="qiwi", name="QIWI", login="qiwi", networks="127.0.0.0/8", acting_user=admin)


@pytest.fixture
def terminal(agent_and_secret):
    token = base64.b64encode(f"qiwi:{agent_and_secret[1]}".encode()).decode()
    return Client(headers={"Authorization": f"Basic {token}"}, raise_request_exception=False)


def result(client, **params) -> str:
    return re.search(r"<result>(\d+)</result>", client.get(URL, params).content.decode())[1]


@pytest.mark.django_db
def test_a_new_pay_is_still_refused_by_the_limits_and_a_switched_off_agent(
    terminal, agent_and_secret, subscriber, admin
):
    agent, _secret = agent_and_secret
    account = subscriber.account_number
    assert result(terminal, command="pay", txn_id="1", account=account, sum="100.00") == "0"
    do_update_agent(agent, max_sum=D("50.00"), acting_user=admin)
    forget_agent()
    assert result(terminal, command="pay", txn_id="2", account=account, sum="100.00") == "242"
    # A repeat with another sum past the limit is not a fresh success either: the conflict answer (300).
    assert result(terminal, command="pay", txn_id="1", account=account, sum="900.00") == "300"
    do_update_agent(agent, active=False, acting_user=admin)
    forget_agent()
    assert result(terminal, command="pay", txn_id="3", account=account, sum="10.00") == "7"
    assert result(terminal, command="check", txn_id="1", account=account, sum="100.00") == "7"
    assert Payment.objects.count() == 1 and ledger.verify() == []


@pytest.mark.django_db
def test_a_statement_past_the_document_limit_is_refused_with_nothing_written(admin, make_subscriber, settings):
    settings.ABONENT_BANK_STATEMENT_MAX_DOCUMENTS = 2
    ivanov = make_subscriber()
    docs = [document(number=str(i), purpose=f"л/с {ivanov.account_number}") for i in range(3)]
    with pytest.raises(ValidationError) as caught:
        actions.do_import_statement(cp1251(statement(*docs)), acting_user=admin)
    assert caught.value.error_dict["file"][0].code == "statement_too_many_documents"
    assert not BankStatement.objects.exists() and not StatementLine.objects.exists()
    assert Payment.objects.count() == 0 and ledger.verify() == []
