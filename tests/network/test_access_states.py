"""The network side of dunning: RADIUS answers by the subscriber's access state, and the NAS are told when it
changes (the periodic sync and the ``dunning.states_changed`` handler). The states are set here as the dunning
engine would set them (tests/network/states.py)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from django.db import connection, transaction
from django_tasks_db.models import DBTaskResult

from abonent.core import clock, events, secrets
from abonent.dunning.models import AccessStateKind
from abonent.network import access, coa
from abonent.network import actions as network
from abonent.network import events as network_events
from abonent.network.models import (
    AccessMark,
    AccessMarkKind,
    AuthOutcome,
    CoaKind,
    CoaReason,
    CoaRequest,
    CoaStatus,
    Login,
    LoginKind,
    RejectReason,
    Session,
)
from abonent.network.policy import SET_PERIODS, PolicyStore
from abonent.network.radius import snapshot as snapshots
from abonent.network.radius.codec import parse_packet
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry, load_nas_table

from .packets import ACCEPT, NAS_ADDR, REJECT, pap_request
from .states import into_debt, pays, set_access_state

ADDRESS_LIST = (14988, 19)  # Mikrotik-Address-List: the debtor redirect on a MikroTik
DENIED = {
    AccessStateKind.SUSPENDED: RejectReason.SUSPENDED,
    AccessStateKind.BLOCKED: RejectReason.BLOCKED,
    AccessStateKind.TERMINATED: RejectReason.TERMINATED,
}
postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="two connections at once: the test database is PostgreSQL's"
)


def _server(nas) -> RadiusServer:
    store = PolicyStore()
    store.load_all()
    return RadiusServer(store=store, nas_table={"127.0.0.1": NasEntry.from_model(nas)})


def _online(subscriber, nas, *, name="s1", login=None) -> Session:
    now = clock.now()
    login = login or Login.objects.filter(subscriber=subscriber).first()
    return Session.objects.create(
        nas=nas, unique_id=f"u-{name}", acct_session_id=name, login=login, subscriber=subscriber,
        username=login.username if login else "", framed_ip="100.64.0.7", started_at=now, updated_at=now,
    )  # fmt: skip


def _requests() -> list[tuple[int, str, str]]:
    return list(CoaRequest.objects.order_by("pk").values_list("subscriber_id", "kind", "reason"))


# --- RADIUS: the Access-Request by state ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("state", [None, AccessStateKind.ACTIVE, AccessStateKind.WARNED])
def test_an_active_or_warned_subscriber_gets_plain_access(customer, nas_a, state):
    if state is not None:
        set_access_state(customer, state)
    server = _server(nas_a)
    reply = server.handle_auth(pap_request(1, "ivanov", "s3cret-pw"), NAS_ADDR)
    assert reply[0] == ACCEPT
    assert ADDRESS_LIST not in parse_packet(reply).attributes
    assert server.attempts == []  # a plain accept is not logged


@pytest.mark.django_db
def test_a_restricted_subscriber_is_let_in_to_the_payment_page(customer, nas_a):
    set_access_state(customer, AccessStateKind.RESTRICTED)
    server = _server(nas_a)
    reply = server.handle_auth(pap_request(1, "ivanov", "s3cret-pw"), NAS_ADDR)
    assert reply[0] == ACCEPT
    assert parse_packet(reply).attributes[ADDRESS_LIST] == [b"debtors"]
    assert [(a.outcome, a.reason) for a in server.attempts] == [(AuthOutcome.RESTRICTED, "")]


@pytest.mark.django_db
@pytest.mark.parametrize(("state", "reason"), DENIED.items())
def test_a_denied_subscriber_is_rejected_with_the_states_reason(customer, nas_a, state, reason):
    set_access_state(customer, state)
    server = _server(nas_a)
    assert server.handle_auth(pap_request(1, "ivanov", "s3cret-pw"), NAS_ADDR)[0] == REJECT
    assert [(a.outcome, a.reason, a.subscriber_id) for a in server.attempts] == [
        (AuthOutcome.REJECT, reason, customer.pk)
    ]
    assert server.stats.counters[(nas_a.name, "rejects_" + reason)] == 1


@pytest.mark.django_db
def test_a_wrong_password_of_a_suspended_login_is_only_a_wrong_password(customer, nas_a):
    # The state is told only to who knows the password: otherwise a guess would learn the login exists (and owes).
    set_access_state(customer, AccessStateKind.SUSPENDED)
    server = _server(nas_a)
    assert server.handle_auth(pap_request(1, "ivanov", "a-guess"), NAS_ADDR)[0] == REJECT
    assert [a.reason for a in server.attempts] == [RejectReason.BAD_PASSWORD]


@pytest.mark.django_db
def test_the_running_store_rereads_the_states_on_the_sets_cadence(customer, nas_a, monkeypatch):
    store = PolicyStore()
    store.load_all()
    policy = store.find("ivanov")
    now = clock.now()
    set_access_state(customer, AccessStateKind.BLOCKED)
    store.refresh_sets(force=False)  # not due yet: the states read at load stand
    assert store.decide(policy, now).accept
    later = time.monotonic() + SET_PERIODS["debtors"] + 1
    monkeypatch.setattr("abonent.network.policy.time.monotonic", lambda: later)
    store.refresh_sets(force=False)
    assert store.decide(policy, now).reason == RejectReason.BLOCKED
    # and a store of one subscriber (rlm_rest, a CoA being rendered) reads the same
    assert PolicyStore.for_subscribers([customer.pk]).decide(policy, now).reason == RejectReason.BLOCKED
    set_access_state(customer, AccessStateKind.RESTRICTED)
    decision = PolicyStore.for_subscribers([customer.pk]).decide(policy, now)
    assert (decision.accept, decision.restricted) == (True, True)


@pytest.mark.django_db
def test_a_frozen_subscription_is_still_rejected_as_frozen_before_any_access_state(customer, nas_a):
    from abonent.billing.models import Subscription, SubscriptionStatus

    Subscription.objects.filter(subscriber=customer).update(status=SubscriptionStatus.FROZEN)
    set_access_state(customer, AccessStateKind.BLOCKED)
    server = _server(nas_a)
    server.handle_auth(pap_request(1, "ivanov", "s3cret-pw"), NAS_ADDR)
    assert [a.reason for a in server.attempts] == [RejectReason.FROZEN]


# --- the outage snapshot ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_snapshot_carries_the_denied_and_one_from_before_still_reads(customer, make_subscriber, nas_a, tmp_path):
    other = make_subscriber(last_name="Петров", phone="+79161234568")
    set_access_state(customer, AccessStateKind.SUSPENDED)
    set_access_state(other, AccessStateKind.RESTRICTED)
    store = PolicyStore()
    store.load_all()
    path = tmp_path / "policy.json"
    snapshots.save(path, store, load_nas_table())

    restored = PolicyStore()
    assert snapshots.restore(path, restored) is not None
    assert (restored.denied, restored.debtors) == ({customer.pk: "suspended"}, {other.pk})
    assert restored.decide(restored.find("ivanov"), clock.now()).reason == RejectReason.SUSPENDED

    # A snapshot written by the version before (no "denied") is still read, denying nobody.
    head, body = path.read_bytes().split(b"\n", 1)
    state = json.loads(body)
    del state["denied"]
    body = json.dumps(state).encode()
    header = json.loads(head) | {"length": len(body), "mac": secrets.sign(body)}
    path.write_bytes(json.dumps(header).encode() + b"\n" + body)
    older = PolicyStore()
    assert snapshots.restore(path, older) is not None
    assert (older.denied, older.debtors) == ({}, {other.pk})
    assert older.decide(older.find("ivanov"), clock.now()).accept


# --- telling the NAS ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_suspension_disconnects_and_the_payment_restores(customer, make_nas, admin):
    nas = make_nas("mikrotik")
    _online(customer, nas)
    into_debt(customer, admin)
    assert access.sync_access_states() == {"restricted": 1, "denied": 0, "restored": 0, "requests": 1}
    # restricted for the grace days, then suspended: a Disconnect, and its next Access-Request is rejected
    set_access_state(customer, AccessStateKind.SUSPENDED)
    assert access.sync_access_states() == {"restricted": 0, "denied": 1, "restored": 0, "requests": 1}
    assert AccessMark.objects.get().told == AccessMarkKind.DENIED
    # nothing changed: nothing more is sent
    assert access.sync_access_states() == {"restricted": 0, "denied": 0, "restored": 0, "requests": 0}
    pays(customer, admin)
    assert access.sync_access_states() == {"restricted": 0, "denied": 0, "restored": 1, "requests": 1}
    assert _requests() == [
        (customer.pk, CoaKind.DISCONNECT, CoaReason.RESTRICT),  # MikroTik: re-authenticate into the redirect
        (customer.pk, CoaKind.DISCONNECT, CoaReason.SUSPEND),
        (customer.pk, CoaKind.DISCONNECT, CoaReason.RESTORE),
    ]
    assert not AccessMark.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("state", DENIED)
def test_an_ipoe_session_is_disconnected_on_denial_and_gets_a_restore_coa(customer, make_nas, admin, state):
    nas = make_nas("accel_ppp")
    ipoe = network.do_create_login(customer, acting_user=admin, kind=LoginKind.IPOE_MAC, username="aa:bb:cc:00:00:07")
    _online(customer, nas, login=ipoe)
    set_access_state(customer, state)
    access.sync_access_states()
    pays(customer, admin)
    access.sync_access_states()
    requests = list(CoaRequest.objects.order_by("pk"))
    assert [(r.kind, r.reason) for r in requests] == [
        (CoaKind.DISCONNECT, CoaReason.SUSPEND),
        (CoaKind.COA, CoaReason.RESTORE),  # a session still there (the Disconnect failed) gets access back live
    ]
    assert requests[1].attributes["L4-Redirect"] == [0]


@pytest.mark.django_db
def test_a_sync_for_some_subscribers_leaves_the_others_to_theirs(customer, make_subscriber, make_nas, admin):
    nas = make_nas("mikrotik")
    other = make_subscriber(last_name="Петров", phone="+79161234568")
    _online(customer, nas)
    _online(other, nas, name="s2")
    set_access_state(customer, AccessStateKind.BLOCKED)
    set_access_state(other, AccessStateKind.RESTRICTED)
    assert access.sync_access_states([customer.pk])["denied"] == 1
    assert _requests() == [(customer.pk, CoaKind.DISCONNECT, CoaReason.SUSPEND)]
    # the minute's run over everyone does the rest, and only the rest
    assert access.sync_access_states() == {"restricted": 1, "denied": 0, "restored": 0, "requests": 1}
    assert access.sync_access_states([]) == {"restricted": 0, "denied": 0, "restored": 0, "requests": 0}


@pytest.mark.django_db
def test_a_denied_subscriber_offline_is_marked_and_sent_nothing(customer, make_nas):
    make_nas()
    set_access_state(customer, AccessStateKind.TERMINATED)
    assert access.sync_access_states() == {"restricted": 0, "denied": 1, "restored": 0, "requests": 0}
    assert AccessMark.objects.get(subscriber=customer).told == AccessMarkKind.DENIED


@pytest.mark.django_db
def test_the_states_changed_event_pushes_at_once(customer, make_nas, admin, django_capture_on_commit_callbacks):
    nas = make_nas("mikrotik")
    _online(customer, nas)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        set_access_state(customer, AccessStateKind.SUSPENDED)
        events.emit("dunning.states_changed", subscriber_ids=[customer.pk])
        assert not CoaRequest.objects.exists()  # after the commit, not before
    assert _requests() == [(customer.pk, CoaKind.DISCONNECT, CoaReason.SUSPEND)]
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        pays(customer, admin)
        events.emit("dunning.states_changed", subscriber_ids=[customer.pk])
    assert _requests()[-1] == (customer.pk, CoaKind.DISCONNECT, CoaReason.RESTORE)
    assert not AccessMark.objects.exists()


# --- the CoA queue: a restrict no longer wanted is not sent ----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("now", "superseded"),
    [(AccessStateKind.RESTRICTED, False), (AccessStateKind.ACTIVE, True), (AccessStateKind.SUSPENDED, True)],
)
def test_a_restrict_is_superseded_once_the_subscriber_is_no_longer_redirected(customer, make_nas, now, superseded):
    _online(customer, make_nas("mikrotik"))
    set_access_state(customer, AccessStateKind.RESTRICTED)
    [restrict] = network.queue_access_change(customer.pk, restricted=True)
    [speed] = network.queue_policy_coa(customer.pk, reason=CoaReason.PLAN_CHANGE)
    set_access_state(customer, now)
    assert coa._paid_since([restrict, speed]) == ([restrict] if superseded else [])


@pytest.mark.django_db
def test_a_restrict_waiting_when_the_subscriber_is_suspended_is_never_sent(customer, make_nas, admin):
    _online(customer, make_nas("accel_ppp"))
    into_debt(customer, admin)
    access.sync_access_states()
    set_access_state(customer, AccessStateKind.SUSPENDED)
    with clock.travel_to(clock.now() + dt.timedelta(seconds=1)):
        assert coa.send_due() == {}  # the restrict is superseded unsent; the sync's Disconnect comes next
    assert CoaRequest.objects.get().status == CoaStatus.SUPERSEDED


# --- two syncs at once ----------------------------------------------------------------------------------------


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_syncs_at_once_tell_the_nas_once(customer, make_nas, admin):
    _online(customer, make_nas("mikrotik"))
    set_access_state(customer, AccessStateKind.SUSPENDED)
    first_done = threading.Event()
    results = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = access.sync_access_states()
                first_done.set()
                time.sleep(0.5)  # the second starts meanwhile, and must see what this one commits
        finally:
            connection.close()

    def second() -> None:
        first_done.wait(5)
        try:
            results["second"] = access.sync_access_states(lock_wait=5)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert results["first"]["requests"] == 1
    assert results["second"] == {"restricted": 0, "denied": 0, "restored": 0, "requests": 0}
    assert _requests() == [(customer.pk, CoaKind.DISCONNECT, CoaReason.SUSPEND)]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_event_hands_over_to_the_worker_when_a_long_sync_holds_the_turn(customer, make_nas, monkeypatch):
    monkeypatch.setattr(network_events, "STATES_CHANGED_LOCK_WAIT_S", 0.2)
    _online(customer, make_nas("mikrotik"))
    holding, release = threading.Event(), threading.Event()

    def long_sync() -> None:
        try:
            with transaction.atomic():
                access.sync_access_states()
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=long_sync)
    thread.start()
    try:
        assert holding.wait(10)
        set_access_state(customer, AccessStateKind.BLOCKED)
        events.emit("dunning.states_changed", subscriber_ids=[customer.pk])  # autocommit: dispatched at once
        assert not CoaRequest.objects.exists()
        [job] = DBTaskResult.objects.filter(task_path__endswith="sync_access_states")
        assert job.args_kwargs["kwargs"] == {"subscriber_ids": [customer.pk]}
    finally:
        release.set()
        thread.join(15)


# --- the bulk-message audience ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_nas_audience_is_who_uses_that_nas_now(customer, make_subscriber, nas_a, nas_b):
    from abonent.notifications.audiences import audience

    recent, gone, elsewhere = (make_subscriber(phone=f"+7916123456{n}") for n in (1, 2, 3))
    now = clock.now()

    def session(subscriber, nas, name, *, stopped_days_ago=None):
        kwargs = {}
        if stopped_days_ago is not None:
            stopped = now - dt.timedelta(days=stopped_days_ago)
            kwargs = {"status": "closed", "stopped_at": stopped, "updated_at": stopped}
        Session.objects.create(
            nas=nas, unique_id=name, acct_session_id=name, subscriber=subscriber, username=name,
            started_at=now - dt.timedelta(days=60), **{"updated_at": now, **kwargs},
        )  # fmt: skip

    session(customer, nas_a, "open-1")
    session(customer, nas_a, "open-2")  # two sessions, one subscriber
    session(recent, nas_a, "closed-recently", stopped_days_ago=29)
    session(gone, nas_a, "closed-long-ago", stopped_days_ago=31)
    session(elsewhere, nas_b, "other-nas")
    nas = audience("nas")
    assert nas is not None and (nas_a.pk, nas_a.name) in nas.choices()
    ids = nas.subscriber_ids(nas_a.pk)
    assert sorted(ids) == sorted([customer.pk, recent.pk])
    assert ids.count() == 2
