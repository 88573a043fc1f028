"""MPPE keys on MS-CHAPv2 accepts (mppe.py): derived per RFC 3079 §3, checked against its test vectors, sent
as RFC 2548 MS-MPPE-Send-Key / MS-MPPE-Recv-Key and decrypted back from our replies — by an RFC 2548 decoder
written here and by FreeRADIUS's radclient, the client's side of the exchange."""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from abonent.network.policy import PolicyStore
from abonent.network.radius import auth, mppe
from abonent.network.radius.codec import parse_packet
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry

from .conftest import SECRET
from .packets import KEY, NAS_ADDR, access_request, mschap2_attributes, pap_request

# RFC 2759 §9.2 and RFC 3079 §3.5.3 (128-bit keys): the sample exchange and what it derives.
USER, PASSWORD = "User", "clientPass"
AUTHENTICATOR_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")
NT_RESPONSE = bytes.fromhex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
PASSWORD_HASH_HASH = bytes.fromhex("41C00C584BD2D91C4017A2A12FA59F3F")
MASTER_KEY = bytes.fromhex("FDECE3717A8C838CB388E527AE3CDD31")
SEND_START_KEY_128 = bytes.fromhex("8B7CDC149B993A1BA118CB153F56DCCB")
# The RFC prints only the server's send key. The other one (Magic2) is the value independent implementations
# of RFC 3079 agree on (EAP-MSCHAPv2's MSK in Android's and strongSwan's tests); the test below also derives
# it from the client's side, where it is the client's send key.
RECEIVE_START_KEY_128 = bytes.fromhex("D5F0E9521E3EA9589645E86051C82226")


def test_rfc_3079_sample_keys():
    response = b"\x01\x00" + PEER_CHALLENGE + bytes(8) + NT_RESPONSE
    accepted = auth.verify_mschap2(PASSWORD, USER, AUTHENTICATOR_CHALLENGE, response)
    assert accepted.success == b"\x01S=407A5589115FD0D6209F510FE9C04566932CDA56"  # RFC 2759 §9.2
    assert accepted.password_hash_hash == PASSWORD_HASH_HASH
    assert accepted.nt_response == NT_RESPONSE
    assert mppe.master_key(PASSWORD_HASH_HASH, NT_RESPONSE) == MASTER_KEY
    # RFC 3079 §3.5.3's SendStartKey128 is derived with IsSend and IsServer: the server's send key, which
    # is the client's receive key.
    assert mppe.asymmetric_start_key(MASTER_KEY, send=True, server=True) == SEND_START_KEY_128
    assert mppe.asymmetric_start_key(MASTER_KEY, send=False, server=False) == SEND_START_KEY_128
    assert mppe.asymmetric_start_key(MASTER_KEY, send=True, server=False) == RECEIVE_START_KEY_128
    assert mppe.server_keys(PASSWORD_HASH_HASH, NT_RESPONSE) == (SEND_START_KEY_128, RECEIVE_START_KEY_128)


def unhide(value: bytes, secret: bytes, request_authenticator: bytes) -> bytes:
    """RFC 2548 §2.4.2, the receiving side, written from the RFC: Salt (2 octets, high bit set), then 16-octet
    blocks; p(1) = c(1) xor MD5(S + R + A), p(i) = c(i) xor MD5(S + c(i-1)); the first plain octet is the key's
    length, zero padding follows the key."""
    salt, cipher = value[:2], value[2:]
    assert salt[0] & 0x80, "the Salt's most significant bit must be set"
    assert cipher and len(cipher) % 16 == 0
    plain, chain = b"", request_authenticator + salt
    for start in range(0, len(cipher), 16):
        block = cipher[start : start + 16]
        plain += bytes(c ^ b for c, b in zip(block, hashlib.md5(secret + chain).digest(), strict=True))
        chain = block
    length = plain[0]
    if length > len(plain) - 1 or any(plain[1 + length :]):
        raise ValueError("not a key: its length or padding is wrong (another secret or authenticator?)")
    return plain[1 : 1 + length]


def test_hidden_keys_decode_with_rfc_2548():
    # Fixed authenticators: with a random wrong one, one draw in about 256 decodes to a plausible key by chance
    # (a length octet of 31 needs no padding to check), and the test failed now and then.
    authenticator = bytes(range(16))
    hidden = mppe.hide_key(SEND_START_KEY_128, KEY, authenticator, b"\x81\x23")
    assert len(hidden) == 2 + 32  # salt, then the length octet, the key and padding in two blocks
    assert unhide(hidden, KEY, authenticator) == SEND_START_KEY_128
    with pytest.raises(ValueError):  # bound to the request and the secret
        unhide(hidden, KEY, bytes(range(1, 17)))
    with pytest.raises(ValueError):
        unhide(hidden, b"another-secret", authenticator)


# --- in the server's replies ----------------------------------------------------------------------------------


