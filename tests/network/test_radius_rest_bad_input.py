"""FreeRADIUS's rlm_rest endpoints answer malformed attributes as bad input, never with a 500 (issue 11 review).

A 500 is rlm_rest's "fail": FreeRADIUS retries and the NAS retransmits the record for ever. A record abonent
radius would drop is a 422 here; one it acknowledges without writing (a status not recorded) is a 204.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from abonent.api.actions import do_bind_api_token_to_nas
from abonent.core import clock
from abonent.network.models import AuthAttempt, Session
from abonent.network.radius.records import MAX_ACCT_DELAY, MAX_SESSION_SECONDS


def _attr(value, kind="string"):
    return {"type": kind, "value": [value]}


def _accounting(token: str, status="Interim-Update", **attributes):
    body = {
        "User-Name": _attr("ivanov"),
        "Acct-Status-Type": _attr(status),
        "Acct-Session-Id": _attr("a-1"),
        "FreeRADIUS-Client-IP-Address": _attr("127.0.0.1", "ipaddr"),
        **attributes,
    }
    client = Client(headers={"Authorization": f"Bearer {token}"}, raise_request_exception=False)
    return client.post("/api/v1/radius/accounting", json.dumps(body), content_type="application/json")


@pytest.fixture
def nas_a(make_nas):
    return make_nas("mikrotik", name="bras-a", ip_address="127.0.0.1")


@pytest.fixture
def token_a(radius_token, nas_a):
    do_bind_api_token_to_nas(radius_token[0], nas=nas_a)
    return radius_token[1]


# --- integers: ASCII digits only (F4) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attribute",
    ["Acct-Session-Time", "Acct-Input-Octets", "Acct-Delay-Time", "NAS-Port", "Acct-Input-Gigawords"],
)
@pytest.mark.parametrize("digits", ["²", "٣"])
def test_other_scripts_digits_in_an_integer_attribute_are_a_422(customer, token_a, attribute, digits):
    """'²'.isdigit() is True and int('²') raises; int('٣') is 3. A RADIUS integer is four bytes: FreeRADIUS sends
    it as a JSON number or ASCII digits."""
    response = _accounting(token_a, status="Start", **{attribute: _attr(digits)})

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "attribute_invalid"
    assert response.json()["error"]["fields"][0]["field"] == attribute
    assert not Session.objects.exists()


@pytest.mark.parametrize("status", ["¹", "٣", "", -1, 2**32])
def test_an_acct_status_type_neither_digits_nor_a_name_is_a_422(customer, token_a, status):
    """rlm_rest sends the dictionary's name of a status or its digits; anything else no NAS sent. (A name or
    number we do not record is acknowledged: test_acct_parity.)"""
    response = _accounting(token_a, status=status)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "attribute_invalid"
    assert response.json()["error"]["fields"][0]["field"] == "Acct-Status-Type"
    assert not Session.objects.exists()


def test_ascii_digits_in_string_attributes_are_read(customer, token_a):
    response = _accounting(
        token_a, status="1", **{"Acct-Session-Time": _attr("60"), "Acct-Input-Octets": _attr("1000")}
    )

    assert response.status_code == 204
    session = Session.objects.get()
    assert (session.session_time, session.input_octets) == (60, 1000)


def test_other_scripts_digits_in_acct_terminate_cause_are_its_name_not_a_number(customer, token_a):
    """A string Acct-Terminate-Cause is FreeRADIUS's name of the value ("User-Request"); "²" was int()-ed."""
    assert _accounting(token_a, status="Start").status_code == 204

    response = _accounting(token_a, status="Stop", **{"Acct-Terminate-Cause": _attr("²")})

    assert response.status_code == 204
    assert Session.objects.get().terminate_cause == "²"


# --- times: bounded as abonent radius bounds them (F5) -------------------------------------------------------


@pytest.mark.parametrize("delay", [-30 * 86400, -(10**15)])
def test_a_negative_acct_delay_time_is_taken_as_none(customer, token_a, delay):
    """A negative delay dated the session in the future; -10^15 seconds overflowed the date (a 500)."""
    before = clock.now()

    response = _accounting(token_a, status="Start", **{"Acct-Delay-Time": _attr(delay, "integer")})

    assert response.status_code == 204
    assert before <= Session.objects.get().started_at <= clock.now()


def test_a_huge_acct_delay_time_is_taken_as_an_hour(customer, token_a):
    before = clock.now()

    response = _accounting(token_a, status="Start", **{"Acct-Delay-Time": _attr(10**15, "integer")})

    assert response.status_code == 204
    hour = dt.timedelta(seconds=MAX_ACCT_DELAY)
    assert before - hour <= Session.objects.get().started_at <= clock.now() - hour


@pytest.mark.parametrize("session_time", [-60, 10**15])
def test_an_acct_session_time_out_of_bounds_is_bounded(customer, token_a, session_time):
    """abonent radius bounds it to ten years; rlm_rest's endpoint took it as sent, and 10^15 seconds overflowed."""
    response = _accounting(token_a, **{"Acct-Session-Time": _attr(session_time, "integer")})

    assert response.status_code == 204
    assert Session.objects.get().session_time == max(0, min(session_time, MAX_SESSION_SECONDS))


# --- counters: 64 bits at most (F13) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("Acct-Input-Gigawords", 2**40),
        ("Acct-Output-Gigawords", 2**31),
        ("Acct-Input-Octets", 2**32),
        ("Acct-Output-Octets", -1),
    ],
)
def test_a_counter_of_2_to_the_63_octets_or_more_is_a_422(customer, token_a, attribute, value):
    """PostgreSQL refused the row (DataError, answered 204); SQLite's driver raised OverflowError: a 500."""
    response = _accounting(token_a, status="Start", **{attribute: _attr(value, "integer")})

    assert response.status_code == 422, response.content
    assert response.json()["error"]["fields"][0] == {
        "field": attribute,
        "code": "attribute_invalid",
        "message": f"{attribute} has an invalid value.",
    }
    assert not Session.objects.exists()


def test_the_largest_64_bit_counter_is_written(customer, token_a):
    response = _accounting(
        token_a,
        status="Start",
        **{"Acct-Input-Gigawords": _attr(2**31 - 1, "integer"), "Acct-Input-Octets": _attr(2**32 - 1, "integer")},
    )

    assert response.status_code == 204
    assert Session.objects.get().input_octets == 2**63 - 1


# --- strings: no lone surrogates (F6) ------------------------------------------------------------------------


def test_a_lone_surrogate_in_user_name_is_422_and_nothing_is_written(customer, token_a):
    """Encoding it for the database (the authentication attempt) raised UnicodeEncodeError: a 500."""
    client = Client(headers={"Authorization": f"Bearer {token_a}"}, raise_request_exception=False)
    body = (
        b'{"User-Name": {"type": "string", "value": ["iv\\ud800"]}, '
        b'"FreeRADIUS-Client-IP-Address": {"type": "ipaddr", "value": ["127.0.0.1"]}}'
    )

    response = client.post("/api/v1/radius/authorize", body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {
            "field": "User-Name.value.0",
            "code": "surrogate_character",
            "message": "Unpaired surrogate characters are not allowed.",
        }
    ]
    assert not AuthAttempt.objects.exists()


def test_a_lone_surrogate_in_an_accounting_request_writes_no_session(customer, token_a):
    response = _accounting(token_a, status="Start", **{"Acct-Session-Id": _attr("a-\ud800")})

    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "Acct-Session-Id.value.0"
    assert not Session.objects.exists()
