"""Access-Requests from FreeRADIUS's radclient against our server: the real peer, real packets."""

import os

import pytest

from abonent.network.models import AuthAttempt, RejectReason
from abonent.network.radius import auth

from .conftest import SECRET

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("radius")]

PAP = 'User-Name = "ivanov"\nUser-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n'


def test_pap_accept_has_mikrotik_speed_and_message_authenticator_first(customer, make_nas, server, radclient):
    make_nas("mikrotik")
    with server() as running:
        result = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr
    assert 'Mikrotik-Rate-Limit = "51200k/102400k"' in result.stdout
    assert "Acct-Interim-Interval = 300" in result.stdout
    assert "Class = " in result.stdout
    # radclient prints the reply's attributes in order: Message-Authenticator first (BlastRADIUS).
    attributes = [
        line.strip() for line in result.stdout.split("Received Access-Accept", 1)[1].splitlines()[1:] if "=" in line
    ]
    assert attributes[0].startswith("Message-Authenticator")


def test_pap_accept_for_accel_ppp_uses_filter_id_down_up(customer, make_nas, server, radclient):
    make_nas("accel_ppp")
    with server() as running:
        result = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr
    assert 'Filter-Id = "102400/51200"' in result.stdout


def test_wrong_password_is_rejected_and_the_reason_kept(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        result = radclient(running.auth_port, SECRET, "auth", PAP.replace("s3cret-pw", "guess"))
        assert running.counter("rejects_bad_password") == 1
    assert "Received Access-Reject" in result.stdout
    attempt = AuthAttempt.objects.get()
    assert (attempt.reason, attempt.subscriber_id) == (RejectReason.BAD_PASSWORD, customer.pk)


def test_a_request_for_the_nas_console_is_refused_even_with_the_right_password(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        console = radclient(running.auth_port, SECRET, "auth", PAP + "Service-Type = Administrative-User\n")
        prompt = radclient(running.auth_port, SECRET, "auth", PAP + "Service-Type = NAS-Prompt-User\n")
        # A hotspot login (MikroTik sends Login-User for it) and a PPP one are internet access.
        hotspot = radclient(running.auth_port, SECRET, "auth", PAP + "Service-Type = Login-User\n")
        framed = radclient(running.auth_port, SECRET, "auth", PAP + "Service-Type = Framed-User\n")
        assert running.counter("rejects_nas_management") == 2
    assert "Received Access-Reject" in console.stdout, console.stdout + console.stderr
    assert "Received Access-Reject" in prompt.stdout
    assert "Received Access-Accept" in hotspot.stdout
    assert "Received Access-Accept" in framed.stdout
    reasons = list(AuthAttempt.objects.values_list("reason", "subscriber_id"))
    assert reasons == [(RejectReason.NAS_MANAGEMENT, customer.pk)] * 2


def test_chap(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        result = radclient(
            running.auth_port,
            SECRET,
            "auth",
            'User-Name = "ivanov"\nCHAP-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n',
        )
        wrong = radclient(
            running.auth_port,
            SECRET,
            "auth",
            'User-Name = "ivanov"\nCHAP-Password = "nope"\nMessage-Authenticator = 0x00\n',
        )
    assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr
    assert "Received Access-Reject" in wrong.stdout


def _mschap2(password: str, username: str = "ivanov") -> tuple[str, str, bytes]:
    """What a PPPoE client computes (RFC 2759), as radclient attributes, plus the expected success."""
    authenticator_challenge, peer_challenge = os.urandom(16), os.urandom(16)
    chash = auth.challenge_hash(peer_challenge, authenticator_challenge, username)
    password_hash = auth.nt_password_hash(password)
    nt = auth.nt_response(chash, password_hash)
    response = b"\x07\x00" + peer_challenge + b"\x00" * 8 + nt
    expected = b"\x07" + auth.authenticator_response(password_hash, nt, chash)
    return "0x" + authenticator_challenge.hex(), "0x" + response.hex(), expected


def test_mschapv2_answers_with_ms_chap2_success(customer, make_nas, server, radclient):
    make_nas()
    challenge, response, expected = _mschap2("s3cret-pw")
    _c, wrong, _e = _mschap2("not-the-password")
    packet = 'User-Name = "ivanov"\nMS-CHAP-Challenge = {c}\nMS-CHAP2-Response = {r}\nMessage-Authenticator = 0x00\n'
    with server() as running:
        result = radclient(running.auth_port, SECRET, "auth", packet.format(c=challenge, r=response))
        rejected = radclient(running.auth_port, SECRET, "auth", packet.format(c=challenge, r=wrong))
    assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr
    assert f"MS-CHAP2-Success = 0x{expected.hex()}" in result.stdout
    assert "Received Access-Reject" in rejected.stdout
    # RFC 2759 §6: the reject says why (error 691), for the client to show, with the request's ident.
    ident = int(wrong[2:4], 16)
    assert f'MS-CHAP-Error = "{chr(ident)}E=691 R=0 C={challenge[2:].upper()} V=3' in rejected.stdout or (
        "MS-CHAP-Error = " in rejected.stdout and "E=691 R=0 C=" in rejected.stdout
    ), rejected.stdout


def test_mschapv1_from_radclient(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        result = radclient(
            running.auth_port,
            SECRET,
            "auth",
            'User-Name = "ivanov"\nMS-CHAP-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n',
        )
    assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr


def test_missing_message_authenticator_is_dropped(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        result = radclient(
            running.auth_port, SECRET, "auth", 'User-Name = "ivanov"\nUser-Password = "s3cret-pw"\n', timeout=0.5
        )
        assert running.counter("dropped_missing_message_authenticator") >= 1
    assert "Received Access-Accept" not in result.stdout


def test_a_nas_may_be_allowed_to_omit_message_authenticator(customer, make_nas, server, radclient):
    make_nas(require_message_authenticator=False)
    with server() as running:
        result = radclient(running.auth_port, SECRET, "auth", 'User-Name = "ivanov"\nUser-Password = "s3cret-pw"\n')
    assert "Received Access-Accept" in result.stdout


def test_wrong_secret_is_dropped(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        result = radclient(running.auth_port, "another-secret-entirely", "auth", PAP, timeout=0.5)
        assert running.counter("dropped_bad_message_authenticator") >= 1
    assert "Received" not in result.stdout


def test_debtor_gets_the_redirect(customer, make_nas, server, radclient, admin):
    from .states import into_debt

    into_debt(customer, admin)  # restricted
    make_nas()
    with server() as running:
        result = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Accept" in result.stdout
    assert 'Mikrotik-Address-List = "debtors"' in result.stdout


def test_a_suspended_subscriber_is_rejected_and_the_state_is_the_reason(customer, make_nas, server, radclient, admin):
    from abonent.dunning.models import AccessStateKind

    from .states import into_debt

    into_debt(customer, admin, state=AccessStateKind.SUSPENDED)
    make_nas()
    with server() as running:
        result = radclient(running.auth_port, SECRET, "auth", PAP)
        assert running.counter("rejects_suspended") == 1
    assert "Received Access-Reject" in result.stdout, result.stdout + result.stderr
    assert list(AuthAttempt.objects.values_list("reason", "subscriber_id")) == [(RejectReason.SUSPENDED, customer.pk)]


def test_a_debtor_with_a_static_address_goes_to_the_debtor_pool(customer, make_nas, server, radclient, admin):
    from abonent.network import actions as network
    from abonent.network.models import Login

    from .states import into_debt

    network.do_update_login(Login.objects.get(username="ivanov"), acting_user=admin, static_ip="10.0.0.21")
    make_nas("accel_ppp", debtor_pool="debt-pool")
    with server() as running:
        paying = radclient(running.auth_port, SECRET, "auth", PAP)
    into_debt(customer, admin)
    with server() as running:
        debtor = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Framed-IP-Address = 10.0.0.21" in paying.stdout, paying.stdout + paying.stderr
    # The NAS prefers a Framed-IP-Address to a pool: with both, the debtor would keep browsing.
    assert 'Framed-Pool = "debt-pool"' in debtor.stdout, debtor.stdout + debtor.stderr
    assert "Framed-IP-Address" not in debtor.stdout.split("Received", 1)[1]


def test_ipoe_by_mac_and_a_ppp_client_copying_that_mac(customer, make_nas, server, radclient, admin):
    from abonent.network import actions as network
    from abonent.network.models import LoginKind

    network.do_create_login(customer, acting_user=admin, kind=LoginKind.IPOE_MAC, username="AA-BB-CC-DD-EE-FF")
    make_nas("accel_ppp")
    ipoe = 'User-Name = "aa:bb:cc:dd:ee:ff"\nUser-Password = "ipoe"\nMessage-Authenticator = 0x00\n'
    ppp = (
        'User-Name = "made-up"\nUser-Password = "anything"\nCalling-Station-Id = "aa:bb:cc:dd:ee:ff"\n'
        "Framed-Protocol = PPP\nMessage-Authenticator = 0x00\n"
    )
    with server() as running:
        accepted = radclient(running.auth_port, SECRET, "auth", ipoe)
        spoofed = radclient(running.auth_port, SECRET, "auth", ppp)
    assert "Received Access-Accept" in accepted.stdout, accepted.stdout + accepted.stderr
    # A PPP session is only ever a password login: a copied MAC does not let a stranger in.
    assert "Received Access-Reject" in spoofed.stdout


def _ipoe_subscriber(customer, admin):
    from abonent.network import actions as network
    from abonent.network.models import LoginKind

    network.do_create_login(customer, acting_user=admin, kind=LoginKind.IPOE_MAC, username="AA-BB-CC-DD-EE-23")
    network.do_create_login(customer, acting_user=admin, kind=LoginKind.IPOE_MAC, username="00:E1:0C:38:C8:F8")
    network.do_create_login(customer, acting_user=admin, kind=LoginKind.IPOE_MAC, username="a0:e1:0c:38:c8:f8")
    network.do_create_login(customer, acting_user=admin, kind=LoginKind.IPOE_OPT82, username="0106000400010018")


@pytest.mark.parametrize(
    "typed",
    [
        # A hotspot login page (MikroTik sends Service-Type = Login-User): the subscriber types the name.
        'User-Name = "aa:bb:cc:dd:ee:23"\nService-Type = Login-User\nCalling-Station-Id = "02:00:00:00:00:99"\n',
        'User-Name = "0106000400010018"\nService-Type = Login-User\nCalling-Station-Id = "02:00:00:00:00:99"\n',
        'User-Name = "aa:bb:cc:dd:ee:23"\nService-Type = Login-User\n',
        # Anywhere: a MAC as the name, while the NAS reports another device's MAC, or a caller that is no MAC.
        'User-Name = "aa:bb:cc:dd:ee:23"\nCalling-Station-Id = "02:00:00:00:00:99"\n',
        'User-Name = "aa:bb:cc:dd:ee:23"\nCalling-Station-Id = "203.0.113.5"\n',
    ],
    ids=["hotspot-mac", "hotspot-option82", "hotspot-mac-no-station", "mac-of-another-device", "caller-no-mac"],
)
def test_a_typed_name_never_opens_an_ipoe_login(customer, make_nas, server, radclient, admin, typed):
    _ipoe_subscriber(customer, admin)
    make_nas("mikrotik")
    with server() as running:
        result = radclient(
            running.auth_port, SECRET, "auth", typed + 'User-Password = "anything"\nMessage-Authenticator = 0x00\n'
        )
    assert "Received Access-Reject" in result.stdout, result.stdout + result.stderr
    assert list(AuthAttempt.objects.values_list("reason", flat=True)) == [RejectReason.UNKNOWN_LOGIN]


@pytest.mark.parametrize(
    "network",
    [
        # MikroTik hotspot MAC authentication: the name is the MAC the NAS itself reports.
        'User-Name = "AA:BB:CC:DD:EE:23"\nService-Type = Login-User\nCalling-Station-Id = "AA:BB:CC:DD:EE:23"\n',
        # MikroTik's DHCP server: the MAC as the name, Calling-Station-Id its client id (type 1 + MAC, as
        # RouterOS prints octets: no leading zeros).
        'User-Name = "AA:BB:CC:DD:EE:23"\nCalling-Station-Id = "1:aa:bb:cc:dd:ee:23"\n',
        'User-Name = "00:E1:0C:38:C8:F8"\nCalling-Station-Id = "1:0:e1:c:38:c8:f8"\n',
        # One short octet: twelve hex digits in all, which must not be read as another MAC.
        'User-Name = "A0:E1:0C:38:C8:F8"\nCalling-Station-Id = "1:a0:e1:c:38:c8:f8"\n',
        # A client id that is a DUID (RFC 4361, systemd-networkd's default) or a host name: the name stands.
        'User-Name = "00:E1:0C:38:C8:F8"\nCalling-Station-Id = "ff:b6:22:a:5b:0:2:0:0:ab:11:d2:5e:3f:8c:1a:2b:3c"\n',
        'User-Name = "00:E1:0C:38:C8:F8"\nCalling-Station-Id = "myhost"\n',
        # accel-ppp IPoE: the MAC in Calling-Station-Id, the name whatever `username=` makes it.
        'User-Name = "eth1.100"\nCalling-Station-Id = "aa:bb:cc:dd:ee:23"\n',
    ],
    ids=[
        "hotspot-mac-auth",
        "mikrotik-dhcp",
        "mikrotik-dhcp-unpadded",
        "mikrotik-dhcp-one-short-octet",
        "mikrotik-dhcp-duid",
        "mikrotik-dhcp-host-name",
        "accel-ppp-ipoe",
    ],
)
def test_what_the_network_reports_still_opens_an_ipoe_login(customer, make_nas, server, radclient, admin, network):
    _ipoe_subscriber(customer, admin)
    make_nas("mikrotik")
    with server() as running:
        result = radclient(
            running.auth_port, SECRET, "auth", network + 'User-Password = ""\nMessage-Authenticator = 0x00\n'
        )
    assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr


def test_simultaneous_use_rejects_a_second_session_until_the_first_stops(customer, make_nas, server, radclient):
    from abonent.core import clock
    from abonent.network.accounting import unique_session_id
    from abonent.network.models import Login, Session

    nas = make_nas()
    login = Login.objects.get(username="ivanov")
    now = clock.now()
    Session.objects.create(
        nas=nas,
        unique_id=unique_session_id("ivanov", "first", "127.0.0.1", "", "", ""),
        acct_session_id="first",
        login=login,
        subscriber=customer,
        username="ivanov",
        started_at=now,
        updated_at=now,
    )
    stop = 'User-Name = "ivanov"\nAcct-Status-Type = Stop\nAcct-Session-Id = "first"\nNAS-IP-Address = 127.0.0.1\n'
    with server() as running:
        second = radclient(running.auth_port, SECRET, "auth", PAP)
        stopped = radclient(running.acct_port, SECRET, "acct", stop)
        again = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Reject" in second.stdout
    assert "Received Accounting-Response" in stopped.stdout
    # The Stop frees the login at once, not at the next re-read of the sets.
    assert "Received Access-Accept" in again.stdout
    assert AuthAttempt.objects.filter(reason=RejectReason.TOO_MANY_SESSIONS).count() == 1


def test_a_start_puts_a_single_session_login_at_its_limit_at_once(customer, make_nas, server, radclient):
    make_nas()
    start = 'User-Name = "ivanov"\nAcct-Status-Type = Start\nAcct-Session-Id = "one"\nNAS-IP-Address = 127.0.0.1\n'
    with server() as running:
        first = radclient(running.auth_port, SECRET, "auth", PAP)
        started = radclient(running.acct_port, SECRET, "acct", start)
        second = radclient(running.auth_port, SECRET, "auth", PAP)
        stopped = radclient(running.acct_port, SECRET, "acct", start.replace("Start", "Stop"))
        again = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Accept" in first.stdout, first.stdout + first.stderr
    assert "Received Accounting-Response" in started.stdout and "Received Accounting-Response" in stopped.stdout
    # Refused right after the Start, well before the next re-read of the sets (15 s).
    assert "Received Access-Reject" in second.stdout
    assert "Received Access-Accept" in again.stdout


def _acct(status: str, session_id: str) -> str:
    return (
        f'User-Name = "ivanov"\nAcct-Status-Type = {status}\nAcct-Session-Id = "{session_id}"\n'
        "NAS-IP-Address = 127.0.0.1\n"
    )


def test_a_stop_for_another_session_keeps_the_login_at_its_limit(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        radclient(running.acct_port, SECRET, "acct", _acct("Start", "open-one"))
        # A Stop for an older session (late, or the sweeper's) says nothing about the one still open.
        radclient(running.acct_port, SECRET, "acct", _acct("Stop", "older-one"))
        second = radclient(running.auth_port, SECRET, "auth", PAP)
        radclient(running.acct_port, SECRET, "acct", _acct("Stop", "open-one"))
        after_its_stop = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Reject" in second.stdout, second.stdout + second.stderr
    assert "Received Access-Accept" in after_its_stop.stdout


def test_a_late_start_after_its_own_stop_opens_nothing(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        radclient(running.acct_port, SECRET, "acct", _acct("Stop", "reordered"))
        radclient(running.acct_port, SECRET, "acct", _acct("Start", "reordered"))
        result = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr


def test_a_limit_above_one_is_reached_at_once(customer, make_nas, server, radclient, admin):
    from abonent.network import actions as network
    from abonent.network.models import Login

    network.do_update_login(Login.objects.get(username="ivanov"), acting_user=admin, simultaneous_use=2)
    make_nas()
    with server() as running:
        radclient(running.acct_port, SECRET, "acct", _acct("Start", "one"))
        second = radclient(running.auth_port, SECRET, "auth", PAP)
        radclient(running.acct_port, SECRET, "acct", _acct("Start", "two"))
        third = radclient(running.auth_port, SECRET, "auth", PAP)
        radclient(running.acct_port, SECRET, "acct", _acct("Stop", "two"))
        again = radclient(running.auth_port, SECRET, "auth", PAP)
    assert "Received Access-Accept" in second.stdout, second.stdout + second.stderr
    assert "Received Access-Reject" in third.stdout, third.stdout
    assert "Received Access-Accept" in again.stdout


@pytest.mark.parametrize(
    ("stored", "sent", "accepted"),
    [
        # accel-ppp's DHCP-Option82 (245): the whole option as the relay put it.
        ("0106000400010018", "Attr-245 = 0x0106000400010018", True),
        # The relay adds a Remote ID after the Circuit ID; the login names the port only.
        ("0106000400010018", "Attr-245 = 0x01060004000100180208001122334455667788", True),
        # RFC 4679 (a Cisco or Juniper BNG): the sub-options as attributes of their own.
        ("0106000400010018", "ADSL-Agent-Circuit-Id = 0x000400010018", True),
        (
            "01060004000100180203aabbcc",
            "ADSL-Agent-Circuit-Id = 0x000400010018\nADSL-Agent-Remote-Id = 0xaabbcc",
            True,
        ),
        # The relay adds a sub-option after Circuit ID and Remote ID (RFC 4243's vendor options).
        ("01060004000100180203aabbcc", "Attr-245 = 0x01060004000100180203aabbcc090378797a", True),
        # A login naming port and switch is not opened by the same port of another switch.
        ("01060004000100180203aabbcc", "Attr-245 = 0x01060004000100180203ddeeff", False),
    ],
    ids=[
        "whole-option",
        "circuit-of-a-longer-option",
        "rfc4679-circuit",
        "rfc4679-circuit-and-remote",
        "circuit-and-remote-of-a-longer-option",
        "other-switch",
    ],
)
def test_ipoe_by_option_82(customer, make_nas, server, radclient, admin, stored, sent, accepted):
    from abonent.network import actions as network
    from abonent.network.models import LoginKind

    network.do_create_login(customer, acting_user=admin, kind=LoginKind.IPOE_OPT82, username=stored)
    make_nas("accel_ppp")
    request = f'User-Name = "eth1.100"\n{sent}\nUser-Password = ""\nMessage-Authenticator = 0x00\n'
    with server() as running:
        result = radclient(running.auth_port, SECRET, "auth", request)
    expected = "Received Access-Accept" if accepted else "Received Access-Reject"
    assert expected in result.stdout, result.stdout + result.stderr
