"""FreeRADIUS in front of Abonent: Debian's freeradius with rlm_rest and our deploy/freeradius/ config, asking
the API of a live Django server, and radclient as the NAS. The shipped module and site are used as they are;
only the ports and the listen address are changed.

The last tests call the endpoints directly (rlm_rest's JSON shapes, permissions, unknown NAS); who may call
them, and for which NAS, is in test_radius_rest_access.py.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from abonent.api.actions import do_bind_api_token_to_nas
from abonent.network.models import AuthAttempt, AuthOutcome, RejectReason, Session, SessionStatus
from abonent.network.radius import auth
from abonent.network.testing import RADCLIENT
from abonent.staff.actions import do_create_api_token
from abonent.staff.permissions import Role

from .conftest import SECRET

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "freeradius"
FREERADIUS = shutil.which("freeradius") or shutil.which("radiusd") or shutil.which("freeradius", path="/usr/sbin")
LIBDIR = Path("/usr/lib/freeradius")


def _why_not() -> str:
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return "FreeRADIUS against a live server needs committed data on PostgreSQL (transactional tests)"
    if FREERADIUS is None:
        return "freeradius is not installed (apt-get install freeradius)"
    if not (LIBDIR / "rlm_rest.so").exists():
        return "FreeRADIUS's rlm_rest is not installed (apt-get install freeradius-rest)"
    if RADCLIENT is None:
        return "radclient is not installed (apt-get install freeradius-utils)"
    return ""


FREERADIUS_MARKS = (
    pytest.mark.skipif(bool(_why_not()), reason=_why_not() or "-"),
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("radius"),
)


def freeradius_test(func):
    for mark in FREERADIUS_MARKS:
        func = mark(func)
    return func


PAP = 'User-Name = "ivanov"\nUser-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n'
RATE = 'Mikrotik-Rate-Limit = "51200k/102400k"'


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(directory: Path, auth_port: int, acct_port: int) -> None:
    """A minimal radiusd.conf, the client, pap/chap/mschap, and our module and site from deploy/freeradius/."""
    for sub in ("mods-enabled", "sites-enabled", "log", "run"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (directory / "radiusd.conf").write_text(
        f"""
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {directory}
sbindir = /usr/sbin
logdir = {directory}/log
raddbdir = {directory}
radacctdir = {directory}/log
name = freeradius
confdir = {directory}
modconfdir = {directory}/mods-config
certdir = {directory}
cadir = {directory}
run_dir = {directory}/run
db_dir = {directory}
libdir = {LIBDIR}
pidfile = {directory}/run/freeradius.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
proxy_requests = no
log {{
	destination = stdout
	colourise = no
	stripped_names = no
	auth = no
}}
security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}}
thread pool {{
	start_servers = 2
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 2
	max_requests_per_server = 0
}}
client test-nas {{
	ipaddr = 127.0.0.1
	secret = {SECRET}
	require_message_authenticator = yes
}}
modules {{
	$INCLUDE mods-enabled/
}}
instantiate {{
}}
policy {{
}}
$INCLUDE sites-enabled/
""",
        encoding="utf-8",
    )
    (directory / "dictionary").write_text("", encoding="utf-8")  # FreeRADIUS's own dictionaries only
    (directory / "mods-enabled" / "pap").write_text("pap {\n\tnormalise = yes\n}\n", encoding="utf-8")
    (directory / "mods-enabled" / "chap").write_text("chap {\n}\n", encoding="utf-8")
    (directory / "mods-enabled" / "mschap").write_text("mschap {\n\tuse_mppe = no\n}\n", encoding="utf-8")
    shutil.copy(DEPLOY / "mods-available" / "abonent_rest", directory / "mods-enabled" / "abonent_rest")
    site = (DEPLOY / "sites-available" / "abonent").read_text(encoding="utf-8")
    for old, new in (
        ("ipaddr = *", "ipaddr = 127.0.0.1"),
        ("port = 1812", f"port = {auth_port}"),
        ("port = 1813", f"port = {acct_port}"),
    ):
        assert old in site, old
        site = site.replace(old, new)
    (directory / "sites-enabled" / "abonent").write_text(site, encoding="utf-8")


class FreeRadius:
    def __init__(self, directory: Path, auth_port: int, acct_port: int, process: subprocess.Popen, log: Path):
        self.directory, self.auth_port, self.acct_port = directory, auth_port, acct_port
        self.process, self.log = process, log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def send(self, kind: str, attributes: str, *, timeout: float = 5.0) -> str:
        port = self.auth_port if kind == "auth" else self.acct_port
        result = subprocess.run(
            [RADCLIENT, "-x", "-r", "1", "-t", str(timeout), f"127.0.0.1:{port}", kind, SECRET],
            input=attributes,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout + result.stderr


@pytest.fixture
def make_nas(make_nas, radius_token):
    """Each NAS the test makes is bound to FreeRADIUS's service token, as ``abonent create_radius_token`` does."""

    def make(vendor="mikrotik", **fields):
        nas = make_nas(vendor, **fields)
        do_bind_api_token_to_nas(radius_token[0], nas=nas)
        return nas

    return make


