"""The simultaneous-use count the RADIUS server keeps in memory between re-reads of the database."""

import pytest

from abonent.core import clock
from abonent.network import actions as network
from abonent.network.accounting import unique_session_id
from abonent.network.models import Login, Session
from abonent.network.policy import PolicyStore

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_allowed(customer, admin):
    login = Login.objects.get(username="ivanov")
    network.do_update_login(login, acting_user=admin, simultaneous_use=2)
    return login


def _open(customer, nas, login, name):
    now = clock.now()
    Session.objects.create(
        nas=nas,
        unique_id=unique_session_id("ivanov", name, "127.0.0.1", "", "", ""),
        acct_session_id=name,
        login=login,
        subscriber=customer,
        username="ivanov",
        started_at=now,
        updated_at=now,
    )


def _store() -> PolicyStore:
    store = PolicyStore()
    store.load_all()
    store.refresh_sets()
    return store


def test_a_stop_at_the_limit_leaves_room_for_one_more_not_for_two(customer, make_nas, two_allowed):
    nas = make_nas()
    _open(customer, nas, two_allowed, "a")
    _open(customer, nas, two_allowed, "b")
    store = _store()
    assert two_allowed.pk in store.at_limit
    store.session_stopped(two_allowed.pk, "a")
    assert two_allowed.pk not in store.at_limit
    store.session_started(two_allowed.pk, "c")
    assert two_allowed.pk in store.at_limit  # b and c: the limit again


def test_the_same_stop_twice_frees_one_place_only(customer, make_nas, two_allowed):
    nas = make_nas()
    _open(customer, nas, two_allowed, "a")
    store = _store()
    store.session_started(two_allowed.pk, "b")
    assert two_allowed.pk in store.at_limit
    store.session_stopped(two_allowed.pk, "b")
    store.session_stopped(two_allowed.pk, "b")  # retransmitted with a new Acct-Delay-Time
    store.session_started(two_allowed.pk, "c")
    assert two_allowed.pk in store.at_limit  # a and c


def test_starts_seen_while_the_sets_are_read_are_kept(customer, make_nas, two_allowed, monkeypatch):
    from abonent.network import selectors

    nas = make_nas()
    store = _store()
    _open(customer, nas, two_allowed, "a")  # written since the last read
    read = selectors.session_limits

    def slow_read(*args, **kwargs):
        store.session_started(two_allowed.pk, "b")  # handled by the event loop during the query
        return read(*args, **kwargs)

    monkeypatch.setattr(selectors, "session_limits", slow_read)
    store.refresh_sets()
    assert two_allowed.pk in store.at_limit
