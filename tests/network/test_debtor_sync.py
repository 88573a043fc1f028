"""Access follows money: the worker pushes the debtor redirect on and off for sessions online, as dunning's access
state says (tests/network/states.py sets it as the dunning engine would)."""

import datetime as dt

import pytest
from django.utils import timezone

from abonent.billing import actions as billing
from abonent.billing.models import Subscription
from abonent.catalog import actions as catalog
from abonent.catalog.models import Plan
from abonent.core import clock
from abonent.network import access, actions
from abonent.network.models import AccessMark, CoaKind, CoaReason, CoaRequest, Login, LoginKind, Session, UsageDay

from .states import into_debt, pays

pytestmark = pytest.mark.django_db

IDENTITY = {"User-Name": ["ivanov"], "Acct-Session-Id": ["s1"], "Framed-IP-Address": ["100.64.0.7"]}


def online(customer, nas, login=None):
    now = clock.now()
    return Session.objects.create(
        nas=nas,
        unique_id="u1",
        acct_session_id="s1",
        login=login,
        subscriber=customer,
        username="ivanov",
        framed_ip="100.64.0.7",
        started_at=now,
        updated_at=now,
    )


def ipoe_login(customer, admin) -> Login:
    return actions.do_create_login(customer, acting_user=admin, kind=LoginKind.IPOE_MAC, username="aa:bb:cc:00:00:07")


def test_accel_ppp_ipoe_session_gets_the_redirect_by_coa_and_loses_it_on_payment(customer, make_nas, admin):
    nas = make_nas("accel_ppp")
    online(customer, nas, ipoe_login(customer, admin))
    assert access.sync_access_states() == {"restricted": 0, "denied": 0, "restored": 0, "requests": 0}

    into_debt(customer, admin)
    assert access.sync_access_states()["restricted"] == 1
    request = CoaRequest.objects.get()
    assert (request.kind, request.reason) == (CoaKind.COA, CoaReason.RESTRICT)
    assert request.attributes["L4-Redirect"] == [1]
    assert request.attributes["Acct-Session-Id"] == ["s1"]
    assert request.attributes["Filter-Id"] == ["102400/51200"]
    # Nothing changed: nothing more is sent.
    assert access.sync_access_states()["requests"] == 0
    assert CoaRequest.objects.count() == 1

    pays(customer, admin, external_id="c-2")
    assert access.sync_access_states()["restored"] == 1
    restore = CoaRequest.objects.latest("id")
    assert (restore.reason, restore.attributes["L4-Redirect"]) == (CoaReason.RESTORE, [0])
    assert not AccessMark.objects.exists()


def test_mikrotik_session_is_disconnected_to_reauthenticate_into_the_redirect(customer, make_nas, admin):
    nas = make_nas("mikrotik")
    online(customer, nas, customer.network_logins.get())
    into_debt(customer, admin)
    access.sync_access_states()
    request = CoaRequest.objects.get()
    assert (request.kind, request.reason) == (CoaKind.DISCONNECT, CoaReason.RESTRICT)
    assert request.attributes == IDENTITY


def test_accel_ppp_pppoe_session_is_disconnected_for_the_redirect_and_for_the_restore(customer, make_nas, admin):
    # accel-ppp applies a CoA's L4-Redirect to IPoE sessions only (ev_radius_coa in ctrl/ipoe/ipoe.c): a PPPoE
    # session redials into the debtor pool, and out of it.
    nas = make_nas("accel_ppp", debtor_pool="debtors")
    online(customer, nas, customer.network_logins.get())
    into_debt(customer, admin)
    access.sync_access_states()
    pays(customer, admin, external_id="c-2")
    access.sync_access_states()
    assert [(r.kind, r.reason, r.attributes) for r in CoaRequest.objects.order_by("pk")] == [
        (CoaKind.DISCONNECT, CoaReason.RESTRICT, IDENTITY),
        (CoaKind.DISCONNECT, CoaReason.RESTORE, IDENTITY),
    ]


def test_accel_ppp_session_bound_to_no_login_is_disconnected(customer, make_nas, admin):
    # Without a login the link kind is unknown; a Disconnect works for either kind.
    online(customer, make_nas("accel_ppp"))
    into_debt(customer, admin)
    access.sync_access_states()
    assert CoaRequest.objects.get().kind == CoaKind.DISCONNECT


def test_a_debtor_offline_is_marked_but_nothing_is_sent(customer, make_nas, admin):
    make_nas()
    into_debt(customer, admin)
    assert access.sync_access_states() == {"restricted": 1, "denied": 0, "restored": 0, "requests": 0}
    assert AccessMark.objects.filter(subscriber=customer).exists()


@pytest.mark.parametrize(
    ("vendor", "ipoe", "kind", "redirect"),
    [
        ("accel_ppp", True, CoaKind.COA, [1]),
        ("accel_ppp", False, CoaKind.DISCONNECT, None),
        ("mikrotik", False, CoaKind.DISCONNECT, None),
    ],
)
def test_a_plan_change_of_a_debtor_keeps_the_redirect(customer, make_nas, admin, vendor, ipoe, kind, redirect):
    nas = make_nas(vendor)
    online(customer, nas, ipoe_login(customer, admin) if ipoe else customer.network_logins.get())
    into_debt(customer, admin)
    [request] = actions.queue_policy_coa(customer.pk, reason=CoaReason.PLAN_CHANGE)
    assert request.kind == kind
    assert request.attributes.get("L4-Redirect") == redirect
    # MikroTik's address list is not sent by CoA (unverified on RouterOS): the session is re-authenticated.
    assert "Mikrotik-Address-List" not in request.attributes


