"""Bad input over real sockets: the server in a thread, radclient or raw UDP in front of it.

Whatever is dropped gets no answer, a ``dropped_*`` counter and (rate-limited) a log line, and writes nothing
to the database; the server keeps answering good requests afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import struct
import time

import pytest

from abonent.network.models import AuthAttempt, RejectReason, Session

from .conftest import SECRET

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("radius")]

KEY = SECRET.encode()
PAP = 'User-Name = "ivanov"\nUser-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n'
ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT = 1, 2, 3
ACCOUNTING_REQUEST, ACCOUNTING_RESPONSE = 4, 5
STATUS_SERVER = 12


# --- raw packets ---------------------------------------------------------------------------------------------


def encode(code: int, ident: int, authenticator: bytes, attrs: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(bytes([c, len(v) + 2]) + v for c, v in attrs)
    return struct.pack("!BBH", code, ident, 20 + len(body)) + authenticator + body


def signed_request(code: int, ident: int, attrs: list[tuple[int, bytes]], secret: bytes = KEY) -> bytes:
    """Access-Request / Status-Server with the Message-Authenticator first (RFC 3579 §3.2)."""
    authenticator = hashlib.md5(bytes([ident]) + secret).digest()
    raw = encode(code, ident, authenticator, [(80, b"\x00" * 16), *attrs])
    return raw[:22] + hmac.new(secret, raw, "md5").digest() + raw[38:]


def pap(ident: int, username: bytes = b"ivanov", password: bytes = b"s3cret-pw", secret: bytes = KEY) -> bytes:
    authenticator = hashlib.md5(bytes([ident]) + secret).digest()
    padded = password + b"\x00" * (-len(password) % 16)
    hidden, last = b"", authenticator
    for i in range(0, len(padded), 16):
        last = bytes(a ^ b for a, b in zip(padded[i : i + 16], hashlib.md5(secret + last).digest(), strict=False))
        hidden += last
    return signed_request(ACCESS_REQUEST, ident, [(1, username), (2, hidden)], secret)


def accounting(
    ident: int, session: bytes = b"sess-1", username: bytes = b"ivanov", status: int = 1, secret: bytes = KEY
) -> bytes:
    attrs = [(40, struct.pack("!I", status)), (44, session), (1, username), (4, bytes([127, 0, 0, 1]))]
    raw = encode(ACCOUNTING_REQUEST, ident, b"\x00" * 16, attrs)
    return raw[:4] + hashlib.md5(raw + secret).digest() + raw[20:]


def exchange(port: int, data: bytes, *, source: str = "127.0.0.1", timeout: float = 0.5) -> bytes | None:
    """Send one datagram and wait for an answer (None: nothing came back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def drops(running) -> dict[str, int]:
    return {name: value for (_nas, name), value in running.server.stats.counters.items() if name.startswith("dropped_")}


def assert_reply(reply: bytes | None, request: bytes, code: int) -> None:
    assert reply is not None, "no answer"
    assert reply[0] == code and reply[1] == request[1]
    assert reply[4:20] == hashlib.md5(reply[:4] + request[4:20] + reply[20:] + KEY).digest()


# --- unknown NAS ----------------------------------------------------------------------------------------------


def test_unknown_nas_is_dropped_counted_and_logged(customer, make_nas, server, radclient, caplog):
    caplog.set_level(logging.WARNING, logger="abonent.radius")
    make_nas(ip_address="127.0.0.2")  # registered as .2; radclient sends from 127.0.0.1
    with server() as running:
        result = radclient(running.auth_port, SECRET, "auth", PAP, timeout=0.5)
        assert wait_for(lambda: running.counter("dropped_unknown_nas") >= 1)
        assert exchange(running.acct_port, accounting(1)) is None
        assert wait_for(lambda: running.counter("dropped_unknown_nas") >= 2)  # radclient's request(s) + accounting
        # The same NAS from its own address is served: the drop was the address, nothing else.
        assert_reply(exchange(running.auth_port, pap(2), source="127.0.0.2"), pap(2), ACCESS_ACCEPT)
        assert set(drops(running)) == {"dropped_unknown_nas"}
        assert running.counter("handler_errors") == 0
    assert "Received" not in result.stdout
    lines = [r.getMessage() for r in caplog.records if "unknown_nas" in r.getMessage()]
    # One line per source and reason per minute: a flood of packets is not a flood of log lines.
    assert len(lines) == 1 and "127.0.0.1" in lines[0], lines
    assert not AuthAttempt.objects.exists()
    assert not Session.objects.exists()


def test_a_flood_from_an_unknown_address_is_counted_but_logged_once(customer, make_nas, server, caplog):
    caplog.set_level(logging.WARNING, logger="abonent.radius")
    make_nas(ip_address="127.0.0.2")
    with server() as running:
        for ident in range(20):
            exchange(running.auth_port, pap(ident), timeout=0.01)
        assert wait_for(lambda: running.counter("dropped_unknown_nas") == 20)
    assert sum("unknown_nas" in r.getMessage() for r in caplog.records) == 1


# --- wrong secret ---------------------------------------------------------------------------------------------


def test_wrong_secret_is_dropped_on_both_ports(customer, make_nas, server, caplog):
    caplog.set_level(logging.WARNING, logger="abonent.radius")
    make_nas()
    other = b"another-secret-entirely"
    with server() as running:
        assert exchange(running.auth_port, pap(1, secret=other)) is None
        assert exchange(running.acct_port, accounting(2, secret=other)) is None
        assert wait_for(lambda: running.counter("dropped_bad_authenticator") == 1)
        assert drops(running) == {"dropped_bad_message_authenticator": 1, "dropped_bad_authenticator": 1}
        # With the right secret the same requests are served.
        assert_reply(exchange(running.auth_port, pap(3)), pap(3), ACCESS_ACCEPT)
        assert_reply(exchange(running.acct_port, accounting(4), timeout=5), accounting(4), ACCOUNTING_RESPONSE)
    assert any("bad_message_authenticator" in r.getMessage() for r in caplog.records)
    assert any("bad_authenticator" in r.getMessage() for r in caplog.records)
    assert Session.objects.count() == 1  # the good one only
    assert not AuthAttempt.objects.exists()


def test_wrong_secret_from_radclient(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        auth = radclient(running.auth_port, "another-secret-entirely", "auth", PAP, timeout=0.5)
        acct = radclient(
            running.acct_port,
            "another-secret-entirely",
            "acct",
            'User-Name = "ivanov"\nAcct-Status-Type = Start\nAcct-Session-Id = "s-1"\n',
            timeout=0.5,
        )
        assert wait_for(lambda: running.counter("dropped_bad_authenticator") >= 1)
        assert running.counter("dropped_bad_message_authenticator") >= 1
    assert "Received" not in auth.stdout and "Received" not in acct.stdout
    assert not Session.objects.exists()


# --- truncated, oversized, lying about its length ----------------------------------------------------------------


def test_truncated_oversized_and_bad_length_datagrams_are_dropped(customer, make_nas, server):
    make_nas()
    good_auth, good_acct = pap(1), accounting(2)
    cases = {
        "dropped_truncated": [b"", b"\x01", good_auth[:19], good_acct[:19]],
        "dropped_oversized": [
            good_auth + b"\x00" * (4097 - len(good_auth)),
            good_acct + b"\x00" * (4097 - len(good_acct)),
            b"\x01" * 9000,
        ],
        # Length says more than arrived, or less than a header.
        "dropped_bad_length": [
            good_auth[:2] + b"\x0f\xa0" + good_auth[4:],
            good_acct[:2] + b"\x00\x13" + good_acct[4:],
        ],
        # An attribute running past the end, a zero-length attribute.
        "dropped_bad_attribute": [good_auth[:-1] + b"", good_auth + b"\x01\x00"],
    }
    # Fix the Length field of the two attribute cases so that only the attribute is wrong.
    cases["dropped_bad_attribute"] = [
        data[:2] + struct.pack("!H", len(data)) + data[4:] for data in cases["dropped_bad_attribute"]
    ]
    with server() as running:
        for expected, datagrams in cases.items():
            for i, data in enumerate(datagrams):
                port = running.acct_port if i % 2 else running.auth_port
                assert exchange(port, data, timeout=0.2) is None, (expected, i)
        total = sum(len(v) for v in cases.values())
        assert wait_for(lambda: sum(drops(running).values()) == total), drops(running)
        assert drops(running) == {name: len(datagrams) for name, datagrams in cases.items()}
        assert running.counter("handler_errors") == 0
        # Still serving.
        assert_reply(exchange(running.auth_port, pap(9)), pap(9), ACCESS_ACCEPT)
    assert not AuthAttempt.objects.exists()
    assert not Session.objects.exists()


def test_padding_after_the_length_field_is_ignored(customer, make_nas, server):
    # RFC 2865 §3: octets past Length are padding; the request is served (up to the 4096-octet datagram).
    make_nas()
    with server() as running:
        request = pap(1)
        assert_reply(exchange(running.auth_port, request + b"\x00" * 100), request, ACCESS_ACCEPT)


# --- accounting with a bad authenticator writes nothing ----------------------------------------------------------


def test_accounting_with_a_bad_authenticator_writes_no_session(customer, make_nas, server):
    make_nas()
    good = accounting(5, session=b"sess-bad")
    forged = good[:4] + bytes(16) + good[20:]
    flipped = good[:10] + bytes([good[10] ^ 1]) + good[11:]
    with server() as running:
        assert exchange(running.acct_port, forged) is None
        assert exchange(running.acct_port, flipped) is None
        assert wait_for(lambda: running.counter("dropped_bad_authenticator") == 2)
        time.sleep(0.5)  # past a maintenance tick and a writer batch: nothing is on its way to the database
        assert running.server.writer.depth == 0
        assert running.counter("accounting_start") == 0
    assert not Session.objects.exists()


def test_valid_accounting_start_writes_a_session(customer, make_nas, server):
    """The control for the test above: the same packet, correctly signed, is answered and written."""
    make_nas()
    request = accounting(5, session=b"sess-ok")
    with server() as running:
        assert_reply(exchange(running.acct_port, request, timeout=5), request, ACCOUNTING_RESPONSE)
        assert running.counter("handler_errors") == 0
    assert Session.objects.get().acct_session_id == "sess-ok"


# --- Status-Server (RFC 5997) ------------------------------------------------------------------------------------


def test_status_server_is_answered(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        result = radclient(running.auth_port, SECRET, "status", "Message-Authenticator = 0x00\n", timeout=0.5)
        handler_errors = running.counter("handler_errors")
    assert handler_errors == 0
    assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr


def test_status_server_without_message_authenticator_is_dropped_and_counted(customer, make_nas, server):
    # RFC 5997 §3: MUST be silently discarded. Its Request Authenticator is random, so without a
    # Message-Authenticator nothing proves that the sender knows the secret.
    make_nas(require_message_authenticator=False)
    with server() as running:
        assert exchange(running.auth_port, encode(STATUS_SERVER, 1, b"S" * 16, [(32, b"probe")])) is None
        assert wait_for(lambda: sum(drops(running).values()) + running.counter("handler_errors") >= 1)
        assert running.counter("handler_errors") == 0
        assert sum(drops(running).values()) == 1


# --- garbage does not stop the server -----------------------------------------------------------------------------


def test_the_server_answers_after_a_burst_of_garbage(customer, make_nas, server):
    import random

    make_nas()
    rng = random.Random(2866)
    with server() as running:
        for n in range(300):
            size = rng.choice([0, 7, 20, 40, 300, 4096, 5000])
            data = bytes([rng.choice([1, 4, 12, 200])]) + rng.randbytes(max(size - 1, 0))
            exchange(running.auth_port if n % 2 else running.acct_port, data[:size], timeout=0.001)
        assert wait_for(lambda: sum(drops(running).values()) + running.counter("handler_errors") >= 300)
        assert running.counter("handler_errors") == 0
        assert sum(drops(running).values()) == 300
        assert_reply(exchange(running.auth_port, pap(1)), pap(1), ACCESS_ACCEPT)
    assert not AuthAttempt.objects.exists()
    assert not Session.objects.exists()


# --- NUL octets in text attributes (PostgreSQL refuses them in text columns) ---------------------------------


def test_a_nul_in_user_name_does_not_stop_the_attempt_log(customer, make_nas, server):
    make_nas()
    with server() as running:
        assert_reply(
            exchange(running.auth_port, pap(1, username=b"iva\x00nov")), pap(1, username=b"iva\x00nov"), ACCESS_REJECT
        )
        assert_reply(exchange(running.auth_port, pap(2, password=b"guess")), pap(2, password=b"guess"), ACCESS_REJECT)
        # The maintenance thread writes attempts every 0.2 s here: the ordinary reject must get through.
        assert wait_for(lambda: AuthAttempt.objects.filter(reason=RejectReason.BAD_PASSWORD).exists(), timeout=5)
        assert wait_for(lambda: not running.server.attempts, timeout=5)
    assert AuthAttempt.objects.filter(reason=RejectReason.UNKNOWN_LOGIN).count() == 1


def test_a_nul_in_accounting_text_does_not_stop_accounting(customer, make_nas, server):
    make_nas()
    with server() as running:
        poisoned = accounting(1, session=b"sess\x00one", username=b"iva\x00nov")
        assert_reply(exchange(running.acct_port, poisoned, timeout=5), poisoned, ACCOUNTING_RESPONSE)
        clean = accounting(2, session=b"sess-two")
        assert_reply(exchange(running.acct_port, clean, timeout=5), clean, ACCOUNTING_RESPONSE)
        # Spooled or written, the clean session must reach the database once it is reachable (it is).
        assert wait_for(lambda: Session.objects.filter(acct_session_id="sess-two").exists(), timeout=5)
        assert wait_for(lambda: not running.server.writer.spool.has_backlog(), timeout=5)


# --- what RFC 2865 forbids in an Access-Request -------------------------------------------------------------------


def test_requests_rfc_2865_forbids_are_dropped_not_answered_from_the_first_attribute(customer, make_nas, server):
    make_nas()
    good = pap(40)
    # The same hidden password is valid in each request: signed_request derives the authenticator from the id.
    fields = {good[at]: good[at + 2 : at + good[at + 1]] for at in _offsets(good)}
    name, hidden = fields[1], fields[2]
    bad = {
        "two User-Names": [(1, name), (1, b"petrov"), (2, hidden)],
        "User-Password and CHAP-Password": [(1, name), (2, hidden), (3, bytes(17))],
        "User-Password over 128 octets": [(1, name), (2, bytes(144))],
        "a short CHAP-Challenge": [(1, name), (3, bytes(17)), (60, b"")],
    }
    with server() as running:
        for ident, (_why, body) in enumerate(bad.items(), start=41):
            assert exchange(running.auth_port, signed_request(1, ident, body)) is None
        assert wait_for(lambda: drops(running).get("dropped_bad_attribute", 0) == len(bad))
        assert_reply(exchange(running.auth_port, good, timeout=5), good, ACCESS_ACCEPT)


def _offsets(packet: bytes):
    at = 20
    while at < len(packet):
        yield at
        at += packet[at + 1]


def test_an_impossible_counter_is_dropped_alone_and_the_rest_of_its_batch_answered(customer, make_nas, server):
    make_nas()
    huge = accounting(50, session=b"huge")
    huge = _with(huge, [(42, struct.pack("!I", 0xFFFFFFFF)), (52, struct.pack("!I", 0xFFFFFFFF))])
    fine = [accounting(51 + i, session=f"fine-{i}".encode()) for i in range(3)]
    with server() as running, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        for packet in (fine[0], huge, fine[1], fine[2]):  # sent together: one batch, were they all read
            sock.sendto(packet, ("127.0.0.1", running.acct_port))
        answered = {sock.recv(4096)[1] for _ in fine}
        assert wait_for(lambda: drops(running).get("dropped_malformed", 0) == 1)
    assert answered == {51, 52, 53}
    assert sorted(Session.objects.values_list("acct_session_id", flat=True)) == ["fine-0", "fine-1", "fine-2"]


def _with(packet: bytes, extra: list[tuple[int, bytes]]) -> bytes:
    """The accounting request with more attributes, signed again."""
    body = packet[20:] + b"".join(bytes([c, len(v) + 2]) + v for c, v in extra)
    raw = struct.pack("!BBH", packet[0], packet[1], 20 + len(body)) + b"\x00" * 16 + body
    return raw[:4] + hashlib.md5(raw + KEY).digest() + raw[20:]


def test_a_status_server_with_a_wrong_message_authenticator_counts_as_bad_not_missing(customer, make_nas, server):
    make_nas()
    forged = signed_request(STATUS_SERVER, 60, [], secret=b"another-secret-entirely")
    with server() as running:
        assert exchange(running.acct_port, forged) is None
        assert wait_for(lambda: drops(running).get("dropped_bad_message_authenticator", 0) == 1)
        assert drops(running).get("dropped_missing_message_authenticator", 0) == 0
