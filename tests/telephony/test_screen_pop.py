"""An AMI session played by a local server speaking Asterisk's protocol, through ``abonent telephony``'s client,
to operators' SSE streams served by uvicorn: the pop reaches the operator whose extension rings, within a second,
and nobody else; the call lands in the card's history with its recording."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from abonent.integrations.telephony.models import Call, CallStatus
from abonent.integrations.telephony.testing import SseReader, drain, incoming_call, running_client, running_web
from abonent.staff.permissions import Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("telephony-live")]


def test_ami_ring_pops_the_ringing_operator_only_and_the_call_lands_in_history(
    ami_server, make_staff, make_subscriber, give_extension, cookies_of, recordings
):
    # given two operators at extensions 101 and 102, a subscriber with the caller's phone and the recording on disk
    alice, bob = make_staff(Role.OPERATOR, username="alice"), make_staff(Role.OPERATOR, username="bob")
    give_extension(alice, "101")
    give_extension(bob, "102")
    subscriber = make_subscriber(phone="+79161234567")
    (recordings / "2026" / "12").mkdir(parents=True)
    (recordings / "2026" / "12" / "call-1.wav").write_bytes(b"RIFF....WAVEfmt recorded voice")
    events = incoming_call("1765101600.17", "8 (916) 123-45-67", "101", recording="2026/12/call-1.wav")

    with (
        running_web() as base,
        SseReader(f"{base}/staff/telephony/events/", cookies_of(alice)) as alice_stream,
        SseReader(f"{base}/staff/telephony/events/", cookies_of(bob)) as bob_stream,
        running_client(ami_server.port) as client,
    ):
        ami_server.wait_logins(1)
        # when Asterisk sends the call's first events with garbage lines between them
        ami_server.send(b"this line has no colon\r\n" + events["new"] + b"\xff\xfe\x00 torn bytes\r\n\r\n")
        sent = time.time()
        ami_server.send(b"Some garbage: \r\nwith no end\r\n\r\n" + events["ring"])
        pop = alice_stream.next(timeout=1.0)
        # then alice's console gets the pop within a second, with the subscriber's card link and figures
        assert pop is not None, "no screen-pop within 1 s"
        received, name, data = pop
        assert name == "pop"
        assert received - sent < 1.0
        shown = json.loads(data)
        assert shown["title"] == "Incoming call: +7 916 123-45-67"
        [card] = shown["subscribers"]
        assert card["url"] == f"/staff/subscribers/{subscriber.pk}/"
        assert card["account"] == subscriber.account_number
        assert card["name"] == subscriber.display_name
        assert card["lines"] == ["Balance: 0.00\xa0₽", "Access: Active", "Open requests: 0"]

        # when the connection drops mid-call and the client comes back to hear the rest
        ami_server.drop()
        ami_server.wait_logins(2, timeout=5)
        ami_server.send(events["dial_end"] + b"garbage\r\n" + events["hangup"] + events["cdr"])
        drain(client)
        # then bob, at another extension, saw nothing
        assert bob_stream.next(timeout=0.3) is None
        assert client["client"].stats.garbage >= 3

    call = Call.objects.get(source="ami", pbx_call_id="1765101600.17")
    assert (call.status, call.extension, call.operator_id) == (CallStatus.ANSWERED, "101", alice.pk)
    assert (call.caller_e164, call.duration_seconds, call.recording_file) == ("+79161234567", 42, "2026/12/call-1.wav")
    assert call.answered_at is not None and call.ended_at is not None
    assert list(call.subscribers.all()) == [subscriber]

    # and the card shows the call with its recording, which alice can play through the authorised view
    client = Client()
    client.force_login(alice)
    card = client.get(f"/staff/subscribers/{subscriber.pk}/").content.decode()
    assert f'data-call="{call.pk}"' in card
    assert f'src="/staff/telephony/calls/{call.pk}/recording/"' in card
    played = client.get(f"/staff/telephony/calls/{call.pk}/recording/")
    assert played.status_code == 200
    assert played["Content-Type"] == "audio/x-wav"
    assert b"".join(played.streaming_content) == b"RIFF....WAVEfmt recorded voice"


def test_branch_limited_operator_sees_only_that_it_is_another_branchs_subscriber(
    ami_server, make_staff, make_subscriber, other_branch, give_extension, cookies_of
):
    # given an operator limited to another branch than the caller's subscriber
    carol = make_staff(Role.OPERATOR, username="carol", branches=[other_branch])
    give_extension(carol, "103")
    subscriber = make_subscriber(phone="+79161230000", last_name="Секретов")
    events = incoming_call("1765101700.5", "+79161230000", "103")

    with (
        running_web() as base,
        SseReader(f"{base}/staff/telephony/events/", cookies_of(carol)) as stream,
        running_client(ami_server.port),
    ):
        ami_server.wait_logins(1)
        ami_server.send(events["new"] + events["ring"])
        pop = stream.next(timeout=1.0)

    # then the pop says only that, without the name, account or balance
    assert pop is not None
    assert json.loads(pop[2])["subscribers"] == [{"foreign": True, "text": "A subscriber of another branch"}]
    assert subscriber.account_number not in pop[2] and "Секретов" not in pop[2]


def test_staff_without_an_extension_get_no_stream(operator, cookies_of):
    with running_web() as base, SseReader(f"{base}/staff/telephony/events/", cookies_of(operator)) as stream:
        pass
    assert stream.status == 204


def test_login_refused_is_retried_without_crashing(ami_server):
    # given a client with a wrong secret
    with running_client(ami_server.port, secret="wrong") as client:
        deadline = time.monotonic() + 3
        while ami_server.refused < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    # then it was refused, backed off and tried again, and never logged in
    assert ami_server.refused >= 2
    assert ami_server.logins == 0
    assert client["client"].stats.logins == 0
