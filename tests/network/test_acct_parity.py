"""One accounting record, two ways in: a packet to ``abonent radius`` and the same attributes as FreeRADIUS's
rlm_rest posts them. Both read it with ``acct_fields.read_record``, so both must make the same ``AcctRecord``
(the event time aside, taken a moment apart) or refuse it alike: abonent radius drops it as malformed, the
REST endpoint answers 422 naming the attribute (issue 12). A status that is not recorded (Tunnel-*, Failed,
none) both acknowledge and neither writes: a refusal would leave the NAS resending it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import json
import struct

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from abonent.api.actions import do_bind_api_token_to_nas
from abonent.core import clock
from abonent.network import api
from abonent.network.models import Session
from abonent.network.policy import CLASS_PREFIX, PolicyStore
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry
from abonent.network.radius.records import MAX_ACCT_DELAY, MAX_SESSION_SECONDS

from .conftest import SECRET

pytestmark = pytest.mark.django_db

NAS_ADDR = ("127.0.0.1", 40001)
IGNORED = "abonent_radius_rest_accounting_ignored_total"
# RADIUS attribute: (code, how the packet carries it, rlm_rest's type).
ATTRIBUTES = {
    "User-Name": (1, "text", "string"),
    "NAS-IP-Address": (4, "ipaddr", "ipaddr"),
    "NAS-Port": (5, "integer", "integer"),
    "Framed-IP-Address": (8, "ipaddr", "ipaddr"),
    "Class": (25, "octets", "octets"),
    "Calling-Station-Id": (31, "text", "string"),
    "NAS-Identifier": (32, "text", "string"),
    "Acct-Status-Type": (40, "integer", "integer"),
    "Acct-Delay-Time": (41, "integer", "integer"),
    "Acct-Input-Octets": (42, "integer", "integer"),
    "Acct-Output-Octets": (43, "integer", "integer"),
    "Acct-Session-Id": (44, "text", "string"),
    "Acct-Session-Time": (46, "integer", "integer"),
    "Acct-Terminate-Cause": (49, "integer", "integer"),
    "Acct-Input-Gigawords": (52, "integer", "integer"),
    "Acct-Output-Gigawords": (53, "integer", "integer"),
    "NAS-Port-Id": (87, "text", "string"),
}
# FreeRADIUS posts an enumerated integer by its name.
NAMES = {
    "Acct-Status-Type": {
        1: "Start",
        2: "Stop",
        3: "Interim-Update",
        7: "Accounting-On",
        9: "Tunnel-Start",
        15: "Failed",
    }
}
NAMES["Acct-Terminate-Cause"] = {1: "User-Request"}

BASE = {
    "User-Name": "ivanov",
    "Acct-Session-Id": "81a00003",
    "NAS-IP-Address": "127.0.0.1",
    "NAS-Port": 15,
    "NAS-Port-Id": "ether1.100",
    "NAS-Identifier": "bras-1",
    "Calling-Station-Id": "aa:bb:cc:dd:ee:ff",
    "Framed-IP-Address": "100.64.0.7",
}

# name -> (the record's attributes, what must come of it: the AcctRecord fields to check, or the refusal)
CASES = {
    "interim with 64-bit counters": (
        {"Acct-Status-Type": 3, "Acct-Session-Time": 600, "Acct-Input-Octets": 5, "Acct-Input-Gigawords": 2,
         "Acct-Output-Octets": 7, "Acct-Output-Gigawords": 0},
        {"input_octets": (2 << 32) | 5, "output_octets": 7, "counters_32bit": False, "session_time": 600},
    ),
    "no Gigawords: 32-bit counters": (
        {"Acct-Status-Type": 3, "Acct-Input-Octets": 4_000_000_000, "Acct-Output-Octets": 1},
        {"input_octets": 4_000_000_000, "counters_32bit": True},
    ),
    "session time over the cap": (
        {"Acct-Status-Type": 3, "Acct-Session-Time": 2**32 - 1},
        {"session_time": MAX_SESSION_SECONDS},
    ),
    "delay over the hour": ({"Acct-Status-Type": 1, "Acct-Delay-Time": 7200}, {"delay": MAX_ACCT_DELAY}),
    "NUL in User-Name": (
        {"Acct-Status-Type": 1, "User-Name": "iva\x00nov"},
        {"username": "iva\ufffdnov", "login_id": None},
    ),
    "Class names the login": ({"Acct-Status-Type": 1, "User-Name": "rewritten-by-nas", "Class": "login"}, {}),
    "Stop with its cause": (
        {"Acct-Status-Type": 2, "Acct-Terminate-Cause": 1, "Acct-Session-Time": 60},
        {"terminate_cause": "User-Request"},
    ),
    "a cause no dictionary names": ({"Acct-Status-Type": 2, "Acct-Terminate-Cause": 99}, {"terminate_cause": "99"}),
    "Accounting-On": ({"Acct-Status-Type": 7, "Acct-Session-Id": None}, {"unique_id": ""}),
    "Gigawords 2^31": ({"Acct-Status-Type": 3, "Acct-Input-Gigawords": 2**31}, "Acct-Input-Gigawords"),
    "Gigawords 2^31 out": ({"Acct-Status-Type": 3, "Acct-Output-Gigawords": 2**32 - 1}, "Acct-Output-Gigawords"),
    "no Acct-Session-Id": ({"Acct-Status-Type": 1, "Acct-Session-Id": None}, "Acct-Session-Id"),
    "a status not recorded": ({"Acct-Status-Type": 9}, None),
    "Failed": ({"Acct-Status-Type": 15}, None),
    "a status no dictionary names": ({"Acct-Status-Type": 1000}, None),
    "no Acct-Status-Type": ({"Acct-Status-Type": None}, None),
}  # fmt: skip


def _attributes(case: str, login_id: int) -> dict:
    extra, _expected = CASES[case]
    attributes = {**BASE, **extra}
    if attributes.get("Class") == "login":
        attributes["Class"] = CLASS_PREFIX + f"{login_id}:abc123".encode()
    return {name: value for name, value in attributes.items() if value is not None}


def _packet(attributes: dict) -> bytes:
    body = b""
    for name, value in attributes.items():
        code, kind, _type = ATTRIBUTES[name]
        if kind == "text":
            raw = value.encode()
        elif kind == "ipaddr":
            raw = ipaddress.IPv4Address(value).packed
        elif kind == "integer":
            raw = struct.pack("!I", value)
        else:
            raw = value
        body += bytes([code, len(raw) + 2]) + raw
    header = struct.pack("!BBH", 4, 9, 20 + len(body))
    raw = header + bytes(16) + body
    return raw[:4] + hashlib.md5(raw + SECRET.encode()).digest() + raw[20:]  # RFC 2866 §3


def _rlm(attributes: dict) -> dict:
    body = {"FreeRADIUS-Client-IP-Address": {"type": "ipaddr", "value": ["127.0.0.1"]}}
    for name, value in attributes.items():
        _code, _kind, kind = ATTRIBUTES[name]
        if isinstance(value, bytes):
            value = "0x" + value.hex()
        value = NAMES.get(name, {}).get(value, value)
        body[name] = {"type": kind, "value": [value]}
    return body


class CollectingWriter:
    full = False  # the writer's queue limit (AccountingWriter.full): never reached here

    def __init__(self) -> None:
        self.records: list = []

    def submit(self, record, done) -> None:
        self.records.append(record)


def _through_radius(nas, attributes: dict):
    """The record abonent radius submits for writing, or the counter that dropped it / ignored it."""
    store = PolicyStore()
    store.load_all()
    server = RadiusServer(store=store, nas_table={"127.0.0.1": NasEntry.from_model(nas)}, writer=CollectingWriter())
    server.handle_acct(_packet(attributes), NAS_ADDR, lambda reply, to: None)
    counters = {name for (_nas, name), value in server.stats.counters.items() if value}
    return server.writer.records, counters


def _through_rest(token: str, attributes: dict, monkeypatch):
    written: list = []
    monkeypatch.setattr(api.accounting, "write_batch", written.extend)
    client = Client(headers={"Authorization": f"Bearer {token}"})
    response = client.post("/api/v1/radius/accounting", json.dumps(_rlm(attributes)), content_type="application/json")
    return written, response


@pytest.mark.parametrize("case", list(CASES))
def test_abonent_radius_and_rlm_rest_read_the_same_record(case, customer, make_nas, radius_token, monkeypatch):
    nas = make_nas("mikrotik", name="bras-1", ip_address="127.0.0.1")
    do_bind_api_token_to_nas(radius_token[0], nas=nas)
    login = customer.network_logins.get()
    attributes = _attributes(case, login.pk)
    expected = CASES[case][1]

    before = clock.now()
    ignored_before = REGISTRY.get_sample_value(IGNORED, {"nas": "bras-1"}) or 0
    by_radius, counters = _through_radius(nas, attributes)
    by_rest, response = _through_rest(radius_token[1], attributes, monkeypatch)

    if expected is None:  # not recorded: acknowledged by both, written by neither
        assert (by_radius, by_rest) == ([], [])
        assert "accounting_ignored" in counters
        assert response.status_code == 204, response.content
        assert REGISTRY.get_sample_value(IGNORED, {"nas": "bras-1"}) == ignored_before + 1
        return
    if isinstance(expected, str):  # malformed: dropped by one, a 422 naming the attribute by the other
        assert (by_radius, by_rest) == ([], [])
        assert "dropped_malformed" in counters
        assert response.status_code == 422, response.content
        error = response.json()["error"]
        assert error["code"] in ("attribute_invalid", "acct_session_id_missing")
        assert error["fields"][0]["field"] == expected
        return
    assert response.status_code == 204, response.content
    [radius_record], [rest_record] = by_radius, by_rest
    radius_fields, rest_fields = dataclasses.asdict(radius_record), dataclasses.asdict(rest_record)
    radius_time, rest_time = radius_fields.pop("event_time"), rest_fields.pop("event_time")
    assert radius_fields == rest_fields
    assert abs(radius_time - rest_time) < dt.timedelta(seconds=5)
    delay = dt.timedelta(seconds=expected.get("delay", 0))
    assert before - delay - dt.timedelta(seconds=1) <= radius_time <= clock.now() - delay
    for name, value in expected.items():
        if name != "delay":
            assert radius_fields[name] == value, name
    if attributes["Acct-Status-Type"] == 7:
        return
    assert radius_fields["nas_port_id"] == "ether1.100"
    assert radius_fields["framed_ip"] == "100.64.0.7"
    assert radius_fields["unique_id"]
    if "Class" in attributes or attributes["User-Name"] == "ivanov":
        assert (radius_fields["login_id"], radius_fields["subscriber_id"]) == (login.pk, customer.pk)


def test_the_cause_names_are_the_dictionarys():
    from abonent.network.acct_fields import TERMINATE_CAUSES
    from abonent.network.radius.codec import DICTIONARY

    values = DICTIONARY.attributes["Acct-Terminate-Cause"].values
    assert {
        struct.unpack("!I", values.GetForward(name))[0]: name for name in values.forward if isinstance(name, str)
    } == TERMINATE_CAUSES
    assert TERMINATE_CAUSES[1] == "User-Request" and len(TERMINATE_CAUSES) >= 18


@pytest.mark.parametrize(("status", "written"), [(7, True), (1, False)])
def test_an_undecodable_integer_matters_only_to_a_record_that_uses_it(
    status, written, customer, make_nas, radius_token, monkeypatch
):
    """Letters for Acct-Session-Time on an Accounting-On, which has no session, are harmless; on a Start they
    make the record malformed. (abonent radius never reads such a value: a four-byte attribute of another length
    is dropped before, as ``dropped_bad_attribute``.)"""
    nas = make_nas("mikrotik", name="bras-1", ip_address="127.0.0.1")
    do_bind_api_token_to_nas(radius_token[0], nas=nas)
    rlm = _rlm({**BASE, "Acct-Status-Type": status})
    rlm["Acct-Session-Time"] = {"type": "integer", "value": ["one"]}
    written_records: list = []
    monkeypatch.setattr(api.accounting, "write_batch", written_records.extend)
    client = Client(headers={"Authorization": f"Bearer {radius_token[1]}"})

    response = client.post("/api/v1/radius/accounting", json.dumps(rlm), content_type="application/json")

    assert bool(written_records) is written
    assert response.status_code == (204 if written else 422)
    if not written:
        assert response.json()["error"]["fields"][0]["field"] == "Acct-Session-Time"


def test_the_accounting_endpoint_takes_a_nul_but_no_lone_surrogate_and_other_endpoints_neither(
    customer, make_nas, radius_token
):
    """The API refuses U+0000 before any view; FreeRADIUS's accounting takes it (stored as U+FFFD, as abonent
    radius stores it), and a lone surrogate beside it is still refused, there as anywhere."""
    nas = make_nas("mikrotik", name="bras-1", ip_address="127.0.0.1")
    do_bind_api_token_to_nas(radius_token[0], nas=nas)
    client = Client(headers={"Authorization": f"Bearer {radius_token[1]}"})
    body = json.dumps(_rlm({**BASE, "Acct-Status-Type": 1, "Acct-Session-Id": "s\x00"}))

    assert client.post("/api/v1/radius/accounting", body, content_type="application/json").status_code == 204
    surrogate = body.replace('"bras-1"', '"bras-\\ud800"')
    refused = client.post("/api/v1/radius/accounting", surrogate, content_type="application/json")
    assert (refused.status_code, refused.json()["error"]["fields"][0]["code"]) == (422, "surrogate_character")
    authorize = client.post("/api/v1/radius/authorize", body, content_type="application/json")
    assert (authorize.status_code, authorize.json()["error"]["fields"][0]["code"]) == (422, "null_character")
    assert Session.objects.get().acct_session_id == "s\ufffd"
