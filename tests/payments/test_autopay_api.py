"""``/api/v1/subscribers/{id}/autopay``: read with billing view, set and turned off with subscription manage."""

import datetime as dt

import pytest

from abonent.core import clock
from abonent.payments import actions
from abonent.payments.models import AutopayPlan, NoticeKind, PaymentNotice
from abonent.payments.testing import fake_gateway
from abonent.staff.permissions import Role


@pytest.fixture
def method(subscriber):
    with fake_gateway():
        yield actions.do_link_method(
            subscriber,
            provider="fakepay",
            method_id="pm-1",
            method_type="bank_card",
            title="Bank card *4444",
            consent_text="I agree to autopay.",
            consented_at=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC),
            consent_source="portal",
        )


def url(subscriber) -> str:
    return f"/api/v1/subscribers/{subscriber.pk}/autopay"


@pytest.mark.django_db
def test_put_turns_autopay_on_get_reads_it_delete_turns_it_off(subscriber, method, api_of):
    api = api_of(Role.OPERATOR)
    empty = api.get(url(subscriber)).json()
    assert empty["autopay"] is None and empty["attempts"] == []
    assert empty["methods"][0]["title"] == "Bank card *4444" and empty["methods"][0]["type"] == "bank_card"
    assert empty["methods"][0]["consent_text"] == "I agree to autopay."

    body = {"method_id": method.pk, "mode": "day", "debit_day": 5, "max_amount": "3000.00"}
    response = api.put(url(subscriber), body)
    assert response.status_code == 200, response.content
    assert response.json()["enabled"] is True and response.json()["debit_day"] == 5
    assert response.json()["max_amount"] == "3000.00" and response.json()["min_amount"] == "100.00"
    assert api.put(url(subscriber), body).status_code == 200  # the same settings again: harmless
    assert AutopayPlan.objects.count() == 1

    state = api.get(url(subscriber)).json()
    assert state["autopay"]["method_id"] == method.pk and state["autopay"]["mode"] == "day"

    with clock.travel_to(dt.datetime(2027, 1, 3, 12)):
        response = api.delete(url(subscriber), {"reason": "by phone"})
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert response.json()["stop_reason"] == "by phone"
    assert PaymentNotice.objects.get().kind == NoticeKind.AUTOPAY_STOPPED


@pytest.mark.django_db
def test_a_refusal_is_a_422_with_the_field_and_its_code(subscriber, make_subscriber, method, api_of):
    api = api_of(Role.OPERATOR)

    def fields(body):
        response = api.put(url(subscriber), body)
        assert response.status_code == 422, response.content
        return {(f["field"], f["code"]) for f in response.json()["error"]["fields"]}

    assert fields({"method_id": method.pk, "mode": "day"}) == {("debit_day", "debit_day_invalid")}
    assert fields({"method_id": method.pk, "debit_day": 40}) == {("debit_day", "debit_day_invalid")}
    assert fields({"method_id": 999999, "debit_day": 5}) == {("method_id", "method_foreign")}
    assert ("mode", "literal_error") in fields({"method_id": method.pk, "mode": "weekly"})
    assert ("fixed_amount", "string_pattern_mismatch") in fields({"method_id": method.pk, "fixed_amount": "1e5"})
    assert ("fixed_amount", "string_pattern_mismatch") in fields({"method_id": method.pk, "fixed_amount": "５00"})
    other = make_subscriber(last_name="Петров")
    response = api.put(url(other), {"method_id": method.pk, "debit_day": 5})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0] == {
        "field": "method_id",
        "code": "method_foreign",
        "message": "Choose one of the subscriber's payment methods.",
    }
    assert AutopayPlan.objects.count() == 0


@pytest.mark.django_db
def test_access_cashier_reads_only_other_branch_not_found_no_token_401(
    subscriber, method, api_of, api_as, other_branch
):
    cashier = api_of(Role.CASHIER)
    assert cashier.get(url(subscriber)).status_code == 200
    response = cashier.put(url(subscriber), {"method_id": method.pk, "debit_day": 5})
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert cashier.delete(url(subscriber)).status_code == 403
    stranger = api_of(Role.OPERATOR, branches=[other_branch])
    assert stranger.get(url(subscriber)).status_code == 404
    assert stranger.put(url(subscriber), {"method_id": method.pk, "debit_day": 5}).status_code == 404
    assert api_as(None).get(url(subscriber)).status_code == 401
    assert AutopayPlan.objects.count() == 0
    # Turning off autopay that was never on: not found.
    assert api_of(Role.OPERATOR).delete(url(subscriber)).status_code == 404