# --- the redirect is switched with the speed now in force, decided as an Access-Request would be ------------

NIGHT = timezone.make_aware(dt.datetime(2025, 3, 10, 2, 0))  # local time (TIME_ZONE)


def _restrict_then_restore(customer, admin) -> list[list[str]]:
    into_debt(customer, admin)
    access.sync_access_states()
    pays(customer, admin, external_id="c-2")
    access.sync_access_states()
    requests = list(CoaRequest.objects.order_by("pk"))
    assert [(r.reason, r.attributes["L4-Redirect"]) for r in requests] == [
        (CoaReason.RESTRICT, [1]),
        (CoaReason.RESTORE, [0]),
    ]
    return [r.attributes["Filter-Id"] for r in requests]


def test_a_subscriber_paying_at_night_gets_the_night_speed(customer, make_nas, admin, plan):
    Plan.objects.filter(pk=plan.pk).update(
        night_download_kbps=204800, night_upload_kbps=204800, night_starts_at=dt.time(1), night_ends_at=dt.time(7)
    )
    online(customer, make_nas("accel_ppp"), ipoe_login(customer, admin))
    with clock.travel_to(NIGHT):
        assert _restrict_then_restore(customer, admin) == [["204800/204800"], ["204800/204800"]]
    # and by day the day speed
    CoaRequest.objects.all().delete()
    with clock.travel_to(NIGHT.replace(hour=12)):
        actions.queue_access_change(customer.pk, restricted=False)
    assert CoaRequest.objects.get().attributes["Filter-Id"] == ["102400/51200"]


def test_a_bought_turbo_is_kept_through_the_redirect_and_back(customer, make_nas, admin, plan):
    turbo = catalog.do_create_turbo(
        code="turbo-500", name="Турбо", download_kbps=512000, upload_kbps=256000, hours=3, price="50.00",
        acting_user=admin,
    )  # fmt: skip
    plan.turbos.add(turbo)
    online(customer, make_nas("accel_ppp"), ipoe_login(customer, admin))
    with clock.travel_to(NIGHT.replace(hour=12)):
        billing.do_activate_turbo(Subscription.objects.get(subscriber=customer), turbo=turbo, acting_user=admin)
        assert _restrict_then_restore(customer, admin) == [["512000/256000"], ["512000/256000"]]


def test_a_subscriber_over_the_quota_keeps_the_fup_speed(customer, make_nas, admin, plan):
    Plan.objects.filter(pk=plan.pk).update(included_bytes=10 * 10**9, fup_download_kbps=2048, fup_upload_kbps=1024)
    Login.objects.filter(subscriber=customer).update(subscription=Subscription.objects.get(subscriber=customer))
    online(customer, make_nas("accel_ppp"), ipoe_login(customer, admin))
    with clock.travel_to(NIGHT.replace(hour=12)):
        UsageDay.objects.create(subscriber=customer, day=clock.today(), input_octets=10**9, output_octets=10 * 10**9)
        assert _restrict_then_restore(customer, admin) == [["2048/1024"], ["2048/1024"]]


def test_a_restrict_not_yet_sent_when_the_subscriber_pays_is_never_sent(customer, make_nas, admin):
    from abonent.network import coa
    from abonent.network.models import CoaStatus

    nas = make_nas("accel_ppp")
    online(customer, nas, ipoe_login(customer, admin))
    into_debt(customer, admin)
    access.sync_access_states()
    pays(customer, admin, external_id="c-3")
    # The worker sends before the debtor sync runs again in the same minute.
    with clock.travel_to(clock.now() + dt.timedelta(seconds=1)):
        assert coa.send_due() == {}
    assert CoaRequest.objects.get().status == CoaStatus.SUPERSEDED
    assert access.sync_access_states()["restored"] == 1


def test_a_subscriber_whose_request_cannot_be_made_does_not_undo_the_others(
    customer, make_subscriber, make_nas, admin, monkeypatch
):
    nas = make_nas("mikrotik")
    online(customer, nas, customer.network_logins.get())
    other = make_subscriber()
    Session.objects.create(
        nas=nas,
        unique_id="u2",
        acct_session_id="s2",
        subscriber=other,
        username="petrov",
        started_at=clock.now(),
        updated_at=clock.now(),
    )
    for subscriber in (customer, other):
        into_debt(subscriber, admin)
    real = actions.queue_access_change

    def broken_for_the_customer(subscriber_id, **kwargs):
        if subscriber_id == customer.pk:
            raise RuntimeError("cannot render")
        return real(subscriber_id, **kwargs)

    monkeypatch.setattr(access, "queue_access_change", broken_for_the_customer)
    assert access.sync_access_states() == {"restricted": 2, "denied": 0, "restored": 0, "requests": 1}
    assert set(AccessMark.objects.values_list("subscriber_id", flat=True)) == {customer.pk, other.pk}
    assert list(CoaRequest.objects.values_list("subscriber_id", flat=True)) == [other.pk]
