"""Attacks on the accounting-record reader shared by ``abonent radius`` and the rlm_rest endpoint (issue 12):
records that pass every bound of ``acct_fields.read_record`` and still lose or misfile accounting."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from abonent.api.actions import do_bind_api_token_to_nas
from abonent.network.models import Session, SessionStatus, UsageDay

from .conftest import SECRET
from .test_acct_parity import BASE, _rlm

MAX_GIGAWORDS = 2**31 - 1  # the largest acct_fields accepts
MAX_OCTETS = 2**32 - 1


def _post(token: str, attributes: dict):
    client = Client(headers={"Authorization": f"Bearer {token}"})
    return client.post("/api/v1/radius/accounting", json.dumps(_rlm(attributes)), content_type="application/json")


@pytest.mark.django_db
def test_a_session_at_the_counter_bound_does_not_lose_the_subscribers_other_sessions(customer, make_nas, radius_token):
    """One session reporting the largest total the reader accepts ((2^31 - 1) Gigawords + 2^32 - 1 octets =
    2^63 - 1, a clumsy NAS's "unknown" or an attacker's value) fills the subscriber's UsageDay to the bigint's
    limit; every later record of ANY other session of that subscriber that day then overflows the day's sum,
    is refused by the database, logged, answered 204, and lost: here a Stop, so the session stays open (and
    counts toward simultaneous use) until the sweeper. The bound must hold for what the record is added to."""
    nas = make_nas("mikrotik", name="bras-1", ip_address="127.0.0.1")
    do_bind_api_token_to_nas(radius_token[0], nas=nas)
    token = radius_token[1]
    big = {**BASE, "Acct-Session-Id": "big", "Acct-Status-Type": 3, "Acct-Session-Time": 60}
    big |= {"Acct-Input-Gigawords": MAX_GIGAWORDS, "Acct-Input-Octets": MAX_OCTETS}
    assert _post(token, big).status_code == 204
    assert Session.objects.get(acct_session_id="big").input_octets == 2**63 - 1

    normal = {**BASE, "Acct-Session-Id": "normal", "NAS-Port": 16}
    assert _post(token, {**normal, "Acct-Status-Type": 1}).status_code == 204
    stop = {**normal, "Acct-Status-Type": 2, "Acct-Session-Time": 60, "Acct-Input-Octets": 1000}
    assert _post(token, {**stop, "Acct-Input-Gigawords": 0, "Acct-Output-Gigawords": 0}).status_code == 204

    session = Session.objects.get(acct_session_id="normal")
    assert (session.status, session.input_octets) == (SessionStatus.CLOSED, 1000)
    assert UsageDay.objects.get().input_octets >= 1000


@pytest.mark.django_db
def test_a_32_bit_wrap_on_top_of_the_counter_bound_does_not_lose_the_stop(customer, make_nas, radius_token):
    """An interim with Gigawords 2^31 - 1 (accepted), then the Stop of the same session without Gigawords (a
    NAS that drops them, or an attacker): the Stop is read as 32-bit, its smaller octets as a wrap, and
    migration 0008's ``((high + 1) << 32) | octets`` goes past bit 63 (PostgreSQL's ``<<`` wraps to a negative
    number, the delta beside it then overflows): the database refuses the row, the endpoint logs it and answers
    204, and the Stop is lost for good; the session stays open. abonent radius writes through the same
    function and drops it alike. A record the reader accepted must be written (the wrap saturating, or such
    Gigawords refused by the reader)."""
    nas = make_nas("mikrotik", name="bras-1", ip_address="127.0.0.1")
    do_bind_api_token_to_nas(radius_token[0], nas=nas)
    token = radius_token[1]
    first = {**BASE, "Acct-Status-Type": 3, "Acct-Session-Time": 60, "Acct-Input-Octets": 5}
    assert _post(token, {**first, "Acct-Input-Gigawords": MAX_GIGAWORDS, "Acct-Output-Gigawords": 0}).status_code == 204
    stop = {**BASE, "Acct-Status-Type": 2, "Acct-Session-Time": 120, "Acct-Input-Octets": 3, "Acct-Terminate-Cause": 1}
    assert _post(token, stop).status_code == 204

    session = Session.objects.get()
    assert (session.status, session.terminate_cause) == (SessionStatus.CLOSED, "User-Request")
    assert session.input_octets >= (MAX_GIGAWORDS << 32) | 5


@pytest.mark.django_db(transaction=True)
def test_abonent_radius_loses_a_stop_after_a_session_at_the_counter_bound(customer, make_nas, server, radclient):
    """The UsageDay overflow above through ``abonent radius`` and radclient: the Stop is answered (the NAS
    forgets it) and dropped as refused by the database; the session stays open."""
    make_nas()
    base = 'User-Name = "ivanov"\nNAS-IP-Address = 127.0.0.1\nNAS-Port-Id = "ether1"\n'
    big = (
        f'{base}Acct-Status-Type = Interim-Update\nAcct-Session-Id = "big"\nAcct-Session-Time = 60\n'
        f"Acct-Input-Gigawords = {MAX_GIGAWORDS}\nAcct-Input-Octets = {MAX_OCTETS}\n"
    )
    normal = f'{base}Acct-Session-Id = "normal"\nNAS-Port = 16\n'
    stop = f"{normal}Acct-Status-Type = Stop\nAcct-Session-Time = 60\nAcct-Input-Octets = 1000\n"
    with server() as running:
        for packet in (big, f"{normal}Acct-Status-Type = Start\n", stop + "Acct-Input-Gigawords = 0\n"):
            result = radclient(running.acct_port, SECRET, "acct", packet)
            assert "Received Accounting-Response" in result.stdout, result.stdout + result.stderr

    assert Session.objects.get(acct_session_id="big").input_octets == 2**63 - 1
    session = Session.objects.get(acct_session_id="normal")
    assert (session.status, session.input_octets) == (SessionStatus.CLOSED, 1000)


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["Tunnel-Start", "Failed", None])
def test_the_rest_endpoint_acknowledges_a_status_abonent_radius_acknowledges(status, customer, make_nas, radius_token):
    """abonent radius answers a Tunnel-*/Failed record, or one without Acct-Status-Type, and writes nothing
    ("acknowledged, or the NAS would resend it forever", handler.py). The rlm_rest endpoint answers the same
    record 422, so FreeRADIUS sends no Accounting-Response and the L2TP LAC resends it until it gives up: the
    two paths differ on the same logical record. Expected: 204, nothing written."""
    nas = make_nas("mikrotik", name="bras-1", ip_address="127.0.0.1")
    do_bind_api_token_to_nas(radius_token[0], nas=nas)
    attributes = {**BASE, "Acct-Status-Type": status} if status else dict(BASE)

    response = _post(radius_token[1], attributes)

    assert response.status_code == 204, response.content
    assert not Session.objects.exists()
