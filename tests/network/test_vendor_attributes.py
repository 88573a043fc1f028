"""Every attribute each NAS profile sends, as exact strings, through the paths that send them (issue 12).

For each registered profile (and accel-ppp's two link kinds): the Access-Accept of a debtor and of a subscriber
over the traffic quota (FreeRADIUS's rlm_rest authorize; ``abonent radius`` renders the same pairs, and the
last test checks Cisco's on the wire with radclient), and the CoA or Disconnect queued for the restrict, the
restore, a plan change, a turbo and the FUP throttle, sent to a NAS stand-in that decodes it.

Cisco's strings are those of Cisco's documentation; the source of each, quoted, is in docs/radius.md
("Cisco ISG"):

- ``ip:sub-qos-policy-in=`` / ``ip:sub-qos-policy-out=`` (per-session QoS policy by name): Cisco 10000 Series
  Router Quality of Service Configuration Guide, "Dynamically Applying QoS Policies to PPP Sessions"
  (``"ip:sub-qos-policy-in=<name of the QoS policy in ingress direction>"``); a CoA per-user push replaces the
  per-user QoS (IOS XE ISG, "Configuring MQC Support for IP Sessions").
- ``subscriber:command=activate-service`` / ``deactivate-service`` with ``subscriber:service-name=<name>``:
  Intelligent Wireless Access Gateway Configuration Guide (IOS XE ISG), "Flow-Based Redirect: Activating and
  Deactivating ... Through Vendor-Specific Attributes"; the same pairs in the Catalyst "RADIUS CoA Commands"
  table.
- ``Cisco-Account-Info`` (VSA 250) in the Access-Accept: IOS XE ISG Configuration Guide, "Configuring ISG
  Accounting" ("RADIUS uses VSA 250 in Access-Accept and VSA 252 in CoA messages"). The ``A`` prefix itself is
  not shown in the pages found (see docs/radius.md).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client

from abonent.api.actions import do_bind_api_token_to_nas
from abonent.billing import actions as billing
from abonent.billing.models import Subscription
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.network import actions as network
from abonent.network.access import sync_access_states
from abonent.network.coa import send_due
from abonent.network.models import CoaKind, CoaReason, CoaRequest, LoginKind, Session, UsageDay
from abonent.network.radius.codec import DICTIONARY
from abonent.network.testing import CoaListener
from abonent.network.vendors import PROFILES

from .conftest import SECRET
from .states import into_debt, pays

GB = 1_000_000_000
MAC = "aa:bb:cc:00:00:07"
DEBTOR_POOL = "debtor-pool"
# What names the session in every CoA and Disconnect-Request (RFC 5176 §3), for every vendor.
SESSION = {"Acct-Session-Id": ["s1"], "Framed-IP-Address": ["100.64.0.7"]}

COA, DISCONNECT = CoaKind.COA, CoaKind.DISCONNECT

# (vendor, login kind) -> event -> what is sent. Accepts: the reply's vendor pairs (all but Session-Timeout,
# Acct-Interim-Interval and Class). Requests: (kind, the attributes besides the session's identity).
# Speeds: plan 102400/51200 kbit/s (down/up), the faster plan 204800/102400, turbo 512000/256000, FUP 1024/512.
EXPECTED: dict[str, dict[str, object]] = {
    "mikrotik": {
        "accept_debtor": {
            "Mikrotik-Rate-Limit": ["51200k/102400k"],
            "Mikrotik-Address-List": ["debtors"],
            "Framed-Pool": [DEBTOR_POOL],
        },
        "accept_fup": {"Mikrotik-Rate-Limit": ["512k/1024k"]},
        "restrict": (DISCONNECT, {}),
        "restore": (DISCONNECT, {}),
        "speed": (COA, {"Mikrotik-Rate-Limit": ["102400k/204800k"]}),
        "speed_debtor": (DISCONNECT, {}),
        "turbo": (COA, {"Mikrotik-Rate-Limit": ["256000k/512000k"]}),
        "fup": (COA, {"Mikrotik-Rate-Limit": ["512k/1024k"]}),
    },
    "accel_ppp": {  # a PPPoE login: accel-ppp takes L4-Redirect by CoA on IPoE only
        "accept_debtor": {"Filter-Id": ["102400/51200"], "L4-Redirect": ["1"], "Framed-Pool": [DEBTOR_POOL]},
        "accept_fup": {"Filter-Id": ["1024/512"]},
        "restrict": (DISCONNECT, {}),
        "restore": (DISCONNECT, {}),
        "speed": (COA, {"Filter-Id": ["204800/102400"]}),
        "speed_debtor": (DISCONNECT, {}),
        "turbo": (COA, {"Filter-Id": ["512000/256000"]}),
        "fup": (COA, {"Filter-Id": ["1024/512"]}),
    },
    "accel_ppp/ipoe": {
        "restrict": (COA, {"L4-Redirect": [1], "Filter-Id": ["102400/51200"]}),
        "restore": (COA, {"L4-Redirect": [0], "Filter-Id": ["102400/51200"]}),
        "speed": (COA, {"Filter-Id": ["204800/102400"]}),
        "speed_debtor": (COA, {"L4-Redirect": [1], "Filter-Id": ["204800/102400"]}),
        "turbo": (COA, {"Filter-Id": ["512000/256000"]}),
        "fup": (COA, {"Filter-Id": ["1024/512"]}),
    },
    "cisco": {
        "accept_debtor": {
            # ISG Configuration Guide, "Configuring ISG Accounting": VSA 250 in the Access-Accept activates a
            # service; Cisco 10000 QoS Configuration Guide: the ip:sub-qos-policy-in/out AV pairs.
            "Cisco-AVPair": ["ip:sub-qos-policy-in=ABONENT-UP-51200K", "ip:sub-qos-policy-out=ABONENT-DOWN-102400K"],
            "Cisco-Account-Info": ["ADEBTORS"],
            "Framed-Pool": [DEBTOR_POOL],
        },
        "accept_fup": {
            "Cisco-AVPair": ["ip:sub-qos-policy-in=ABONENT-UP-512K", "ip:sub-qos-policy-out=ABONENT-DOWN-1024K"]
        },
        # iWAG Configuration Guide, Flow-Based Redirect: vsa cisco generic 1 string
        # "subscriber:command=activate-service" / "subscriber:service-name=<service>" by CoA.
        "restrict": (COA, {"Cisco-AVPair": ["subscriber:command=activate-service", "subscriber:service-name=DEBTORS"]}),
        # The same guide: "subscriber:command=deactivate-service". (Was Cisco-Account-Info "NDEBTORS": no ISG
        # command, the subscriber stayed on the payment page.)
        "restore": (
            COA,
            {"Cisco-AVPair": ["subscriber:command=deactivate-service", "subscriber:service-name=DEBTORS"]},
        ),
        # A per-user CoA push of the QoS policy ("Configuring MQC Support for IP Sessions"), alone: the service
        # command and the QoS policy are separate changes on ISG, a debtor's speed change too.
        "speed": (
            COA,
            {"Cisco-AVPair": ["ip:sub-qos-policy-in=ABONENT-UP-102400K", "ip:sub-qos-policy-out=ABONENT-DOWN-204800K"]},
        ),
        "speed_debtor": (
            COA,
            {"Cisco-AVPair": ["ip:sub-qos-policy-in=ABONENT-UP-102400K", "ip:sub-qos-policy-out=ABONENT-DOWN-204800K"]},
        ),
        "turbo": (
            COA,
            {"Cisco-AVPair": ["ip:sub-qos-policy-in=ABONENT-UP-256000K", "ip:sub-qos-policy-out=ABONENT-DOWN-512000K"]},
        ),
        "fup": (
            COA,
            {"Cisco-AVPair": ["ip:sub-qos-policy-in=ABONENT-UP-512K", "ip:sub-qos-policy-out=ABONENT-DOWN-1024K"]},
        ),
    },
}
CASES = {"mikrotik": ("mikrotik", LoginKind.PPPOE), "accel_ppp": ("accel_ppp", LoginKind.PPPOE)}
CASES |= {"accel_ppp/ipoe": ("accel_ppp", LoginKind.IPOE_MAC), "cisco": ("cisco", LoginKind.PPPOE)}
ACCEPTS = [(case, event) for case, events in EXPECTED.items() for event in events if event.startswith("accept_")]
REQUESTS = [(case, event) for case, events in EXPECTED.items() for event in events if not event.startswith("accept_")]


def test_every_registered_profile_has_its_table():
    assert {vendor for vendor, _kind in CASES.values()} == set(PROFILES)
    for case, events in EXPECTED.items():
        assert set(events) >= {"restrict", "restore", "speed", "speed_debtor", "turbo", "fup"}, case
        if CASES[case][1] == LoginKind.PPPOE:
            assert {"accept_debtor", "accept_fup"} <= set(events), case


def test_the_dictionary_numbers_cisco_attributes_as_freeradius_does():
    # Vendor 9: Cisco-AVPair 1, Cisco-Account-Info 250, Cisco-Command-Code 252 (FreeRADIUS's dictionary.cisco).
    for name, code in (("Cisco-AVPair", 1), ("Cisco-Account-Info", 250), ("Cisco-Command-Code", 252)):
        assert DICTIONARY.attributes[name].vendor == "Cisco"
        assert DICTIONARY.attributes[name].code == code
    assert DICTIONARY.vendors["Cisco"] == 9
    freeradius = Path("/usr/share/freeradius/dictionary.cisco")
    if freeradius.exists():
        lines = {tuple(line.split()[:3]) for line in freeradius.read_text().splitlines() if line.startswith("ATTR")}
        for name, code in (("Cisco-AVPair", 1), ("Cisco-Account-Info", 250), ("Cisco-Command-Code", 252)):
            assert ("ATTRIBUTE", name, str(code)) in lines


# --- the world each event happens in -------------------------------------------------------------------------


@pytest.fixture
def plans(admin, internet):
    turbo = catalog.do_create_turbo(
        code="turbo-500", name="Турбо", download_kbps=512000, upload_kbps=256000, hours=3, price="50.00",
        acting_user=admin,
    )  # fmt: skip
    home = catalog.do_create_plan(
        code="home-100", name="Домашний 100", service=internet, monthly_fee=Decimal("650.00"),
        valid_from=dt.date(2020, 1, 1), download_kbps=102400, upload_kbps=51200,
        included_bytes=50 * GB, fup_download_kbps=1024, fup_upload_kbps=512, acting_user=admin,
    )  # fmt: skip
    home.turbos.add(turbo)
    faster = catalog.do_create_plan(
        code="home-200", name="Домашний 200", service=internet, monthly_fee=Decimal("700.00"),
        valid_from=dt.date(2020, 1, 1), download_kbps=204800, upload_kbps=102400, acting_user=admin,
    )  # fmt: skip
    return home, faster, turbo


def _world(case, make_subscriber, make_nas, plans, admin, coa_port=3799):
    vendor, kind = CASES[case]
    home, _faster, _turbo = plans
    nas = make_nas(vendor, coa_port=coa_port, debtor_pool=DEBTOR_POOL)
    subscriber = make_subscriber()
    billing.do_post_payment(subscriber, amount="1000.00", channel="cash", external_id="c-1", acting_user=admin)
    billing.do_activate_subscription(subscriber, plan=home, acting_user=admin)
    username = MAC if kind == LoginKind.IPOE_MAC else "ivanov"
    password = None if kind == LoginKind.IPOE_MAC else "s3cret-pw"
    login = network.do_create_login(subscriber, acting_user=admin, kind=kind, username=username, password=password)
    return nas, subscriber, login


def _online(nas, subscriber, login) -> Session:
    now = clock.now()
    return Session.objects.create(
        nas=nas, unique_id="u1", acct_session_id="s1", login=login, subscriber=subscriber,
        username=login.username, framed_ip="100.64.0.7", started_at=now, updated_at=now,
    )  # fmt: skip


def _over_quota(subscriber):
    UsageDay.objects.create(subscriber=subscriber, day=clock.today(), input_octets=20 * GB, output_octets=40 * GB)


def _debt(subscriber, admin):
    into_debt(subscriber, admin)


# --- the Access-Accept ----------------------------------------------------------------------------------------


def _authorize(token: str, username: str) -> dict:
    client = Client(headers={"Authorization": f"Bearer {token}"})
    body = {
        "User-Name": {"type": "string", "value": [username]},
        "FreeRADIUS-Client-IP-Address": {"type": "ipaddr", "value": ["127.0.0.1"]},
    }
    response = client.post("/api/v1/radius/authorize", body, content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
@pytest.mark.parametrize(("case", "event"), ACCEPTS)
def test_the_access_accept(case, event, make_subscriber, make_nas, plans, admin, radius_token):
    nas, subscriber, login = _world(case, make_subscriber, make_nas, plans, admin)
    do_bind_api_token_to_nas(radius_token[0], nas=nas)
    {"accept_debtor": _debt, "accept_fup": lambda s, _a: _over_quota(s)}[event](subscriber, admin)

    answer = _authorize(radius_token[1], login.username)

    reply = {name.removeprefix("reply:"): item["value"] for name, item in answer.items() if name.startswith("reply:")}
    for rfc in ("Session-Timeout", "Acct-Interim-Interval", "Class"):
        reply.pop(rfc)
    assert reply == EXPECTED[case][event]


# --- the CoA and Disconnect-Requests -----------------------------------------------------------------------


def _restrict(subscriber, admin, plans):
    _debt(subscriber, admin)
    sync_access_states()


def _restore(subscriber, admin, plans):
    _restrict(subscriber, admin, plans)
    pays(subscriber, admin)
    sync_access_states()


def _plan_change(subscriber, admin, plans):
    _home, faster, _turbo = plans
    billing.do_change_plan(Subscription.objects.get(subscriber=subscriber), plan=faster, acting_user=admin)


def _plan_change_in_debt(subscriber, admin, plans):
    _restrict(subscriber, admin, plans)
    # A debtor's upgrade: staff force it (the balance does not cover it), the speed changes all the same.
    _home, faster, _turbo = plans
    subscription = Subscription.objects.get(subscriber=subscriber)
    billing.do_change_plan(subscription, plan=faster, acting_user=admin, force=True)


def _turbo(subscriber, admin, plans):
    _home, _faster, turbo = plans
    billing.do_activate_turbo(Subscription.objects.get(subscriber=subscriber), turbo=turbo, acting_user=admin)


def _fup(subscriber, admin, plans):
    _over_quota(subscriber)
    network.sync_fup_speeds()


EVENTS = {
    "restrict": (_restrict, CoaReason.RESTRICT),
    "restore": (_restore, CoaReason.RESTORE),
    "speed": (_plan_change, CoaReason.PLAN_CHANGE),
    "speed_debtor": (_plan_change_in_debt, CoaReason.PLAN_CHANGE),
    "turbo": (_turbo, CoaReason.TURBO_ON),
    "fup": (_fup, CoaReason.FUP),
}


@pytest.mark.django_db
@pytest.mark.parametrize(("case", "event"), REQUESTS)
def test_the_request_to_the_nas(
    case, event, make_subscriber, make_nas, plans, admin, django_capture_on_commit_callbacks
):
    listener = CoaListener(SECRET)
    try:
        nas, subscriber, login = _world(case, make_subscriber, make_nas, plans, admin, coa_port=listener.port)
        _online(nas, subscriber, login)
        happen, reason = EVENTS[event]
        with django_capture_on_commit_callbacks(execute=True):
            happen(subscriber, admin, plans)

        request = CoaRequest.objects.filter(reason=reason).latest("id")
        kind, changes = EXPECTED[case][event]
        identity = {"User-Name": [login.username], **SESSION}
        assert (request.kind, request.attributes) == (kind, {**identity, **changes})

        # and the NAS receives exactly that, decoded with the dictionary (every attribute sent is defined in it)
        CoaRequest.objects.exclude(pk=request.pk).delete()
        assert send_due() == {"acked": 1}
        assert listener.received[-1]["authentic"]
        assert listener.received[-1]["attributes"] == {**identity, **changes}
    finally:
        listener.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_abonent_radius_sends_ciscos_accept_as_freeradius_reads_it(
    make_subscriber, make_nas, plans, admin, server, radclient
):
    # abonent radius encodes with its dictionary, radclient decodes with FreeRADIUS's: the vendor numbers agree.
    _nas, subscriber, _login = _world("cisco", make_subscriber, make_nas, plans, admin)
    _debt(subscriber, admin)
    pap = 'User-Name = "ivanov"\nUser-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n'
    with server() as running:
        answer = radclient(running.auth_port, SECRET, "auth", pap)
    assert "Access-Accept" in answer.stdout, answer.stdout + answer.stderr
    for pair in (
        'Cisco-AVPair = "ip:sub-qos-policy-in=ABONENT-UP-51200K"',
        'Cisco-AVPair = "ip:sub-qos-policy-out=ABONENT-DOWN-102400K"',
        'Cisco-Account-Info = "ADEBTORS"',
        f'Framed-Pool = "{DEBTOR_POOL}"',
    ):
        assert pair in answer.stdout, answer.stdout
