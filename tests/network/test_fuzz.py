"""Hypothesis fuzz over the RADIUS codec and the request handlers, without sockets.

A ``RadiusServer`` is built directly around the policy of one PPPoE login and one NAS; every example gets a
fresh server (fresh counters and duplicate caches), so a reply cached for one input never answers another.
The properties, for whatever arrives:

- the handler never raises and returns within a small time;
- it answers nothing (and counts exactly one ``dropped_*``), or answers a well-formed reply: decodable by
  pyrad, passing our own strict ``check_packet``, the right identifier and Response Authenticator, a valid
  Message-Authenticator as the first attribute;
- nothing reaches the database (the handlers run with database access blocked), and a dropped packet
  leaves no authentication attempt behind and submits no accounting record.

Inputs: (a) random bytes; (b) structurally valid packets with random attribute codes, lengths and values,
signed with the right secret so they reach the decoder and the policy; (c) a valid Access-Request with one
byte changed, cut short or extended; (d) integer/ipaddr attributes of the wrong length; (e) Vendor-Specific
attributes with broken sub-lengths; (f) datagrams over 4096 and under 20 octets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import struct
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyrad import packet as rp

from abonent.network.models import AuthAttempt, Session
from abonent.network.policy import PolicyStore
from abonent.network.radius.codec import _FIXED, DICTIONARY, MAX_PACKET, MalformedPacket, check_packet
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry

from .conftest import SECRET

pytestmark = pytest.mark.django_db

KEY = SECRET.encode()
NAS_ADDR = ("127.0.0.1", 40001)
STRANGER_ADDR = ("127.0.0.9", 40001)
ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT = 1, 2, 3
ACCOUNTING_REQUEST, ACCOUNTING_RESPONSE = 4, 5
STATUS_SERVER = 12
# One packet; the real figure is well under a millisecond. The bound catches a parse that hangs, with room for a
# CI machine whose two cores run two test workers and PostgreSQL (0.5 s failed there once under load).
MAX_SECONDS = 2.0

FUZZ = settings(
    max_examples=100,
    deadline=dt.timedelta(milliseconds=1000),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # no .hypothesis/ directory in the working tree
)


# --- packets ------------------------------------------------------------------------------------------------


def encode(code: int, ident: int, authenticator: bytes, attrs: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(bytes([c, len(v) + 2]) + v for c, v in attrs)
    return struct.pack("!BBH", code, ident, 20 + len(body)) + authenticator + body


def hide_password(password: bytes, authenticator: bytes, secret: bytes = KEY) -> bytes:
    """User-Password hiding (RFC 2865 §5.2)."""
    padded = password + b"\x00" * (-len(password) % 16 or (16 if not password else 0))
    out, last = b"", authenticator
    for i in range(0, len(padded), 16):
        digest = hashlib.md5(secret + last).digest()
        last = bytes(a ^ b for a, b in zip(padded[i : i + 16], digest, strict=False))
        out += last
    return out


def signed_request(
    code: int,
    ident: int,
    authenticator: bytes,
    attrs: list[tuple[int, bytes]],
    secret: bytes = KEY,
    ma_first: bool = True,
) -> bytes:
    """An Access-Request/Status-Server with a correct Message-Authenticator (RFC 3579 §3.2)."""
    ma = (80, b"\x00" * 16)
    raw = encode(code, ident, authenticator, [ma, *attrs] if ma_first else [*attrs, ma])
    pos = 20 if ma_first else len(raw) - 18
    digest = hmac.new(secret, raw, "md5").digest()
    return raw[: pos + 2] + digest + raw[pos + 18 :]


def signed_accounting(ident: int, attrs: list[tuple[int, bytes]], secret: bytes = KEY) -> bytes:
    """An Accounting-Request with a correct Request Authenticator (RFC 2866 §3)."""
    raw = encode(ACCOUNTING_REQUEST, ident, b"\x00" * 16, attrs)
    return raw[:4] + hashlib.md5(raw + secret).digest() + raw[20:]


def u32(value: int) -> bytes:
    return struct.pack("!I", value)


def pap_request(ident: int = 7, authenticator: bytes = b"A" * 16, password: bytes = b"s3cret-pw", extra=()) -> bytes:
    attrs = [
        (1, b"ivanov"),
        (2, hide_password(password, authenticator)),
        (4, bytes([127, 0, 0, 1])),
        (5, u32(1)),
        (61, u32(15)),
        (31, b"aa:bb:cc:dd:ee:ff"),
        *extra,
    ]
    return signed_request(ACCESS_REQUEST, ident, authenticator, attrs)


def accounting_start(ident: int = 9, extra=()) -> bytes:
    return signed_accounting(
        ident,
        [(40, u32(1)), (44, b"sess-1"), (1, b"ivanov"), (4, bytes([127, 0, 0, 1])), (8, bytes([10, 0, 0, 5])), *extra],
    )


# --- strategies ------------------------------------------------------------------------------------------------

idents = st.integers(0, 255)
authenticators = st.binary(min_size=16, max_size=16)
attr_values = st.binary(max_size=253)
any_attr = st.tuples(st.integers(0, 255), attr_values)
# Attributes the strict checks leave alone (Message-Authenticator is added by the signer).
plain_attr = st.tuples(st.integers(1, 255).filter(lambda c: c not in _FIXED and c not in (26, 80)), attr_values)
fixed_attr = st.tuples(st.sampled_from(sorted(_FIXED)), st.binary(min_size=4, max_size=4))
vendor_attr = st.builds(
    lambda vendor, subs: (26, u32(vendor) + b"".join(bytes([t, len(v) + 2]) + v for t, v in subs)),
    st.sampled_from([9, 311, 3561, 14988, 4874, 2352, 0]),
    st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=4),
)
good_attrs = st.lists(st.one_of(plain_attr, fixed_attr, vendor_attr), max_size=12).filter(
    lambda attrs: 20 + 18 + sum(len(v) + 2 for _, v in attrs) <= MAX_PACKET
)
codes_but_status_server = st.integers(0, 255).filter(lambda c: c != STATUS_SERVER)


# --- the server and the checks -------------------------------------------------------------------------------


class FakeWriter:
    """Collects what the accounting handler submits (the handler fuzz only: no database thread here)."""

    full = False

    def __init__(self) -> None:
        self.submitted: list[tuple[object, object]] = []

    def submit(self, record, done) -> bool:
        self.submitted.append((record, done))
        return True


@pytest.fixture
def env(customer, make_nas, django_db_blocker):
    store = PolicyStore()
    store.load_all()
    assert store.find("ivanov") is not None
    entry = NasEntry.from_model(make_nas())

    class Env:
        blocker = django_db_blocker

        @staticmethod
        def server(require_ma: bool = True) -> RadiusServer:
            nas = NasEntry(**{**entry.__dict__, "require_ma": require_ma})
            return RadiusServer(store=store, nas_table={"127.0.0.1": nas}, writer=FakeWriter())

    yield Env
    # Garbage leaves nothing in the database (the handlers do not even try: access is blocked while they run).
    assert not AuthAttempt.objects.exists()
    assert not Session.objects.exists()


def dropped(server: RadiusServer) -> int:
    return sum(v for (_nas, name), v in server.stats.counters.items() if name.startswith("dropped_"))


def assert_well_formed_reply(reply: bytes, request: bytes) -> rp.Packet:
    assert isinstance(reply, bytes)
    check_packet(reply)  # our own strict rules hold for what we send
    length = int.from_bytes(reply[2:4], "big")
    assert length == len(reply) <= MAX_PACKET
    assert reply[1] == request[1], "identifier"
    expected = hashlib.md5(reply[:4] + request[4:20] + reply[20:] + KEY).digest()
    assert reply[4:20] == expected, "Response Authenticator"
    assert reply[20] == 80 and reply[21] == 18, "Message-Authenticator must be the first attribute"
    decoded = rp.AuthPacket(packet=reply, secret=KEY, dict=DICTIONARY)
    assert decoded.verify_message_authenticator(original_authenticator=request[4:20], original_code=request[0])
    original = rp.AuthPacket(packet=request, secret=KEY, dict=DICTIONARY)
    assert original.VerifyReply(decoded, reply, enforce_ma=True)
    return decoded


def forbidden_by_rfc_2865(attrs) -> bool:
    """What ``codec.check_access_request`` drops, said again from RFC 2865 independently of the code: at most
    one User-Name, User-Password, CHAP-Password and CHAP-Challenge; not both passwords; User-Password 16–128
    octets in blocks of 16 (§5.2: it is hidden block by block); CHAP-Password 17; CHAP-Challenge at least 5."""
    codes = [c for c, _ in attrs]
    if any(codes.count(c) > 1 for c in (1, 2, 3, 60)) or (2 in codes and 3 in codes):
        return True
    return any(
        (c == 2 and (len(v) % 16 or not 16 <= len(v) <= 128)) or (c == 3 and len(v) != 17) or (c == 60 and len(v) < 5)
        for c, v in attrs
    )


def run_auth(env, server: RadiusServer, data: bytes, addr=NAS_ADDR) -> bytes | None:
    """One call with the properties every input must keep."""
    before, attempts = dropped(server), len(server.attempts)
    with env.blocker.block():
        started = time.perf_counter()
        reply = server.handle_auth(data, addr)
        elapsed = time.perf_counter() - started
    assert elapsed < MAX_SECONDS, f"handle_auth took {elapsed:.3f} s"
    assert not server.writer.submitted
    if reply is None:
        assert dropped(server) == before + 1, f"a drop without a counter: {dict(server.stats.counters)}"
        assert len(server.attempts) == attempts, "a dropped packet left an authentication attempt"
    else:
        assert dropped(server) == before
        decoded = assert_well_formed_reply(reply, data)
        assert decoded.code in (ACCESS_ACCEPT, ACCESS_REJECT)
    return reply


def run_acct(env, server: RadiusServer, data: bytes, addr=NAS_ADDR) -> bool:
    """One accounting call; True when the record was submitted (and answered once written)."""
    sent: list[tuple[bytes, object]] = []
    before = dropped(server)
    with env.blocker.block():
        started = time.perf_counter()
        result = server.handle_acct(data, addr, lambda reply, to: sent.append((reply, to)))
        elapsed = time.perf_counter() - started
    assert elapsed < MAX_SECONDS, f"handle_acct took {elapsed:.3f} s"
    assert result is None
    assert not sent, "an Accounting-Response before the record was written"
    assert not server.attempts
    if not server.writer.submitted:
        assert dropped(server) == before + 1, f"a drop without a counter: {dict(server.stats.counters)}"
        return False
    assert dropped(server) == before
    assert len(server.writer.submitted) == 1
    _record, done = server.writer.submitted[0]
    done()
    assert len(sent) == 1 and sent[0][1] == addr
    reply = sent[0][0]
    check_packet(reply)
    assert reply[0] == ACCOUNTING_RESPONSE and reply[1] == data[1]
    assert reply[4:20] == hashlib.md5(reply[:4] + data[4:20] + reply[20:] + KEY).digest()
    return True


# --- sanity: the fuzz starts from packets the server accepts ---------------------------------------------------


def test_the_base_packets_are_answered(env):
    server = env.server()
    reply = run_auth(env, server, pap_request())
    assert reply is not None and reply[0] == ACCESS_ACCEPT
    reply = run_auth(env, server, pap_request(ident=8, password=b"wrong-password"))
    assert reply is not None and reply[0] == ACCESS_REJECT
    assert len(server.attempts) == 1  # the reject is kept (written later by the maintenance thread)


# --- (a) random bytes --------------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=MAX_PACKET + 200))
def test_random_bytes_on_the_auth_port(env, data):
    assume(data[:1] != bytes([STATUS_SERVER]))  # Status-Server: see test_status_server_*
    server = env.server()
    run_auth(env, server, data)
    assert run_auth(env, server, data, STRANGER_ADDR) is None
    assert server.stats.total("dropped_unknown_nas") == 1


@FUZZ
@given(code=codes_but_status_server, ident=idents, authenticator=authenticators, tail=st.binary(max_size=300))
def test_random_bytes_behind_a_consistent_header(env, code, ident, authenticator, tail):
    data = struct.pack("!BBH", code, ident, 20 + len(tail)) + authenticator + tail
    run_auth(env, env.server(), data)


@FUZZ
@given(data=st.binary(max_size=MAX_PACKET + 200))
def test_random_bytes_on_the_accounting_port(env, data):
    server = env.server()
    assert run_acct(env, server, data) is False
    run_acct(env, server, data, STRANGER_ADDR)
    assert server.stats.total("dropped_unknown_nas") == 1


# --- (b) structurally valid packets with random attributes ------------------------------------------------------


@FUZZ
@given(ident=idents, authenticator=authenticators, attrs=good_attrs, ma_first=st.booleans(), require_ma=st.booleans())
def test_signed_access_request_with_random_attributes(env, ident, authenticator, attrs, ma_first, require_ma):
    data = signed_request(ACCESS_REQUEST, ident, authenticator, attrs, ma_first=ma_first)
    check_packet(data)  # the generator makes only what the strict checks allow
    server = env.server(require_ma)
    reply = run_auth(env, server, data)
    if forbidden_by_rfc_2865(attrs):
        assert reply is None and server.stats.total("dropped_bad_attribute") == 1, dict(server.stats.counters)
    else:
        # Signed, well-formed, from a known NAS: answered, whether or not the login exists (a User-Password not
        # in blocks of 16 is dropped above for every login, not only for those whose password is un-hidden).
        assert reply is not None and reply[0] == ACCESS_REJECT  # no random packet knows the password


@FUZZ
@given(
    ident=idents,
    authenticator=authenticators,
    attrs=st.lists(any_attr, max_size=12),
    sign=st.booleans(),
    require_ma=st.booleans(),
)
def test_access_request_with_arbitrary_attributes(env, ident, authenticator, attrs, sign, require_ma):
    data = (signed_request if sign else encode)(ACCESS_REQUEST, ident, authenticator, attrs)
    assume(len(data) <= MAX_PACKET + 100)
    run_auth(env, env.server(require_ma), data)


@FUZZ
@given(ident=idents, authenticator=authenticators, extra=good_attrs)
def test_valid_login_with_random_extra_attributes(env, ident, authenticator, extra):
    data = pap_request(ident, authenticator, extra=extra)
    assume(len(data) <= MAX_PACKET)
    reply = run_auth(env, env.server(), data)
    if forbidden_by_rfc_2865([(1, b"ivanov"), (2, bytes(16)), *extra]):
        assert reply is None  # a second User-Name, a CHAP-Password beside the PAP one…: dropped
    else:
        # Other extras (MS-CHAP attributes, unknown ones) never cause a drop: PAP is read first.
        assert reply is not None and reply[0] in (ACCESS_ACCEPT, ACCESS_REJECT)


@FUZZ
@given(ident=idents, status=st.integers(0, 20), extra=good_attrs, code=codes_but_status_server)
def test_unsigned_or_misdirected_accounting_is_dropped(env, ident, status, extra, code):
    attrs = [(40, u32(status)), (44, b"s"), *extra]
    # A random Request Authenticator: the secret is not proved.
    data = encode(ACCOUNTING_REQUEST, ident, hashlib.md5(bytes([ident])).digest(), attrs)
    assume(len(data) <= MAX_PACKET)
    server = env.server()
    assert run_acct(env, server, data) is False
    # A signed Accounting-Request sent to the auth port, or another code to the accounting port.
    signed = signed_accounting(ident, attrs)
    assert run_auth(env, server, signed) is None
    if code != ACCOUNTING_REQUEST:
        assert run_acct(env, server, bytes([code]) + signed[1:]) is False


@FUZZ
@given(ident=idents, status=st.sampled_from([1, 2, 3, 7, 8]), extra=good_attrs)
def test_signed_accounting_with_random_attributes_is_written_and_answered(env, ident, status, extra):
    data = signed_accounting(ident, [(40, u32(status)), (44, b"sess-1"), (1, b"ivanov"), *extra])
    assume(len(data) <= MAX_PACKET)
    # Gigawords of 2^31 or more make a counter past 2^63 octets, which no NAS counts: dropped as malformed.
    # (The first of repeated attributes is the one read.)
    first = {}
    for c, v in extra:
        first.setdefault(c, v)
    impossible = status in (1, 2, 3) and any(int.from_bytes(first.get(c, bytes(4)), "big") >= 1 << 31 for c in (52, 53))
    assert run_acct(env, env.server(), data) is not impossible


@FUZZ
@given(ident=idents, status=st.integers(0, 2**32 - 1).filter(lambda s: s not in (1, 2, 3, 7, 8)))
def test_unsupported_acct_status_type_is_acknowledged_counted_and_not_written(env, ident, status):
    # Tunnel-Start, Failed and the like: nothing to record, but unanswered the NAS would resend them forever.
    server = env.server()
    sent = []
    with env.blocker.block():
        server.handle_acct(
            signed_accounting(ident, [(40, u32(status)), (44, b"s")]), NAS_ADDR, lambda r, to: sent.append(r)
        )
    assert not server.writer.submitted
    assert server.stats.total("accounting_ignored") == 1
    assert len(sent) == 1 and sent[0][0] == 5 and sent[0][1] == ident


# --- (c) one byte changed, cut or extended ----------------------------------------------------------------------


@FUZZ
@given(data=st.data(), ident=idents, authenticator=authenticators)
def test_a_mutated_access_request_is_never_accepted(env, data, ident, authenticator):
    original = pap_request(ident, authenticator)
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "length"]), label="kind")
    if kind == "flip":
        pos = data.draw(st.integers(0, len(original) - 1), label="pos")
        value = data.draw(st.integers(0, 255).filter(lambda v: v != original[pos]), label="value")
        mutated = original[:pos] + bytes([value]) + original[pos + 1 :]
    elif kind == "truncate":
        mutated = original[: data.draw(st.integers(0, len(original) - 1), label="size")]
    elif kind == "extend":
        mutated = original + data.draw(st.binary(min_size=1, max_size=MAX_PACKET), label="tail")
    else:
        length = data.draw(st.integers(0, 0xFFFF).filter(lambda n: n != len(original)), label="length")
        mutated = original[:2] + struct.pack("!H", length) + original[4:]
        mutated += data.draw(st.binary(max_size=64), label="tail")
    assume(mutated[:1] != bytes([STATUS_SERVER]))
    server = env.server()
    reply = run_auth(env, server, mutated)
    signed_part_intact = mutated[: len(original)] == original and int.from_bytes(mutated[2:4], "big") == len(original)
    if signed_part_intact:
        # Octets past the Length field are padding (RFC 2865 §3); the request is the original one.
        assert reply is None or reply[0] == ACCESS_ACCEPT
    else:
        # The Message-Authenticator covers the whole packet: any change is a forgery or damage.
        assert reply is None, f"answered a damaged request ({kind}): {dict(server.stats.counters)}"


@FUZZ
@given(data=st.data(), ident=idents)
def test_a_mutated_accounting_request_is_never_written(env, data, ident):
    original = accounting_start(ident)
    pos = data.draw(st.integers(0, len(original) - 1), label="pos")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != original[pos]), label="value")
    mutated = original[:pos] + bytes([value]) + original[pos + 1 :]
    assert run_acct(env, env.server(), mutated) is False


# --- (d) integer / ipaddr attributes of the wrong length ---------------------------------------------------------


@FUZZ
@given(
    ident=idents,
    authenticator=authenticators,
    code=st.sampled_from(sorted(_FIXED)),
    value=st.binary(max_size=253).filter(lambda v: len(v) != 4),
    accounting=st.booleans(),
)
def test_fixed_size_attributes_of_the_wrong_length_are_dropped(env, ident, authenticator, code, value, accounting):
    server = env.server()
    if accounting:
        data = signed_accounting(ident, [(40, u32(1)), (44, b"s"), (code, value)])
        assert run_acct(env, server, data) is False
    else:
        data = pap_request(ident, authenticator, extra=[(code, value)])
        assert run_auth(env, server, data) is None
    assert server.stats.total("dropped_bad_attribute") == 1


@pytest.mark.parametrize("size", [0, 3, 5, 16])
@pytest.mark.parametrize("code", [4, 8, 40, 41, 42, 46, 49, 52, 53])
def test_each_integer_and_ipaddr_the_server_reads(env, code, size):
    server = env.server()
    attrs = [(40, u32(2)), (44, b"s")] if code != 40 else [(44, b"s")]
    assert run_acct(env, server, signed_accounting(1, [*attrs, (code, b"\x01" * size)])) is False
    assert server.stats.total("dropped_bad_attribute") == 1


def test_message_authenticator_of_the_wrong_length_is_dropped(env):
    server = env.server()
    raw = encode(ACCESS_REQUEST, 1, b"B" * 16, [(80, b"\x00" * 15), (1, b"ivanov")])
    assert run_auth(env, server, raw) is None
    assert server.stats.total("dropped_bad_attribute") == 1


# --- (e) Vendor-Specific attributes with broken sub-lengths ------------------------------------------------------


def broken_vsa(vendor: int, sub_type: int, sub_len: int, value: bytes) -> tuple[int, bytes]:
    return 26, u32(vendor) + bytes([sub_type, sub_len]) + value


@FUZZ
@given(
    ident=idents,
    authenticator=authenticators,
    vendor=st.sampled_from([9, 311, 3561, 14988]),
    sub_type=st.integers(0, 255),
    value=st.binary(max_size=60),
    data=st.data(),
    accounting=st.booleans(),
)
def test_known_vendor_with_broken_sub_length_is_dropped(
    env, ident, authenticator, vendor, sub_type, value, data, accounting
):
    sub_len = data.draw(st.integers(0, 255).filter(lambda n: n < 2 or n > len(value) + 2), label="sub_len")
    attr = broken_vsa(vendor, sub_type, sub_len, value)
    server = env.server()
    if accounting:
        assert run_acct(env, server, signed_accounting(ident, [(40, u32(1)), (44, b"s"), attr])) is False
    else:
        assert run_auth(env, server, pap_request(ident, authenticator, extra=[attr])) is None
    assert server.stats.total("dropped_bad_attribute") == 1


@FUZZ
@given(ident=idents, authenticator=authenticators, vendor=st.integers(0, 2**32 - 1), body=st.binary(max_size=60))
def test_any_vendor_with_any_body_never_breaks_the_handler(env, ident, authenticator, vendor, body):
    data = pap_request(ident, authenticator, extra=[(26, u32(vendor) + body)])
    server = env.server()
    reply = run_auth(env, server, data)
    if reply is None:
        assert server.stats.total("dropped_bad_attribute") == 1
    else:
        assert reply[0] == ACCESS_ACCEPT


@FUZZ
@given(ident=idents, authenticator=authenticators, size=st.integers(0, 3))
def test_vendor_specific_shorter_than_a_vendor_id_is_dropped(env, ident, authenticator, size):
    server = env.server()
    assert run_auth(env, server, pap_request(ident, authenticator, extra=[(26, b"\x00" * size)])) is None
    assert server.stats.total("dropped_bad_attribute") == 1


@FUZZ
@given(ident=idents, authenticator=authenticators, response=st.binary(max_size=80), challenge=st.binary(max_size=40))
def test_ms_chap_attributes_of_any_length_are_rejected_not_crashing(env, ident, authenticator, response, challenge):
    for sub in (1, 25):  # MS-CHAP-Response, MS-CHAP2-Response
        attrs = [
            (1, b"ivanov"),
            (26, u32(311) + bytes([11, len(challenge) + 2]) + challenge),
            (26, u32(311) + bytes([sub, len(response) + 2]) + response),
        ]
        reply = run_auth(env, env.server(), signed_request(ACCESS_REQUEST, ident, authenticator, attrs))
        assert reply is not None and reply[0] == ACCESS_REJECT


@FUZZ
@given(ident=idents, authenticator=authenticators, hidden=st.binary(max_size=128), chap=st.binary(max_size=40))
def test_password_attributes_of_any_length(env, ident, authenticator, hidden, chap):
    for attr in ((2, hidden), (3, chap)):
        reply = run_auth(
            env, env.server(), signed_request(ACCESS_REQUEST, ident, authenticator, [(1, b"ivanov"), attr])
        )
        if reply is None:  # PAP not 16–128 octets in blocks of 16, CHAP not 17 (RFC 2865 §5.2, §5.3): dropped
            assert (attr[0] == 2 and (len(hidden) % 16 or not 16 <= len(hidden) <= 128)) or (
                attr[0] == 3 and len(chap) != 17
            )
        else:
            assert reply[0] == ACCESS_REJECT


# --- (f) oversized and truncated datagrams ------------------------------------------------------------------------


@FUZZ
@given(size=st.integers(0, 19), fill=st.binary(min_size=19, max_size=19))
def test_datagrams_under_a_header_are_dropped_as_truncated(env, size, fill):
    server = env.server()
    data = bytes([ACCESS_REQUEST]) + fill
    assert run_auth(env, server, data[:size]) is None
    assert run_acct(env, server, (bytes([ACCOUNTING_REQUEST]) + fill)[:size]) is False
    assert server.stats.total("dropped_truncated") == 2


@FUZZ
@given(extra=st.integers(1, 4000), honest_length=st.booleans())
def test_datagrams_over_4096_octets_are_dropped_as_oversized(env, extra, honest_length):
    server = env.server()
    base = pap_request()
    data = base + b"\x00" * (MAX_PACKET - len(base) + extra)
    if honest_length:
        data = data[:2] + struct.pack("!H", min(len(data), 0xFFFF)) + data[4:]
    assert run_auth(env, server, data) is None
    acct = accounting_start()
    assert run_acct(env, server, acct + b"\x00" * (MAX_PACKET - len(acct) + extra)) is False
    assert server.stats.total("dropped_oversized") == 2


def test_a_packet_of_exactly_4096_octets_is_accepted(env):
    base = pap_request(extra=[])
    room = MAX_PACKET - len(base)
    fillers = []
    while room >= 2:
        size = min(room, 255)
        if room - size == 1:
            size -= 1
        fillers.append((18, b"x" * (size - 2)))  # Reply-Message: text the server ignores
        room -= size
    data = pap_request(extra=fillers)
    assert len(data) == MAX_PACKET
    reply = run_auth(env, env.server(), data)
    assert reply is not None and reply[0] == ACCESS_ACCEPT


# --- Proxy-State and the size of the reply ----------------------------------------------------------------------


@FUZZ
@given(count=st.integers(1, 16), size=st.integers(0, 253))
def test_the_reply_stays_within_4096_octets_whatever_proxy_state_is_echoed(env, count, size):
    extra = [(33, bytes([i]) * size) for i in range(count)]
    data = pap_request(extra=extra)
    assume(len(data) <= MAX_PACKET)
    reply = run_auth(env, env.server(), data)  # run_auth checks the length of what is answered
    if reply is not None:
        decoded = rp.AuthPacket(packet=reply, secret=KEY, dict=DICTIONARY)
        assert list(dict.get(decoded, 33) or []) == [v for _c, v in extra]


def test_a_lean_request_full_of_proxy_state_gets_a_reply_within_4096_octets(env):
    # RFC 2865 §3: at most 4096 octets, for replies too. Proxy-State is echoed (§5.33), so a request with
    # few other attributes and 4,000 octets of Proxy-State makes the Access-Accept, with its own attributes,
    # larger than the request.
    room = MAX_PACKET - len(signed_request(ACCESS_REQUEST, 1, b"P" * 16, [(1, b"ivanov"), (2, b"x" * 16)]))
    proxy = []
    while room >= 2:
        size = min(room, 255) if room - min(room, 255) != 1 else 254
        proxy.append((33, bytes([len(proxy)]) * (size - 2)))
        room -= size
    authenticator = b"P" * 16
    data = signed_request(
        ACCESS_REQUEST, 1, authenticator, [(1, b"ivanov"), (2, hide_password(b"s3cret-pw", authenticator)), *proxy]
    )
    assert len(data) == MAX_PACKET
    reply = run_auth(env, env.server(), data)  # fails in check_packet(reply) when the reply is over 4096
    assert reply is None or len(reply) <= MAX_PACKET


# --- Status-Server (RFC 5997) ------------------------------------------------------------------------------------


def test_status_server_with_a_valid_message_authenticator_is_answered(env):
    server = env.server()
    data = signed_request(STATUS_SERVER, 3, b"S" * 16, [(32, b"probe")])
    reply = run_auth(env, server, data)
    assert reply is not None and reply[0] == ACCESS_ACCEPT


@pytest.mark.parametrize("require_ma", [True, False])
def test_status_server_without_message_authenticator_is_dropped(env, require_ma):
    # RFC 5997 §3: a Status-Server without Message-Authenticator MUST be silently discarded; its Request
    # Authenticator is random, so nothing else proves the sender knows the secret.
    server = env.server(require_ma)
    data = encode(STATUS_SERVER, 3, b"S" * 16, [(32, b"probe")])
    assert run_auth(env, server, data) is None


@FUZZ
@given(ident=idents, authenticator=authenticators, attrs=st.lists(any_attr, max_size=6), sign=st.booleans())
def test_status_server_fuzz(env, ident, authenticator, attrs, sign):
    data = (signed_request if sign else encode)(STATUS_SERVER, ident, authenticator, attrs)
    run_auth(env, env.server(), data)


# --- the no-hang check, as one batch ------------------------------------------------------------------------------


def test_a_burst_of_garbage_is_handled_quickly(env):
    import random

    rng = random.Random(2865)
    server = env.server()
    started = time.perf_counter()
    for _ in range(3000):
        size = rng.choice([0, 5, 19, 20, 21, 60, 300, 4096, 4097, 9000])
        data = bytes([rng.choice([1, 4, 5, 11, 200])]) + rng.randbytes(max(size - 1, 0))
        with env.blocker.block():
            assert server.handle_auth(data[:size], NAS_ADDR) is None
    assert time.perf_counter() - started < 5.0
    assert dropped(server) == 3000


def test_check_packet_reasons_are_counter_names():
    # The drop counter is "dropped_" + reason: the reasons are the documented ones.
    for data, reason in [
        (b"", "truncated"),
        (b"\x01" * 5000, "oversized"),
        (encode(1, 1, b"A" * 16, [])[:2] + b"\x00\x13" + b"A" * 16, "bad_length"),
        (encode(1, 1, b"A" * 16, [(1, b"x")])[:-2] + b"\x01\x01", "bad_attribute"),
    ]:
        with pytest.raises(MalformedPacket) as exc:
            check_packet(data)
        assert exc.value.reason == reason