@pytest.fixture
def service_token(radius_token) -> str:
    return radius_token[1]


@pytest.fixture
def freeradius(tmp_path, live_server, service_token):
    """Start FreeRADIUS after the test's data exists; ``start()`` returns it, stopped at the end."""
    started: list[FreeRadius] = []

    def start() -> FreeRadius:
        directory = tmp_path / "raddb"
        auth_port, acct_port = _free_udp_port(), _free_udp_port()
        write_config(directory, auth_port, acct_port)
        log = tmp_path / "freeradius.log"
        env = {**os.environ, "ABONENT_API_URL": live_server.url, "ABONENT_API_TOKEN": service_token}
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [FREERADIUS, "-X", "-d", str(directory)], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        running = FreeRadius(directory, auth_port, acct_port, process, log)
        started.append(running)
        deadline = time.monotonic() + 30
        while "Ready to process requests" not in running.output():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("FreeRADIUS did not start:\n" + running.output()[-4000:])
            time.sleep(0.1)
        return running

    yield start
    for running in started:
        running.process.terminate()
        try:
            running.process.wait(10)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait(10)


def _mschap2(password: str, username: str = "ivanov") -> tuple[str, str, bytes]:
    """What a PPPoE client computes (RFC 2759), as radclient attributes, plus the expected MS-CHAP2-Success."""
    authenticator_challenge, peer_challenge = os.urandom(16), os.urandom(16)
    chash = auth.challenge_hash(peer_challenge, authenticator_challenge, username)
    password_hash = auth.nt_password_hash(password)
    nt = auth.nt_response(chash, password_hash)
    response = b"\x07\x00" + peer_challenge + b"\x00" * 8 + nt
    expected = b"\x07" + auth.authenticator_response(password_hash, nt, chash)
    return "0x" + authenticator_challenge.hex(), "0x" + response.hex(), expected


# --- through FreeRADIUS ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("customer")
@freeradius_test
def test_pap_chap_and_mschap_are_accepted_with_our_speed(make_nas, freeradius):
    make_nas("mikrotik")
    radius = freeradius()
    challenge, response, expected = _mschap2("s3cret-pw")
    answers = {
        "pap": radius.send("auth", PAP),
        "chap": radius.send(
            "auth", 'User-Name = "ivanov"\nCHAP-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n'
        ),
        "mschap1": radius.send(
            "auth", 'User-Name = "ivanov"\nMS-CHAP-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n'
        ),
        "mschap2": radius.send(
            "auth",
            f'User-Name = "ivanov"\nMS-CHAP-Challenge = {challenge}\nMS-CHAP2-Response = {response}\n'
            "Message-Authenticator = 0x00\n",
        ),
    }
    for kind, answer in answers.items():
        assert "Received Access-Accept" in answer, f"{kind}:\n{answer}\n{radius.output()[-3000:]}"
        assert RATE in answer, kind
        assert "Acct-Interim-Interval = 300" in answer, kind
        assert "Class = 0x" + b"abonent:".hex() in answer, kind
        assert "Cleartext-Password" not in answer.split("Received", 1)[1], kind  # stays in FreeRADIUS
    # FreeRADIUS's mschap module computes the same MS-CHAP2-Success as abonent radius does.
    assert f"MS-CHAP2-Success = 0x{expected.hex()}" in answers["mschap2"]
    assert not AuthAttempt.objects.exists()


