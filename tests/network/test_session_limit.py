"""The simultaneous-use count the RADIUS server keeps in memory between re-reads of the database, and when an
open session stops counting (a NAS that crashed)."""

import datetime as dt
import time

import pytest

from abonent.core import clock
from abonent.network import actions as network
from abonent.network.accounting import unique_session_id
from abonent.network.models import Login, Nas, Session
from abonent.network.policy import PolicyStore

from .conftest import SECRET

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


# --- a NAS that crashed (issue 12): its sessions stop counting after a few of its own interim intervals, and
# at once on its Accounting-On -----------------------------------------------------------------------------------

PAP = 'User-Name = "ivanov"\nUser-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n'


def _silent_for(seconds: int) -> None:
    Session.objects.update(updated_at=clock.now() - dt.timedelta(seconds=seconds))


def test_a_session_silent_for_three_of_its_nas_intervals_no_longer_counts(customer, make_nas, settings):
    # given a NAS that sends an interim every 60 s, and a single-session login with a session open on it
    settings.ABONENT_RADIUS_SESSION_ALIVE_INTERVALS = 3
    nas = make_nas(interim_interval=60)
    login = Login.objects.get(username="ivanov")
    _open(customer, nas, login, "a")
    # when it has missed two interims, it still counts
    _silent_for(150)
    assert login.pk in _store().at_limit
    # when it has been silent for three intervals and the grace (the NAS is gone), it no longer does
    _silent_for(3 * 60 + 31)
    assert login.pk not in _store().at_limit
    # and a NAS with a longer interval keeps its session counted for longer
    Nas.objects.filter(pk=nas.pk).update(interim_interval=300)
    assert login.pk in _store().at_limit


def test_the_number_of_intervals_is_a_setting(customer, make_nas, settings):
    nas = make_nas(interim_interval=60)
    login = Login.objects.get(username="ivanov")
    _open(customer, nas, login, "a")
    _silent_for(4 * 60)
    settings.ABONENT_RADIUS_SESSION_ALIVE_INTERVALS = 5
    assert login.pk in _store().at_limit
    settings.ABONENT_RADIUS_SESSION_ALIVE_INTERVALS = 3
    assert login.pk not in _store().at_limit


def test_an_accounting_on_frees_that_nas_logins_and_only_those(customer, make_nas, two_allowed):
    # given a login allowed two sessions, with one on each of two NAS, and another login with one on the first
    first = make_nas()
    second = make_nas(name="second", ip_address="10.0.0.2")
    _open(customer, first, two_allowed, "a")
    _open(customer, second, two_allowed, "b")
    store = _store()
    assert two_allowed.pk in store.at_limit
    # when the first NAS reports it restarted
    store.nas_restarted(first.pk, clock.now())
    # then the login has a place again, one only: its session on the second NAS still counts
    assert two_allowed.pk not in store.at_limit
    assert store.open_below_limit[two_allowed.pk] == 1
    store.session_started(two_allowed.pk, "c", second.pk)
    assert two_allowed.pk in store.at_limit
    # and a restart of the second NAS frees both it and the session seen starting there
    store.nas_restarted(second.pk, clock.now())
    assert two_allowed.pk not in store.at_limit
    assert two_allowed.pk not in store.open_below_limit


def test_a_reread_before_the_accounting_on_is_written_does_not_lock_them_out_again(customer, make_nas):
    # given a login at its limit on a NAS that restarts
    nas = make_nas()
    login = Login.objects.get(username="ivanov")
    _open(customer, nas, login, "a")
    store = _store()
    store.nas_restarted(nas.pk, clock.now())
    # when the sets are re-read while the Accounting-On still waits for its write (the session is open in the
    # database)
    store.refresh_sets()
    # then the session it ended is not counted
    assert login.pk not in store.at_limit
    # but a session started after the restart is
    Session.objects.update(started_at=clock.now() + dt.timedelta(seconds=1))
    store.refresh_sets()
    assert login.pk in store.at_limit


