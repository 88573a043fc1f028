"""Access follows money: the worker pushes the debtor redirect on and off for sessions online."""

import pytest

from abonent.billing import actions as billing
from abonent.core import clock
from abonent.network import actions
from abonent.network.models import CoaKind, CoaReason, CoaRequest, DebtorMark, Session

pytestmark = pytest.mark.django_db


def online(customer, nas):
    now = clock.now()
    return Session.objects.create(
        nas=nas,
        unique_id="u1",
        acct_session_id="s1",
        subscriber=customer,
        username="ivanov",
        framed_ip="100.64.0.7",
        started_at=now,
        updated_at=now,
    )


def test_accel_ppp_session_gets_the_redirect_by_coa_and_loses_it_on_payment(customer, make_nas, admin):
    nas = make_nas("accel_ppp")
    online(customer, nas)
    assert actions.sync_debtor_redirects() == {"restricted": 0, "restored": 0, "requests": 0}

    billing.do_adjust_balance(customer, amount="-5000.00", reason="debt", acting_user=admin)
    assert actions.sync_debtor_redirects()["restricted"] == 1
    request = CoaRequest.objects.get()
    assert (request.kind, request.reason) == (CoaKind.COA, CoaReason.RESTRICT)
    assert request.attributes["L4-Redirect"] == [1]
    assert request.attributes["Acct-Session-Id"] == ["s1"]
    assert request.attributes["Filter-Id"] == ["102400/51200"]
    # Nothing changed: nothing more is sent.
    assert actions.sync_debtor_redirects()["requests"] == 0
    assert CoaRequest.objects.count() == 1

    billing.do_post_payment(customer, amount="6000.00", channel="cash", external_id="c-2", acting_user=admin)
    assert actions.sync_debtor_redirects()["restored"] == 1
    restore = CoaRequest.objects.latest("id")
    assert (restore.reason, restore.attributes["L4-Redirect"]) == (CoaReason.RESTORE, [0])
    assert not DebtorMark.objects.exists()


def test_mikrotik_session_is_disconnected_to_reauthenticate_into_the_redirect(customer, make_nas, admin):
    nas = make_nas("mikrotik")
    online(customer, nas)
    billing.do_adjust_balance(customer, amount="-5000.00", reason="debt", acting_user=admin)
    actions.sync_debtor_redirects()
    request = CoaRequest.objects.get()
    assert (request.kind, request.reason) == (CoaKind.DISCONNECT, CoaReason.RESTRICT)
    assert request.attributes == {
        "User-Name": ["ivanov"],
        "Acct-Session-Id": ["s1"],
        "Framed-IP-Address": ["100.64.0.7"],
    }


def test_a_debtor_offline_is_marked_but_nothing_is_sent(customer, make_nas, admin):
    make_nas()
    billing.do_adjust_balance(customer, amount="-5000.00", reason="debt", acting_user=admin)
    assert actions.sync_debtor_redirects() == {"restricted": 1, "restored": 0, "requests": 0}
    assert DebtorMark.objects.filter(subscriber=customer).exists()


@pytest.mark.parametrize(
    ("vendor", "kind", "redirect"), [("accel_ppp", CoaKind.COA, [1]), ("mikrotik", CoaKind.DISCONNECT, None)]
)
def test_a_plan_change_of_a_debtor_keeps_the_redirect(customer, make_nas, admin, vendor, kind, redirect):
    nas = make_nas(vendor)
    online(customer, nas)
    billing.do_adjust_balance(customer, amount="-5000.00", reason="debt", acting_user=admin)
    [request] = actions.queue_policy_coa(customer.pk, reason=CoaReason.PLAN_CHANGE)
    assert request.kind == kind
    assert request.attributes.get("L4-Redirect") == redirect
    # MikroTik's address list is not sent by CoA (unverified on RouterOS): the session is re-authenticated.
    assert "Mikrotik-Address-List" not in request.attributes