@pytest.mark.usefixtures("customer")
@freeradius_test
def test_wrong_password_and_unknown_login_are_rejected_and_kept(customer, make_nas, freeradius):
    make_nas("mikrotik")
    radius = freeradius()
    wrong = radius.send("auth", PAP.replace("s3cret-pw", "guess"))
    challenge, _response, _expected = _mschap2("s3cret-pw")
    _c, bad_mschap, _e = _mschap2("not-the-password")
    wrong_mschap = radius.send(
        "auth",
        f'User-Name = "ivanov"\nMS-CHAP-Challenge = {challenge}\nMS-CHAP2-Response = {bad_mschap}\n'
        "Message-Authenticator = 0x00\n",
    )
    unknown = radius.send("auth", PAP.replace("ivanov", "nobody"))
    for answer in (wrong, wrong_mschap, unknown):
        assert "Received Access-Reject" in answer, answer + radius.output()[-3000:]
        rejected = answer.split("Received Access-Reject", 1)[1]
        assert "Mikrotik-Rate-Limit" not in rejected and "Class" not in rejected  # no accept's attributes
    attempts = list(
        AuthAttempt.objects.order_by("created_at", "id").values_list("username", "outcome", "reason", "subscriber_id")
    )
    assert attempts == [
        ("ivanov", AuthOutcome.REJECT, RejectReason.BAD_PASSWORD, customer.pk),
        ("ivanov", AuthOutcome.REJECT, RejectReason.BAD_PASSWORD, customer.pk),
        ("nobody", AuthOutcome.REJECT, RejectReason.UNKNOWN_LOGIN, None),
    ]


@freeradius_test
def test_abonent_decisions_reject_and_the_debtor_redirect(customer, make_nas, freeradius, admin):
    from abonent.network import actions as network
    from abonent.network.models import Login

    from .states import into_debt

    make_nas("mikrotik")
    network.do_update_login(Login.objects.get(username="ivanov"), acting_user=admin, is_active=False)
    into_debt(customer, admin)
    radius = freeradius()
    disabled = radius.send("auth", PAP)
    assert "Received Access-Reject" in disabled, disabled + radius.output()[-3000:]
    network.do_update_login(Login.objects.get(username="ivanov"), acting_user=admin, is_active=True)
    debtor = radius.send("auth", PAP)
    assert "Received Access-Accept" in debtor, debtor + radius.output()[-3000:]
    assert 'Mikrotik-Address-List = "debtors"' in debtor
    assert RATE in debtor
    attempts = list(AuthAttempt.objects.order_by("created_at", "id").values_list("outcome", "reason"))
    assert attempts == [(AuthOutcome.REJECT, RejectReason.LOGIN_DISABLED), (AuthOutcome.RESTRICTED, "")]


@freeradius_test
def test_accounting_start_and_stop_write_our_session(customer, make_nas, freeradius):
    make_nas("mikrotik")
    radius = freeradius()
    accept = radius.send("auth", PAP)
    class_value = re.search(r"Class = (0x[0-9a-f]+)", accept).group(1)
    common = (
        'User-Name = "ivanov"\nAcct-Session-Id = "81a00001"\nNAS-IP-Address = 127.0.0.1\nNAS-Port = 15\n'
        f'Framed-IP-Address = 10.20.0.7\nCalling-Station-Id = "00:11:22:33:44:55"\nClass = {class_value}\n'
    )
    start = radius.send("acct", common + "Acct-Status-Type = Start\n")
    assert "Received Accounting-Response" in start, start + radius.output()[-3000:]
    session = Session.objects.get()
    assert (session.status, session.subscriber_id, session.username) == (SessionStatus.OPEN, customer.pk, "ivanov")
    assert session.framed_ip == "10.20.0.7"
    stop = radius.send(
        "acct",
        common
        + "Acct-Status-Type = Stop\nAcct-Session-Time = 600\nAcct-Input-Octets = 1000\nAcct-Input-Gigawords = 1\n"
        "Acct-Output-Octets = 5000\nAcct-Terminate-Cause = User-Request\n",
    )
    assert "Received Accounting-Response" in stop, stop + radius.output()[-3000:]
    session = Session.objects.get()
    assert session.status != SessionStatus.OPEN
    assert session.stopped_at is not None
    assert (session.input_octets, session.output_octets) == ((1 << 32) | 1000, 5000)
    assert session.terminate_cause == "User-Request"
    assert session.login.username == "ivanov"


