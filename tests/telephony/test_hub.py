"""The web process's listener: a pop written while its LISTEN connection was cut still reaches the operator
(PostgreSQL: reconnect and catch up from the table), and the stream refuses the anonymous."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection

from abonent.integrations.telephony import pops
from abonent.integrations.telephony.testing import SseReader, running_web
from abonent.staff.permissions import Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("telephony-live")]


def test_a_pop_sent_while_the_listener_was_cut_is_delivered_after_it_reconnects(
    make_staff, give_extension, cookies_of, make_subscriber
):
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite polls the table")
    alice = make_staff(Role.OPERATOR, username="alice")
    give_extension(alice, "101")
    make_subscriber(phone="+79161234567")
    with running_web() as base, SseReader(f"{base}/staff/telephony/events/", cookies_of(alice)) as stream:
        # given the listener's connection killed by the server (a restart, a firewall)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s AND datname = current_database()",  # not another worker's
                ["abonent-screen-pop"],
            )
            assert cursor.fetchone()[0] == 1
        # when a ring is popped before it is back
        pops.send_pop("ami", "cut-1", extension="101", caller_number="+79161234567")
        event = stream.next(timeout=5.0)
    # then the operator still gets it
    assert event is not None
    assert json.loads(event[2])["pbx_call_id"] == "cut-1"


def test_one_pop_reaches_every_tab_of_the_operator_once(make_staff, give_extension, cookies_of):
    alice = make_staff(Role.OPERATOR, username="alice")
    give_extension(alice, "101")
    with (
        running_web() as base,
        SseReader(f"{base}/staff/telephony/events/", cookies_of(alice)) as tab1,
        SseReader(f"{base}/staff/telephony/events/", cookies_of(alice)) as tab2,
    ):
        time.sleep(0.2)
        pops.send_pop("ami", "tabs-1", extension="101", caller_number="+79990001122")
        first, second = tab1.next(timeout=2.0), tab2.next(timeout=2.0)
        again = tab1.next(timeout=0.4)
    assert first is not None and second is not None and again is None
    shown = json.loads(first[2])
    assert shown["subscribers"] == [] and shown["none"] == "No subscriber has this number."


def test_the_stream_is_for_signed_in_staff_only():
    with running_web() as base:
        import httpx

        response = httpx.get(f"{base}/staff/telephony/events/", follow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/staff/?next=")
