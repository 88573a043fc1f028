"""RFC 5176 replay protection on the CoA client: every request carries a current Event-Timestamp, and only an
answer to an outstanding request counts — from the NAS's address and CoA port, with the request's Identifier
and a Response Authenticator made with our Request Authenticator and the shared secret. Anything else is
ignored and the wait goes on, within the deadline, for the right one."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pyrad import packet as radius_packet

from abonent.core import clock
from abonent.network import actions as network
from abonent.network.coa import send_due
from abonent.network.models import CoaReason, CoaRequest, CoaStatus
from abonent.network.radius.codec import DICTIONARY
from abonent.network.testing import CoaListener

from .conftest import SECRET
from .test_coa import T0, open_session

pytestmark = pytest.mark.django_db


def test_every_request_carries_a_current_event_timestamp(customer, make_nas):
    listener = CoaListener(SECRET)
    try:
        session = open_session(customer, make_nas("mikrotik", coa_port=listener.port))
        with clock.travel_to(T0):
            network.queue_disconnect(session.subscriber_id, reason=CoaReason.SUSPEND)
            before = time.time()
            assert send_due(timeout=2.0) == {"acked": 1}
            after = time.time()
    finally:
        listener.close()
    # then the NAS saw one authentic request whose Event-Timestamp is the wall clock of the send (the NAS
    # compares it with its own clock, so the travelled test clock must not leak into it)
    assert [packet["authentic"] for packet in listener.received] == [True]
    stamps = listener.event_timestamps
    assert len(stamps) == 1 and stamps[0] is not None, stamps
    assert int(before) <= stamps[0][0] <= after + 1


class ForgingNas:
    """A NAS's CoA port that, before its real answer (a NAK with Error-Cause 503), lets forged answers arrive
    at the client's socket: valid ACKs signed with the right secret but sent from another port and another
    address, an ACK from the NAS's port with another Identifier, and one signed with another secret."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.other_port = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other_port.bind(("127.0.0.1", 0))
        self.other_address = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other_address.bind(("127.0.0.2", 0))
        self.sent: list[str] = []
        self.failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, name="forging-nas", daemon=True)
        self._thread.start()

    def _reply(self, request, *, code: int, identifier: int | None = None, secret: bytes = SECRET.encode()):
        reply = radius_packet.CoAPacket(
            code=code, id=request.id if identifier is None else identifier, secret=secret, dict=DICTIONARY
        )
        reply.authenticator = request.authenticator
        if code == radius_packet.DisconnectNAK:
            reply["Error-Cause"] = 503
        reply.add_message_authenticator()
        return reply.ReplyPacket()

    def _serve(self) -> None:
        try:
            data, client = self.sock.recvfrom(4096)
            request = radius_packet.CoAPacket(packet=data, secret=SECRET.encode(), dict=DICTIONARY)
            ack = radius_packet.DisconnectACK
            forged = [
                ("another port", self.other_port, self._reply(request, code=ack)),
                ("another address", self.other_address, self._reply(request, code=ack)),
                ("another identifier", self.sock, self._reply(request, code=ack, identifier=(request.id + 1) % 256)),
                ("another secret", self.sock, self._reply(request, code=ack, secret=b"not-the-shared-secret")),
            ]
            for name, sock, raw in forged:
                sock.sendto(raw, client)
                self.sent.append(name)
            time.sleep(0.2)  # the client has read them all before the real answer comes
            self.sock.sendto(self._reply(request, code=radius_packet.DisconnectNAK), client)
            self.sent.append("real")
        except BaseException as exc:  # surfaced to the test
            self.failure.append(exc)

    def close(self) -> None:
        self._thread.join(10)
        for sock in (self.sock, self.other_port, self.other_address):
            sock.close()


def test_forged_answers_are_ignored_and_the_real_one_after_them_is_taken(customer, make_nas):
    nas_port = ForgingNas()
    try:
        session = open_session(customer, make_nas("mikrotik", coa_port=nas_port.port))
        with clock.travel_to(T0):
            [request] = network.queue_disconnect(session.subscriber_id, reason=CoaReason.SUSPEND)
            started = time.monotonic()
            counts = send_due(timeout=3.0)
            elapsed = time.monotonic() - started
    finally:
        nas_port.close()
    assert not nas_port.failure, nas_port.failure
    assert nas_port.sent == ["another port", "another address", "another identifier", "another secret", "real"]
    # then none of the forged ACKs ended the request: the NAS's own NAK (503) did, before the deadline
    assert counts == {"naked": 1}
    request.refresh_from_db()
    assert (request.status, request.error_cause) == (CoaStatus.NAKED, 503)
    assert elapsed < 2.5
    assert CoaRequest.objects.count() == 1
