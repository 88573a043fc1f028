"""Attack review of telephony's writes and pages: absurd periods, long ids and peers from the wire, a call linked to
an unrelated subscriber's request, bad webhook bodies. Each test failed on the code under review."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from abonent.helpdesk.actions import do_open_ticket
from abonent.helpdesk.validation import TicketData
from abonent.integrations.telephony import actions
from abonent.integrations.telephony.asterisk import Book, Pops
from abonent.integrations.telephony.models import Call, CallStatus, ScreenPop
from abonent.integrations.telephony.webhook import sign
from abonent.staff.permissions import Role

SECRET = "hook-secret-0123456789"


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", ["?start=2026-12-01&end=9999-12-31", "?start=0001-01-01&end=2026-12-01", "?start=9999-12-31"]
)
def test_kpis_of_an_absurd_period_are_not_a_500(admin, query):
    response = client_of(admin).get("/staff/telephony/kpis/" + query)
    assert response.status_code in (200, 400)


@pytest.mark.django_db(transaction=True)
def test_one_ring_at_a_long_peer_name_does_not_drop_the_batchs_other_pops(operator, give_extension, make_subscriber):
    # A DialBegin to a trunk whose name is longer than any extension (21+ characters) in the same batch as a ring at
    # an operator's desk: PostgreSQL refused the whole batch's INSERT, so the operator's pop was lost.
    give_extension(operator, "101")
    make_subscriber(phone="+79161234567")
    base = {"Event": "DialBegin", "CallerIDNum": "+79161234567", "Exten": "74950000000"}
    batch = [
        {**base, "Linkedid": "1765101600.1", "DestChannel": "PJSIP/sipnet-outbound-trunk-provider-0000002a"},
        {**base, "Linkedid": "1765101600.2", "DestChannel": "PJSIP/101-0000000b"},
    ]
    Pops().run_batch(batch)
    assert [p.payload["pbx_call_id"] for p in ScreenPop.objects.filter(extension="101")] == ["1765101600.2"]


@pytest.mark.django_db(transaction=True)
def test_a_linkedid_over_100_characters_is_one_call_through_all_its_events(make_subscriber):
    # Asterisk's unique ids may be 150 characters (Originate ChannelId): the first event made a row with the id cut
    # to 100, every later one looked for the whole id, collided with the cut one and was dropped.
    make_subscriber(phone="+79161234567")
    cid = "originate-" + "x" * 120
    book = Book()
    book.run_batch(
        [
            {"Event": "DialBegin", "Linkedid": cid, "CallerIDNum": "+79161234567", "DestChannel": "PJSIP/101-0001"},
            {"Event": "DialEnd", "Linkedid": cid, "DialStatus": "ANSWER", "DestChannel": "PJSIP/101-0001"},
            {"Event": "Hangup", "Linkedid": cid, "Uniqueid": cid, "Cause": "16"},
            {"Event": "Cdr", "UniqueID": cid, "Disposition": "ANSWERED", "BillableSeconds": "42"},
        ]
    )
    call = Call.objects.get()
    assert (call.status, call.duration_seconds, call.ended_at is not None) == (CallStatus.ANSWERED, 42, True)


@pytest.mark.django_db
def test_a_call_is_not_linked_to_a_request_of_a_subscriber_it_is_not_of(make_staff, branch, make_subscriber, admin):
    caller = make_subscriber(phone="+79160000011")
    stranger = make_subscriber(last_name="Петров", phone="+79160000012")
    ticket = do_open_ticket(
        stranger, TicketData(category="billing", subject="Счёт", text="Вопрос"), source="console", acting_user=admin
    )
    call = actions.do_register_ring("ami", "L1", extension="101", caller_number="+79160000011")
    assert list(call.subscribers.all()) == [caller]

    response = client_of(make_staff(Role.OPERATOR, branches=[branch])).post(
        f"/staff/telephony/calls/{call.pk}/ticket/", {"ticket": ticket.pk}
    )

    assert response.status_code == 404
    assert Call.objects.get().ticket_id is None


def _signed_post(raw: bytes, stamp: str):
    return Client().post(
        "/hooks/telephony/",
        raw,
        content_type="application/json",
        HTTP_X_ABONENT_TIMESTAMP=stamp,
        HTTP_X_ABONENT_SIGNATURE=sign(SECRET, stamp, raw),
    )


@pytest.mark.django_db
def test_webhook_deeply_nested_json_is_a_400_not_a_500(settings):
    settings.ABONENT_TELEPHONY_WEBHOOK_SECRET = SECRET
    response = _signed_post(b"[" * 10_000 + b"]" * 10_000, str(int(time.time())))
    assert response.status_code == 400


@pytest.mark.django_db
def test_webhook_huge_timestamp_is_a_403_not_a_500(settings):
    settings.ABONENT_TELEPHONY_WEBHOOK_SECRET = SECRET
    raw = json.dumps({"provider": "mango", "call_id": "c", "event": "recording"}).encode()
    response = _signed_post(raw, "1" + "0" * 400)
    assert response.status_code == 403 and response.json()["code"] == "stale_timestamp"


@pytest.mark.django_db
@pytest.mark.parametrize("at", ["2026-13-45T10:00:00+03:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_webhook_impossible_or_absurd_time_names_the_field(settings, at):
    settings.ABONENT_TELEPHONY_WEBHOOK_SECRET = SECRET
    raw = json.dumps({"provider": "mango", "call_id": "c", "event": "recording", "at": at}).encode()
    response = _signed_post(raw, str(int(time.time())))
    assert (response.status_code, response.json().get("field")) == (400, "at")
    assert not Call.objects.exists()


@pytest.mark.django_db
def test_webhook_body_over_djangos_upload_limit_is_a_413_like_any_too_large_body(settings):
    settings.ABONENT_TELEPHONY_WEBHOOK_SECRET = SECRET
    raw = b'{"x": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    response = _signed_post(raw, str(int(time.time())))
    assert response.status_code == 413


@pytest.mark.django_db
def test_webhook_cannot_write_into_the_asterisk_calls(settings):
    # provider "ami" is the AMI listener's source: a cloud adapter posting it changed Asterisk's calls (their
    # recordings, statuses).
    settings.ABONENT_TELEPHONY_WEBHOOK_SECRET = SECRET
    call = actions.do_register_ring("ami", "1765101600.5", extension="101", caller_number="+79161234567")
    raw = json.dumps(
        {"provider": "ami", "call_id": "1765101600.5", "event": "recording", "recording_file": "other.wav"}
    ).encode()
    response = _signed_post(raw, str(int(time.time())))
    assert (response.status_code, response.json().get("field")) == (400, "provider")
    call.refresh_from_db()
    assert call.recording_file == ""


@pytest.mark.django_db(transaction=True)
def test_an_absurd_billable_seconds_does_not_drop_the_cdrs_status_and_recording(recordings):
    (recordings / "r.wav").write_bytes(b"RIFF")
    Book().run_batch(
        [
            {"Event": "DialBegin", "Linkedid": "c9", "CallerIDNum": "+79161234567", "DestChannel": "PJSIP/101-1"},
            {
                "Event": "Cdr",
                "UniqueID": "c9",
                "Disposition": "ANSWERED",
                "BillableSeconds": "99999999999999",
                "Recordingfile": "r.wav",
            },
        ]
    )
    call = Call.objects.get()
    assert (call.status, call.recording_file) == (CallStatus.ANSWERED, "r.wav")


@pytest.mark.django_db
def test_a_caller_id_of_markup_is_text_in_the_pages(admin, make_subscriber, branch):
    # Defence that holds: CALLERIDNUM/NAME come from whoever calls.
    subscriber = make_subscriber(phone="+79161234567")
    call = actions.do_register_ring("ami", "x1", extension="<b>1</b>", caller_number='"><script>alert(1)</script>')
    call.subscribers.add(subscriber)
    client = client_of(admin)
    for url in ("/staff/telephony/extensions/", f"/staff/subscribers/{subscriber.pk}/"):
        page = client.get(url).content.decode()
        assert "<script>alert(1)" not in page and "<b>1</b>" not in page


@pytest.mark.django_db
def test_staff_who_may_not_see_calls_cannot_link_one(make_staff, branch, make_subscriber, admin):
    # An engineer handles requests (ticket.manage) but has no call.view: they could still change calls' links.
    subscriber = make_subscriber(phone="+79160000021")
    ticket = do_open_ticket(
        subscriber, TicketData(category="billing", subject="Счёт", text="Вопрос"), source="console", acting_user=admin
    )
    call = actions.do_register_ring("ami", "E1", extension="101", caller_number="+79160000021")
    response = client_of(make_staff(Role.ENGINEER, branches=[branch])).post(
        f"/staff/telephony/calls/{call.pk}/ticket/", {"ticket": ticket.pk}
    )
    assert response.status_code == 403
    assert Call.objects.get().ticket_id is None


@pytest.mark.django_db
def test_a_branch_limited_administrator_sees_no_other_branchs_callers(make_staff, make_subscriber, other_branch):
    make_subscriber(phone="+79160000031")  # of `branch`
    actions.do_register_ring("ami", "B1", extension="101", caller_number="+79160000031")
    actions.do_register_ring("ami", "B2", extension="101", caller_number="+79160000099")  # nobody's number
    limited = make_staff(Role.ADMIN, branches=[other_branch])
    page = client_of(limited).get("/staff/telephony/extensions/").content.decode()
    assert "79160000031" not in page and "79160000099" not in page


@pytest.fixture
def recorded(make_subscriber, recordings):
    make_subscriber(phone="+79161234567")
    (recordings / "r1.wav").write_bytes(b"RIFF0123456789")
    actions.do_register_ring("ami", "R1", extension="101", caller_number="+79161234567")
    return actions.do_register_cdr("ami", "R1", status="answered", duration_seconds=3, recording_file="r1.wav")


@pytest.mark.django_db
def test_a_recording_answers_range_requests_so_the_player_can_seek(recorded, admin):
    # Chromium's <audio> seeks with Range: a whole-file 200 without Accept-Ranges meant no seeking in a long call.
    client = client_of(admin)
    url = f"/staff/telephony/calls/{recorded.pk}/recording/"
    whole = client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    part = client.get(url, HTTP_RANGE="bytes=4-7")
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == b"0123"
    assert part["Content-Range"] == "bytes 4-7/14" and part["Content-Length"] == "4"
    assert part["Content-Type"] == "audio/x-wav"
    tail = client.get(url, HTTP_RANGE="bytes=-3")
    assert (tail.status_code, b"".join(tail.streaming_content)) == (206, b"789")
    assert client.get(url, HTTP_RANGE="bytes=50-60").status_code == 416
    odd = client.get(url, HTTP_RANGE="bytes=zz")  # unreadable: the whole file, as RFC 9110 says
    assert (odd.status_code, b"".join(odd.streaming_content)) == (200, b"RIFF0123456789")


@pytest.mark.django_db
def test_a_shared_phones_call_shows_another_branchs_request_on_no_card(
    make_staff, make_subscriber, admin, other_branch
):
    # One phone, two subscribers of two branches: the call is on both cards. Linked to the first one's request, the
    # second card (seen by the other branch's staff) showed that request's number and link.
    first = make_subscriber(phone="+79160000041")
    second = make_subscriber(last_name="Сидоров", phone="+79160000041", branch_obj=other_branch)
    ticket = do_open_ticket(
        first, TicketData(category="billing", subject="Счёт", text="Вопрос"), source="console", acting_user=admin
    )
    call = actions.do_register_ring("ami", "S1", extension="101", caller_number="+79160000041")
    actions.do_link_call_ticket(call, ticket, acting_user=admin)
    page = client_of(make_staff(Role.OPERATOR, branches=[other_branch])).get(f"/staff/subscribers/{second.pk}/")
    html = page.content.decode()
    assert f'data-call="{call.pk}"' in html
    assert f"/staff/helpdesk/{ticket.pk}" not in html and f"/tickets/{ticket.pk}/" not in html


@pytest.mark.django_db(transaction=True)
def test_a_call_first_heard_at_its_hangup_gets_its_caller_from_the_cdr(make_subscriber):
    # `abonent telephony` restarted mid-call: the first event it hears is the Hangup (no number), then the CDR with
    # the caller's number. The row was made without the number and kept so: no subscriber, not on any card.
    subscriber = make_subscriber(phone="+79161234567")
    Book().run_batch(
        [
            {"Event": "Hangup", "Linkedid": "h1", "Uniqueid": "h1", "Cause": "16"},
            {
                "Event": "Cdr",
                "UniqueID": "h1",
                "Source": "89161234567",
                "Destination": "74950000000",
                "Disposition": "ANSWERED",
                "BillableSeconds": "30",
            },
        ]
    )
    call = Call.objects.get()
    assert (call.caller_number, call.caller_e164, call.called_number) == ("89161234567", "+79161234567", "74950000000")
    assert list(call.subscribers.all()) == [subscriber]
