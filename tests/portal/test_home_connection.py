"""The home page's connection card: online now (since when, the address, today's traffic) or when last seen,
from the sessions the accounting writer keeps; another subscriber's session is never shown."""

from __future__ import annotations

import datetime as dt

import pytest

from abonent.core import clock

from .conftest import TODAY, api_of, signed_in
from .test_home import text_of
from .usage_records import connect, make_nas, report

pytestmark = pytest.mark.django_db
HOUR = 3600


def connection(subscriber) -> dict:
    return api_of(subscriber).get("/api/v1/my/home").json()["connection"]


def test_online_now_since_the_sessions_start_with_its_address_and_todays_traffic(subscriber, admin):
    nas = make_nas(admin)
    # Given a session from 10:00 UTC (13:00 in Moscow) that has moved 5 MB down and 1 MB up by 11:00
    start = TODAY - dt.timedelta(hours=2)
    connect(nas, subscriber, start=start, seconds=HOUR, download=5_000_000, upload=1_000_000, ip="10.0.0.7")
    with clock.travel_to(TODAY):
        data = connection(subscriber)
        words = text_of(signed_in(subscriber).get("/my/").content.decode())
    assert data == {
        "online": True,
        "since": "2026-11-20T10:00:00Z",
        "ip_address": "10.0.0.7",
        "last_seen": None,
        "today_download_bytes": 5_000_000,
        "today_upload_bytes": 1_000_000,
    }
    assert "Online since Nov. 20, 2026, 1 p.m." in words
    assert "IP address: 10.0.0.7" in words
    assert "Today: 4.8\u00a0MB incoming, 976.6\u00a0KB outgoing." in words


def test_offline_shows_when_last_seen_and_yesterdays_traffic_is_not_todays(subscriber, admin):
    nas = make_nas(admin)
    yesterday = TODAY - dt.timedelta(days=1)
    connect(nas, subscriber, start=yesterday, seconds=HOUR, download=9_000, upload=1_000, stop=True)
    with clock.travel_to(TODAY):
        data = connection(subscriber)
        words = text_of(signed_in(subscriber).get("/my/").content.decode())
    assert (data["online"], data["since"], data["ip_address"]) == (False, None, None)
    assert data["last_seen"] == "2026-11-19T13:00:00Z"
    assert (data["today_download_bytes"], data["today_upload_bytes"]) == (0, 0)
    assert "Offline last seen Nov. 19, 2026, 4 p.m." in words


def test_a_second_device_still_online_counts_when_a_newer_session_ended(subscriber, admin):
    nas = make_nas(admin)
    # Given a router online since 08:00 and a phone that connected at 10:00 and left at 10:30
    connect(nas, subscriber, start=TODAY - dt.timedelta(hours=4), seconds=60, ip="10.0.0.8")
    connect(nas, subscriber, start=TODAY - dt.timedelta(hours=2), seconds=1800, stop=True, ip="10.0.0.9")
    with clock.travel_to(TODAY):
        data = connection(subscriber)
    assert (data["online"], data["ip_address"], data["since"]) == (True, "10.0.0.8", "2026-11-20T08:00:00Z")


def test_a_session_that_ends_turns_the_card_offline(subscriber, admin):
    nas = make_nas(admin)
    start = TODAY - dt.timedelta(hours=1)
    unique = connect(nas, subscriber, start=start, seconds=600, download=1000, upload=10)
    with clock.travel_to(TODAY):
        assert connection(subscriber)["online"] is True
    report(
        nas, subscriber, unique, start=start, seconds=1200, download=3000, upload=30, stop=True, cause="Lost-Carrier"
    )
    with clock.travel_to(TODAY):
        data = connection(subscriber)
    assert (data["online"], data["last_seen"], data["today_download_bytes"]) == (False, "2026-11-20T11:20:00Z", 3000)


def test_a_strangers_session_is_never_shown(subscriber, stranger, admin):
    nas = make_nas(admin)
    # Given the stranger online with traffic today, and our subscriber never connected
    connect(nas, stranger, start=TODAY - dt.timedelta(hours=1), seconds=600, download=777_000, ip="10.9.9.9")
    with clock.travel_to(TODAY):
        data = connection(subscriber)
        html = signed_in(subscriber).get("/my/").content.decode()
    assert data == {
        "online": False,
        "since": None,
        "ip_address": None,
        "last_seen": None,
        "today_download_bytes": 0,
        "today_upload_bytes": 0,
    }
    assert "10.9.9.9" not in html
    assert "not connected yet" in html
