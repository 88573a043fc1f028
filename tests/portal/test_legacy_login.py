"""The portal login takes the account number on the old system's receipts (docs/adr/0019) as it takes ours."""

import json

import pytest
from django.test import Client

from abonent.portal import actions
from abonent.portal.identify import identify
from abonent.subscribers import actions as subscribers

PASSWORD = "correct-horse-42"


@pytest.fixture
def migrated(subscriber, admin):
    subscribers.do_set_legacy_account(subscriber, "0173829", by=admin, reason="migration")
    actions.do_set_password(subscriber, PASSWORD, reason="test")
    return subscriber


def test_the_old_number_names_the_subscriber_with_the_same_key_as_ours(migrated):
    assert identify("0173829").subscriber == migrated
    assert identify(" 017 38-29 ").subscriber == migrated  # spaces and dashes as on a receipt
    assert identify("0173829").key == identify(migrated.account_number).key == f"sub:{migrated.pk}"
    assert identify("173829").subscriber is None  # the leading zero is part of it
    assert identify("١٧٣٨٢٩").subscriber is None


def test_logging_in_with_the_old_number_gives_a_token(migrated, now):
    response = Client().post(
        "/api/v1/my/login", json.dumps({"login": "0173829", "password": PASSWORD}), content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["token"].startswith("abm_")
    wrong = Client().post(
        "/api/v1/my/login", json.dumps({"login": "173829", "password": PASSWORD}), content_type="application/json"
    )
    assert wrong.status_code == 422 and "token" not in wrong.json()  # as for any wrong login