def _wait_for_accept(radclient, running, seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    while True:
        result = radclient(running.auth_port, SECRET, "auth", PAP).stdout
        if "Received Access-Accept" in result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_a_login_whose_nas_crashed_is_accepted_again_after_three_intervals(
    customer, make_nas, server, radclient, settings, monkeypatch
):
    # given a NAS with a 60 s interim interval, which crashed with ivanov's session open (no Stop, no
    # Accounting-On: it came back as another box, or the subscriber moved to another NAS)
    from abonent.network import policy

    monkeypatch.setitem(policy.SET_PERIODS, "at_limit", 0.2)  # re-read the sets as often as the test looks
    settings.ABONENT_RADIUS_SESSION_ALIVE_INTERVALS = 3
    nas = make_nas(interim_interval=60)
    _open(customer, nas, Login.objects.get(username="ivanov"), "before-crash")
    _silent_for(120)
    with server() as running:
        refused = radclient(running.auth_port, SECRET, "auth", PAP).stdout
        # when three intervals and the grace have passed since its last update
        _silent_for(3 * 60 + 31)
        accepted = _wait_for_accept(radclient, running)
    # then the subscriber is let in again, not after the 30 minutes a fixed window held them out
    assert "Received Access-Reject" in refused, refused
    assert "Received Access-Accept" in accepted, accepted


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_a_login_is_accepted_at_once_after_its_nas_accounting_on(customer, make_nas, server, radclient):
    # given ivanov at the limit with a fresh session on a NAS
    nas = make_nas()
    _open(customer, nas, Login.objects.get(username="ivanov"), "before-reboot")
    accounting_on = 'Acct-Status-Type = Accounting-On\nNAS-IP-Address = 127.0.0.1\nAcct-Session-Id = "0"\n'
    with server() as running:
        refused = radclient(running.auth_port, SECRET, "auth", PAP).stdout
        # when the NAS reports it restarted
        answered = radclient(running.acct_port, SECRET, "acct", accounting_on).stdout
        # then the next Access-Request is accepted, without waiting for the next re-read of the sets (15 s)
        accepted = radclient(running.auth_port, SECRET, "auth", PAP).stdout
        # and the re-read that follows (the session now closed in the database) keeps it so
        running.server.store.refresh_sets()
        again = radclient(running.auth_port, SECRET, "auth", PAP).stdout
    assert "Received Access-Reject" in refused, refused
    assert "Received Accounting-Response" in answered, answered
    assert "Received Access-Accept" in accepted, accepted
    assert "Received Access-Accept" in again, again


def test_an_accounting_on_during_a_reread_is_not_undone_by_it(customer, make_nas, monkeypatch):
    # given a login at its limit, and a re-read of the sets under way when the NAS reports its restart
    from abonent.network import selectors

    nas = make_nas()
    login = Login.objects.get(username="ivanov")
    _open(customer, nas, login, "a")
    store = _store()
    read = selectors.session_limits

    def restart_during_the_query(*args, **kwargs):
        counts = read(*args, **kwargs)  # still sees the session open: the Accounting-On is not written yet
        store.nas_restarted(nas.pk, clock.now())  # handled by the event loop meanwhile
        return counts

    monkeypatch.setattr(selectors, "session_limits", restart_during_the_query)
    store.refresh_sets()
    # then the sets the re-read installs have the restart applied too
    assert login.pk not in store.at_limit


# --- an Accounting-On frees the sessions that started before it, no others (issue 12) --------------------------


def test_an_accounting_on_sent_again_keeps_the_sessions_the_reread_found_started_since(customer, make_nas):
    # given NAS A rebooted, and ivanov (one session allowed) back online through it: the re-read of the sets found
    # his new session in the database (its Start handled by another process, or before this one started)
    nas = make_nas()
    login = Login.objects.get(username="ivanov")
    store = _store()
    rebooted_at = clock.now()
    store.nas_restarted(nas.pk, rebooted_at)
    _open(customer, nas, login, "after-reboot")
    Session.objects.update(started_at=rebooted_at + dt.timedelta(seconds=5))
    store.refresh_sets()
    assert login.pk in store.at_limit
    # when the NAS's Accounting-On for that reboot comes again
    store.nas_restarted(nas.pk, rebooted_at)
    # then his session still counts: a second login must not get in. On main (f14e0c7) every session the re-read
    # counted on the NAS was freed, whenever it started.
    assert login.pk in store.at_limit


def test_an_accounting_on_frees_only_the_sessions_started_before_it(customer, make_nas, two_allowed):
    # given a login allowed two sessions, both open on one NAS when the sets were read: one from an hour ago, one
    # started ten seconds after the NAS's reboot, whose Accounting-On arrives late (Acct-Delay-Time: the server
    # was unreachable for the NAS a while)
    nas = make_nas()
    _open(customer, nas, two_allowed, "a")
    _open(customer, nas, two_allowed, "b")
    rebooted_at = clock.now()
    Session.objects.filter(acct_session_id="a").update(started_at=rebooted_at - dt.timedelta(hours=1))
    Session.objects.filter(acct_session_id="b").update(started_at=rebooted_at + dt.timedelta(seconds=10))
    store = _store()
    assert two_allowed.pk in store.at_limit
    # when the Accounting-On arrives
    store.nas_restarted(nas.pk, rebooted_at)
    # then one place is free (the hour-old session is over), not two (on main both were freed)
    assert two_allowed.pk not in store.at_limit
    assert store.open_below_limit[two_allowed.pk] == 1
    store.session_started(two_allowed.pk, "c", nas.pk, rebooted_at + dt.timedelta(seconds=20))
    assert two_allowed.pk in store.at_limit


def test_a_start_after_the_accounting_on_keeps_counting_a_start_before_it_is_freed(customer, make_nas, two_allowed):
    nas = make_nas()
    store = _store()
    rebooted_at = clock.now()
    store.session_started(two_allowed.pk, "before", nas.pk, rebooted_at - dt.timedelta(minutes=5))
    store.session_started(two_allowed.pk, "after", nas.pk, rebooted_at + dt.timedelta(seconds=1))
    assert two_allowed.pk in store.at_limit
    store.nas_restarted(nas.pk, rebooted_at)  # (delayed: the session "after" reported its Start first)
    assert two_allowed.pk not in store.at_limit
    store.session_started(two_allowed.pk, "next", nas.pk)
    assert two_allowed.pk in store.at_limit  # "after" and "next"


def test_a_reread_the_database_breaks_off_keeps_the_starts_seen(customer, make_nas, monkeypatch):
    # given ivanov (one session allowed) at his limit by a Start this process saw
    from django.db import OperationalError

    from abonent.network import selectors

    nas = make_nas()
    login = Login.objects.get(username="ivanov")
    store = _store()
    store.session_started(login.pk, "b", nas.pk)
    assert login.pk in store.at_limit

    # when a re-read of the sets fails (the database went away during it)
    def gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(selectors, "session_limits", gone)
    with pytest.raises(OperationalError):
        store.refresh_sets()
    # then a Stop for another session of his (an older one, ended) does not free him: the session seen starting
    # is still open. On main (f14e0c7) the failed re-read had already dropped the Starts it was to count over.
    store.session_stopped(login.pk, "a-older")
    assert login.pk in store.at_limit


def test_a_session_that_started_at_the_accounting_on_itself_is_freed_one_a_microsecond_later_is_not(
    customer, make_nas, two_allowed
):
    # The same boundary as the write's (``close_nas_sessions``: started_at <= the event time), to the microsecond.
    nas = make_nas()
    _open(customer, nas, two_allowed, "a")
    _open(customer, nas, two_allowed, "b")
    rebooted_at = dt.datetime(2026, 12, 1, 9, 0, 0, 123457, tzinfo=dt.UTC)
    Session.objects.filter(acct_session_id="a").update(started_at=rebooted_at)
    Session.objects.filter(acct_session_id="b").update(started_at=rebooted_at + dt.timedelta(microseconds=1))
    store = _store()
    store.nas_restarted(nas.pk, rebooted_at)
    assert store.open_below_limit[two_allowed.pk] == 1


# --- the alive window has a ceiling, and the sweeper keeps the same rule (issue 12) -----------------------------


def test_a_nas_with_a_day_long_interval_keeps_a_silent_session_counting_two_hours_not_three_days(
    customer, make_nas, settings
):
    # given a NAS set to send interims once a day, which crashed with ivanov's session open
    settings.ABONENT_RADIUS_SESSION_ALIVE_INTERVALS = 3
    nas = make_nas(interim_interval=86_400)
    login = Login.objects.get(username="ivanov")
    _open(customer, nas, login, "a")
    _silent_for(2 * 3600 - 60)
    assert login.pk in _store().at_limit
    # when it has been silent for two hours, then it no longer counts (on main: 3 × 86,400 s + 30 s, three days)
    _silent_for(2 * 3600 + 1)
    assert login.pk not in _store().at_limit


def test_the_sweeper_closes_a_session_when_it_stops_counting_not_before(customer, make_nas, settings):
    # given five intervals set (a NAS whose interims are often late), a NAS at 60 s, and a session silent for four
    from abonent.network.accounting import sweep_stale_sessions
    from abonent.network.models import SessionStatus

    settings.ABONENT_RADIUS_SESSION_ALIVE_INTERVALS = 5
    nas = make_nas(interim_interval=60)
    login = Login.objects.get(username="ivanov")
    _open(customer, nas, login, "a")
    _silent_for(4 * 60)
    # when the sweeper runs, then it leaves the session open: it still counts toward simultaneous use. On main
    # the sweeper closed it after three intervals whatever the setting, while the count held it for five.
    assert sweep_stale_sessions() == 0
    assert login.pk in _store().at_limit
    # and once it stops counting (five intervals and the grace), the sweeper closes it
    _silent_for(5 * 60 + 31)
    assert login.pk not in _store().at_limit
    assert sweep_stale_sessions() == 1
    assert Session.objects.get().status == SessionStatus.CLOSED


def test_the_sweeper_closes_a_silent_session_of_a_day_long_interval_nas_after_two_hours(customer, make_nas):
    from abonent.network.accounting import sweep_stale_sessions

    nas = make_nas(interim_interval=86_400)
    _open(customer, nas, Login.objects.get(username="ivanov"), "a")
    _silent_for(2 * 3600 - 60)
    assert sweep_stale_sessions() == 0
    _silent_for(2 * 3600 + 1)
    assert sweep_stale_sessions() == 1