def client_exchange(password: str, username: str = "ivanov") -> tuple[bytes, bytes, bytes]:
    """What a PPP client sends (RFC 2759) and the MPPE keys it derives on its side (RFC 3079):
    (request attributes, client's receive key, client's send key)."""
    attributes, nt = mschap2_attributes(username, password)
    master = mppe.master_key(_md4(auth.nt_password_hash(password)), nt)
    receive = mppe.asymmetric_start_key(master, send=False, server=False)
    send = mppe.asymmetric_start_key(master, send=True, server=False)
    return attributes, receive, send


def _md4(data: bytes) -> bytes:
    return auth._md4(data)  # OpenSSL 3 does not offer MD4 to hashlib by default


def microsoft_attributes(reply: bytes) -> dict[int, list[bytes]]:
    return {
        key[1]: values
        for key, values in parse_packet(reply).attributes.items()
        if isinstance(key, tuple) and key[0] == 311
    }


@pytest.fixture
def handler(customer, make_nas):
    store = PolicyStore()
    store.load_all()
    return RadiusServer(store=store, nas_table={"127.0.0.1": NasEntry.from_model(make_nas())})


def test_an_mschapv2_accept_carries_mppe_keys_the_client_can_use(handler):
    attributes, client_receive, client_send = client_exchange("s3cret-pw")
    data = access_request(7, attributes)
    reply = handler.handle_auth(data, NAS_ADDR)
    assert reply[0] == 2  # Access-Accept
    ms = microsoft_attributes(reply)
    # RFC 2548: the NAS's Send-Key encrypts what it sends to the client: the client's receive key.
    assert unhide(ms[16][0], KEY, data[4:20]) == client_receive
    assert unhide(ms[17][0], KEY, data[4:20]) == client_send
    assert ms[16][0][:2] != ms[17][0][:2], "each salt in a packet is unique (RFC 2548 §2.4.2)"
    assert ms[7] == [(1).to_bytes(4, "big")]  # MS-MPPE-Encryption-Policy: allowed
    assert ms[8] == [(6).to_bytes(4, "big")]  # MS-MPPE-Encryption-Types: 40- or 128-bit
    assert 26 in ms  # MS-CHAP2-Success


def test_keys_are_per_request_and_never_in_the_shared_accept_body(handler):
    # given two MS-CHAPv2 logins of the same subscriber (same plan, same NAS: one cached accept body)
    first_attributes, first_key, _ = client_exchange("s3cret-pw")
    second_attributes, second_key, _ = client_exchange("s3cret-pw")
    first = access_request(1, first_attributes)
    second = access_request(2, second_attributes)
    first_reply = handler.handle_auth(first, NAS_ADDR)
    second_reply = handler.handle_auth(second, NAS_ADDR)
    # then each reply carries its own exchange's keys
    assert unhide(microsoft_attributes(first_reply)[16][0], KEY, first[4:20]) == first_key
    assert unhide(microsoft_attributes(second_reply)[16][0], KEY, second[4:20]) == second_key
    assert first_key != second_key
    # and the cached body holds none, so a PAP accept with the same body gets no MPPE attributes
    assert all(b"\x00\x00\x01\x37" not in body for body in handler._bodies.values())
    pap = pap_request(3, "ivanov", "s3cret-pw")
    pap_reply = handler.handle_auth(pap, NAS_ADDR)
    assert pap_reply[0] == 2
    assert microsoft_attributes(pap_reply) == {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_radclient_decrypts_the_keys_of_our_accept(customer, make_nas, server, radclient):
    make_nas()
    challenge, peer = os.urandom(16), os.urandom(16)
    password_hash = auth.nt_password_hash("s3cret-pw")
    nt = auth.nt_response(auth.challenge_hash(peer, challenge, "ivanov"), password_hash)
    send, receive = mppe.server_keys(_md4(password_hash), nt)
    response = b"\x07\x00" + peer + bytes(8) + nt
    packet = (
        'User-Name = "ivanov"\nFramed-Protocol = PPP\n'
        f"MS-CHAP-Challenge = 0x{challenge.hex()}\nMS-CHAP2-Response = 0x{response.hex()}\n"
        "Message-Authenticator = 0x00\n"
    )
    with server() as running:
        result = radclient(running.auth_port, SECRET, "auth", packet)
    assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr
    # FreeRADIUS's dictionary marks both keys encrypt=2: radclient un-hides them with the secret and its
    # Request Authenticator and prints the keys themselves.
    printed = dict(re.findall(r"(MS-MPPE-\S+) = (\S+)", result.stdout))
    assert printed["MS-MPPE-Send-Key"].lower() == "0x" + send.hex()
    assert printed["MS-MPPE-Recv-Key"].lower() == "0x" + receive.hex()
    assert printed["MS-MPPE-Encryption-Policy"] in ("Encryption-Allowed", "0x00000001")
    assert printed["MS-MPPE-Encryption-Types"] in ("RC4-40or128-bit-Allowed", "0x00000006")
