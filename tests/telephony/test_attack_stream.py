"""Attack review of the screen-pop stream: a stream opened while signed in outlives the sign-out, the account's
deactivation and the extension's move to a colleague. Each used to keep receiving pops (names, balances)."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session

from abonent.integrations.telephony import pops
from abonent.integrations.telephony.testing import SseReader, running_web
from abonent.staff.models import StaffUser
from abonent.staff.permissions import Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("telephony-live")]


def _revoke(how: str, alice, bob, give_extension) -> None:
    if how == "signed_out":
        Session.objects.all().delete()
    elif how == "deactivated":
        StaffUser.objects.filter(pk=alice.pk).update(is_active=False)
    else:  # the extension moved to bob
        give_extension(alice, "")
        give_extension(bob, "101")


@pytest.mark.parametrize("how", ["signed_out", "deactivated", "extension_moved"])
def test_a_stream_whose_operator_lost_the_right_gets_no_more_pops(
    how, make_staff, make_subscriber, give_extension, cookies_of
):
    alice, bob = make_staff(Role.OPERATOR, username="alice"), make_staff(Role.OPERATOR, username="bob")
    give_extension(alice, "101")
    make_subscriber(phone="+79161234567")
    with running_web() as base, SseReader(f"{base}/staff/telephony/events/", cookies_of(alice)) as stream:
        pops.send_pop("mango", "before", extension="101", caller_number="+79161234567")
        first = stream.next(timeout=3)
        assert first is not None and first[1] == "pop"

        _revoke(how, alice, bob, give_extension)
        pops.send_pop("mango", "after", extension="101", caller_number="+79161234567")

        leaked = stream.next(timeout=1.5)
        assert leaked is None, f"a pop reached a stream after {how}: {leaked}"


def test_a_stream_follows_the_operators_branches_of_now(
    make_staff, make_subscriber, give_extension, cookies_of, branch, other_branch
):
    # The viewer was read once when the stream opened: an operator moved to another branch kept seeing the names
    # and balances of the branch they left, for as long as the tab stayed open.
    alice = make_staff(Role.OPERATOR, username="alice", branches=[branch])
    give_extension(alice, "101")
    make_subscriber(phone="+79161234567")
    with running_web() as base, SseReader(f"{base}/staff/telephony/events/", cookies_of(alice)) as stream:
        pops.send_pop("mango", "before", extension="101", caller_number="+79161234567")
        first = stream.next(timeout=3)
        assert first is not None and "Иванов" in first[2]

        alice.branches.set([other_branch])
        pops.send_pop("mango", "after", extension="101", caller_number="+79161234567")

        second = stream.next(timeout=3)
        assert second is not None and "Иванов" not in second[2] and "another branch" in second[2]


def test_one_extension_cannot_open_streams_without_bound(make_staff, give_extension, cookies_of, monkeypatch):
    # Every stream holds a socket, a queue and (since streams re-check their session) a query per heartbeat: one
    # session opening thousands of them used to be served every one.
    import httpx

    from abonent.integrations.telephony import hub as hub_module

    monkeypatch.setattr(hub_module, "MAX_STREAMS", 2)
    alice = make_staff(Role.OPERATOR, username="alice")
    give_extension(alice, "101")
    cookies = cookies_of(alice)
    with (
        running_web() as base,
        SseReader(f"{base}/staff/telephony/events/", cookies) as one,
        SseReader(f"{base}/staff/telephony/events/", cookies) as two,
    ):
        assert (one.status, two.status) == (200, 200)
        third = httpx.get(f"{base}/staff/telephony/events/", cookies=cookies, timeout=5)
        assert third.status_code == 429
