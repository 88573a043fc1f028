"""Attack review of the portal login with old account numbers (docs/adr/0019). Ours (fixed length with a check
digit) never reads as a phone or a typed network login; an old number is any digits, so it may be one that another
subscriber types as their phone or PPPoE login. Taking the old number first then names the wrong subscriber: the
phone's owner cannot sign in, gets "wrong password", and their tries lock the old number's holder out."""

import pytest

from abonent.network.actions import do_create_login
from abonent.portal.identify import identify
from abonent.subscribers import actions as subscribers


def test_an_old_number_that_is_anothers_phone_names_neither(subscriber, stranger, admin):
    # Иванов's phone is +7 916 123-45-67; Петров's old account number is the same eleven digits.
    subscribers.do_set_legacy_account(stranger, "89161234567", by=admin, reason="migration")
    found = identify("8 916 123-45-67")
    assert (found.subscriber, found.ambiguous) == (None, True)
    assert not identify("89161234567").key.startswith(f"sub:{stranger.pk}")


def test_an_old_number_that_is_anothers_network_login_names_neither(subscriber, stranger, admin):
    do_create_login(subscriber, acting_user=admin, kind="pppoe", username="173829", password="radius-pass")
    subscribers.do_set_legacy_account(stranger, "173829", by=admin, reason="migration")
    found = identify("173829")
    assert (found.subscriber, found.ambiguous) == (None, True)


def test_an_old_number_that_is_the_holders_own_phone_or_login_still_names_them(subscriber, admin):
    subscribers.do_set_legacy_account(subscriber, "89161234567", by=admin, reason="migration")
    do_create_login(subscriber, acting_user=admin, kind="pppoe", username="89161234567", password="radius-pass")
    found = identify("8 916 123-45-67")
    assert (found.subscriber, found.key) == (subscriber, f"sub:{subscriber.pk}")


def test_our_number_is_still_taken_first(subscriber, stranger, admin):
    subscribers.do_set_legacy_account(stranger, "173829", by=admin)
    assert identify(subscriber.account_number).subscriber == subscriber
    assert identify("173829").subscriber == stranger


@pytest.fixture(autouse=True)
def _db(db):
    pass