# --- the endpoints directly -----------------------------------------------------------------------------


def _rlm(**attributes) -> dict:
    return {name.replace("_", "-"): {"type": "string", "value": [value]} for name, value in attributes.items()}


@pytest.mark.django_db
def test_authorize_answers_in_rlm_rest_shape_without_xlat(customer, make_nas, service_token):
    make_nas("accel_ppp")
    client = Client(headers={"Authorization": f"Bearer {service_token}"})
    response = client.post(
        "/api/v1/radius/authorize",
        _rlm(User_Name="ivanov", FreeRADIUS_Client_IP_Address="127.0.0.1"),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["control:Cleartext-Password"] == {"value": ["s3cret-pw"], "op": ":=", "do_xlat": False}
    assert body["reply:Filter-Id"]["value"] == ["102400/51200"]
    assert body["reply:Session-Timeout"]["op"] == ":="


@pytest.mark.django_db
def test_authorize_refuses_the_nas_console_before_the_password(customer, make_nas, service_token):
    make_nas("mikrotik")
    client = Client(headers={"Authorization": f"Bearer {service_token}"})
    response = client.post(
        "/api/v1/radius/authorize",
        _rlm(User_Name="ivanov", Service_Type="Administrative-User", FreeRADIUS_Client_IP_Address="127.0.0.1"),
        content_type="application/json",
    )
    assert response.status_code == 401, response.content
    assert [f["code"] for f in response.json()["error"]["fields"]] == [RejectReason.NAS_MANAGEMENT]
    assert "Cleartext-Password" not in response.content.decode()
    assert list(AuthAttempt.objects.values_list("reason", flat=True)) == [RejectReason.NAS_MANAGEMENT]


@pytest.mark.django_db
def test_authorize_never_opens_an_ipoe_login_by_a_typed_name(customer, make_nas, service_token, admin):
    from abonent.network import actions as network
    from abonent.network.models import LoginKind

    network.do_create_login(customer, acting_user=admin, kind=LoginKind.IPOE_MAC, username="aa:bb:cc:dd:ee:23")
    make_nas("mikrotik")
    client = Client(headers={"Authorization": f"Bearer {service_token}"})

    def authorize(**attributes):
        body = _rlm(User_Name="aa:bb:cc:dd:ee:23", FreeRADIUS_Client_IP_Address="127.0.0.1", **attributes)
        return client.post("/api/v1/radius/authorize", body, content_type="application/json")

    typed = authorize(Service_Type="Login-User", Calling_Station_Id="02:00:00:00:00:99")
    assert typed.status_code == 404, typed.content
    assert authorize(Calling_Station_Id="02:00:00:00:00:99").status_code == 404
    mac_auth = authorize(Service_Type="Login-User", Calling_Station_Id="AA-BB-CC-DD-EE-23")
    assert mac_auth.status_code == 200, mac_auth.content
    assert mac_auth.json()["control:Auth-Type"]["value"] == ["Accept"]


@pytest.mark.django_db
def test_authorize_needs_a_radius_service_token_and_a_known_nas(customer, make_nas, make_staff, service_token):
    make_nas("mikrotik")
    _token, cashier = do_create_api_token(user=make_staff(Role.CASHIER), name="not for radius")
    denied = Client(headers={"Authorization": f"Bearer {cashier}"}).post(
        "/api/v1/radius/authorize",
        _rlm(User_Name="ivanov", NAS_IP_Address="127.0.0.1"),
        content_type="application/json",
    )
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "radius_service_required"
    unknown = Client(headers={"Authorization": f"Bearer {service_token}"}).post(
        "/api/v1/radius/authorize",
        _rlm(User_Name="ivanov", NAS_IP_Address="192.0.2.1"),
        content_type="application/json",
    )
    assert unknown.status_code == 403
    assert unknown.json()["error"]["code"] == "unknown_nas"
    assert not AuthAttempt.objects.exists()
