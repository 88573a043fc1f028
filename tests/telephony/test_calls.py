"""Calls from events: the AMI wire format, replays and reordering, number matching, extensions, KPIs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from abonent.core.models import AuditEvent
from abonent.helpdesk.actions import do_open_ticket
from abonent.helpdesk.validation import TicketData
from abonent.integrations.telephony import actions, pops, selectors
from abonent.integrations.telephony.ami import MAX_LINE, Parser
from abonent.integrations.telephony.asterisk import Book, Pops, channel_peer
from abonent.integrations.telephony.models import Call, CallStatus, Extension, ScreenPop
from abonent.integrations.telephony.testing import incoming_call
from abonent.staff.permissions import Role

# --- the wire format (no database) ----------------------------------------------------------------------------


def test_parser_reads_messages_across_chunks_and_skips_garbage():
    parser = Parser()
    data = (
        b"Asterisk Call Manager/5.0.2\r\n"
        b"Response: Success\r\nActionID: login\r\n\r\n"
        b"no colon here\r\nEvent: Hangup\r\nUniqueid: 1.1\r\nChanVariable: MIXMONITOR_FILENAME=/r/a.wav\r\n\r\n"
    )
    messages = []
    for i in range(0, len(data), 7):  # torn into 7-byte chunks
        messages += parser.feed(data[i : i + 7])
    assert messages == [
        {"_banner": "5.0.2"},
        {"Response": "Success", "ActionID": "login"},
        {"Event": "Hangup", "Uniqueid": "1.1", "_vars": {"MIXMONITOR_FILENAME": "/r/a.wav"}},
    ]
    assert parser.garbage == 1


def test_parser_drops_an_endless_line_without_buffering_it():
    parser = Parser()
    assert parser.feed(b"x" * (MAX_LINE * 3)) == []
    assert len(parser.buffer) <= MAX_LINE
    assert parser.feed(b"still the same line\r\nEvent: Cdr\r\n\r\n") == [{"Event": "Cdr"}]
    assert parser.garbage >= 1


def test_channel_peer():
    assert channel_peer("PJSIP/101-0000000a") == "101"
    assert channel_peer("SIP/trunk-00af") == "trunk"
    assert channel_peer("Local/102@from-queue-00000001;1") == "102"
    assert channel_peer("garbage") == ""


def test_numbers_are_normalised_to_e164(settings):
    settings.ABONENT_PHONE_REGION = "RU"
    assert selectors.normalize_number("8 (916) 123-45-67") == "+79161234567"
    assert selectors.normalize_number("9161234567") == "+79161234567"
    assert selectors.normalize_number("+7 916 1234567") == "+79161234567"
    for junk in ("101", "anonymous", "", "+" + "9" * 60, "<unknown>"):
        assert selectors.normalize_number(junk) == "", junk


# --- events to calls --------------------------------------------------------------------------------------------


def _feed(book: Book, raw: bytes) -> None:
    """As the dispatcher does: each event to the ring lane (the pop) and to the calls' lane."""
    for message in Parser().feed(raw):
        Pops().handle(message)
        book.handle(message)


@pytest.mark.django_db
def test_a_replayed_session_changes_nothing_and_pops_once(operator, give_extension, make_subscriber):
    give_extension(operator, "101")
    make_subscriber(phone="+79161234567")
    events = incoming_call("L1", "+79161234567", "101", recording="a.wav")
    book = Book()
    whole = b"".join(events.values())
    _feed(book, whole)
    first = Call.objects.values().get()
    _feed(book, whole)  # Asterisk's replay after a reconnect, or a second listener
    assert Call.objects.values().get() == first
    assert first["status"] == CallStatus.ANSWERED and first["duration_seconds"] == 42
    assert ScreenPop.objects.count() == 1  # the replayed ring of a finished call pops nobody


@pytest.mark.django_db
def test_events_out_of_order_end_in_the_same_call(operator, give_extension):
    give_extension(operator, "101")
    events = incoming_call("L2", "+79161234567", "101")
    book = Book()
    _feed(book, events["cdr"] + events["hangup"] + events["dial_end"] + events["ring"] + events["new"])
    call = Call.objects.get()
    assert (call.status, call.duration_seconds, call.operator_id) == (CallStatus.ANSWERED, 42, operator.pk)


@pytest.mark.django_db
def test_unanswered_call_is_missed_and_a_busy_one_busy(operator, give_extension):
    give_extension(operator, "101")
    book = Book()
    missed = incoming_call("L3", "+79161234567", "101", answer=False)
    _feed(book, missed["new"] + missed["ring"] + missed["hangup"])
    assert Call.objects.get(pbx_call_id="L3").status == CallStatus.MISSED
    busy = incoming_call("L4", "+79161234567", "101", answer=False)
    _feed(book, busy["new"] + busy["ring"] + busy["hangup"].replace(b"Cause: 16", b"Cause: 17"))
    assert Call.objects.get(pbx_call_id="L4").status == CallStatus.BUSY


@pytest.mark.django_db
def test_a_ring_group_legs_cdr_does_not_undo_the_answer(operator, give_extension):
    give_extension(operator, "101")
    book = Book()
    events = incoming_call("L5", "+79161234567", "101")
    leg = incoming_call("L5", "+79161234567", "102", answer=False)["cdr"]
    _feed(book, events["new"] + events["ring"] + events["dial_end"] + events["cdr"] + leg)
    call = Call.objects.get()
    assert (call.status, call.duration_seconds) == (CallStatus.ANSWERED, 42)


@pytest.mark.django_db
def test_an_operator_dialling_out_pops_nothing(operator, give_extension):
    give_extension(operator, "101")
    book = Book()
    from abonent.integrations.telephony.testing import message

    _feed(
        book,
        message(
            Event="Newchannel",
            Channel="PJSIP/101-01",
            CallerIDNum="101",
            Exten="89161234567",
            Uniqueid="O1",
            Linkedid="O1",
        )
        + message(
            Event="DialBegin",
            Channel="PJSIP/101-01",
            CallerIDNum="101",
            DestChannel="PJSIP/trunk-02",
            Uniqueid="O1",
            Linkedid="O1",
        ),
    )
    call = Call.objects.get()
    assert (call.direction, call.operator_id, call.called_number) == ("outbound", operator.pk, "89161234567")
    assert ScreenPop.objects.count() == 0


@pytest.mark.django_db
def test_a_shared_phone_matches_several_subscribers_up_to_the_limit(make_subscriber, operator, give_extension):
    give_extension(operator, "101")
    family = [make_subscriber(phone="+79160000001", last_name=f"Семья{i}") for i in range(selectors.MATCH_LIMIT + 1)]
    pops.send_pop("ami", "S1", extension="101", caller_number="+79160000001")
    call = actions.do_register_ring("ami", "S1", extension="101", caller_number="+79160000001")
    payload = ScreenPop.objects.get().payload
    assert len(payload["matches"]) == selectors.MATCH_LIMIT and payload["more"] is True
    assert call.subscribers.count() == selectors.MATCH_LIMIT + 1 or call.subscribers.count() == len(family)


@pytest.mark.django_db
def test_pop_is_cut_to_the_viewers_permissions_and_branches(make_subscriber, make_staff, branch, other_branch):
    subscriber = make_subscriber(phone="+79160000002")
    payload = pops.send_pop("ami", "V1", extension="101", caller_number="+79160000002").payload
    cashier = pops.for_viewer(payload, pops.Viewer.of(make_staff(Role.CASHIER, branches=[branch]), "en"))
    engineer = pops.for_viewer(payload, pops.Viewer.of(make_staff(Role.ENGINEER, branches=[other_branch]), "en"))
    assert cashier["subscribers"][0]["lines"] == ["Balance: 0.00\xa0₽", "Access: Active", "Open requests: 0"]
    assert cashier["subscribers"][0]["account"] == subscriber.account_number
    assert engineer["subscribers"] == [{"foreign": True, "text": "A subscriber of another branch"}]
    russian = pops.for_viewer(payload, pops.Viewer.of(make_staff(Role.ADMIN), "ru"))
    assert russian["title"].startswith("Входящий звонок") or russian["title"].startswith("Incoming")


# --- extensions (audited) ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_extensions_are_unique_and_audited(admin, make_staff):
    alice, bob = make_staff(Role.OPERATOR), make_staff(Role.OPERATOR)
    actions.do_set_extension(alice, "101", acting_user=admin)
    with pytest.raises(ValidationError) as taken:
        actions.do_set_extension(bob, "101", acting_user=admin)
    assert taken.value.error_dict["number"][0].code == "taken"
    with pytest.raises(ValidationError):
        actions.do_set_extension(bob, "10 1; DROP", acting_user=admin)
    with pytest.raises(PermissionDenied):
        actions.do_set_extension(bob, "102", acting_user=alice)
    assert dict(Extension.objects.values_list("number", "user_id")) == {"101": alice.pk}
    assert AuditEvent.objects.filter(action="telephony.extension_set").count() == 1
    actions.do_set_extension(alice, "", acting_user=admin)
    assert Extension.objects.count() == 0


@pytest.mark.django_db
def test_extensions_page_sets_one(admin, make_staff):
    alice = make_staff(Role.OPERATOR)
    client = Client()
    client.force_login(admin)
    response = client.post("/staff/telephony/extensions/", {"user": alice.pk, "number": "105"})
    assert response.status_code == 302
    assert Extension.objects.get().user == alice
    assert client.post("/staff/telephony/extensions/", {"user": admin.pk, "number": "105"}).status_code == 200
    assert Extension.objects.count() == 1


# --- KPIs ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_operator_kpis(admin, make_staff, give_extension, make_subscriber):
    alice, bob = make_staff(Role.OPERATOR, username="alice"), make_staff(Role.OPERATOR, username="bob")
    give_extension(alice, "101")
    give_extension(bob, "102")
    subscriber = make_subscriber(phone="+79160000003")
    ticket = do_open_ticket(
        subscriber,
        TicketData(category="no_connection", subject="Нет связи", text="Не работает"),
        source="console",
        acting_user=admin,
    )
    at = dt.datetime(2026, 12, 7, 10, tzinfo=dt.UTC)

    def call(cid, ext, status, seconds):
        actions.do_register_ring("ami", cid, extension=ext, caller_number="+79160000003", at=at)
        if status == CallStatus.ANSWERED:
            actions.do_register_answer("ami", cid, extension=ext, at=at)
        return actions.do_register_cdr("ami", cid, status=status, duration_seconds=seconds)

    for cid, seconds in (("a1", 60), ("a2", 120), ("a3", 90)):
        c = call(cid, "101", CallStatus.ANSWERED, seconds)
        if cid != "a3":
            actions.do_link_call_ticket(c, ticket, acting_user=admin)
    call("a4", "101", CallStatus.MISSED, 0)
    call("b1", "102", CallStatus.BUSY, 0)
    call("b2", "102", CallStatus.ANSWERED, 30)
    call("old", "102", CallStatus.ANSWERED, 999)
    Call.objects.filter(pbx_call_id="old").update(started_at=at - dt.timedelta(days=40))

    rows = selectors.operator_kpis(at - dt.timedelta(days=1), at + dt.timedelta(days=1))

    by_id = {r.operator_id: r for r in rows}
    assert set(by_id) == {alice.pk, bob.pk}
    ka, kb = by_id[alice.pk], by_id[bob.pk]
    assert (ka.calls, ka.answered, ka.missed, ka.average_handling_seconds) == (4, 3, 1, 90)
    assert (ka.tickets, ka.calls_with_ticket, ka.calls_per_ticket) == (1, 2, 2.0)
    assert (kb.calls, kb.answered, kb.missed, kb.average_handling_seconds, kb.calls_per_ticket) == (2, 1, 1, 30, None)


@pytest.mark.django_db
def test_kpis_page_is_for_telephony_managers(admin, operator):
    client = Client()
    client.force_login(operator)
    assert client.get("/staff/telephony/kpis/").status_code == 403
    client.force_login(admin)
    response = client.get("/staff/telephony/kpis/?start=2026-12-01&end=2026-12-31")
    assert response.status_code == 200 and b'id="kpi-period"' in response.content


@pytest.mark.django_db
def test_linking_a_call_to_another_branchs_ticket_is_refused(make_staff, other_branch, make_subscriber, admin):
    subscriber = make_subscriber(phone="+79160000004")
    ticket = do_open_ticket(
        subscriber,
        TicketData(category="no_connection", subject="Нет связи", text="x"),
        source="console",
        acting_user=admin,
    )
    call = actions.do_register_ring("ami", "X1", extension="101", caller_number="+79160000004")
    with pytest.raises(PermissionDenied):
        actions.do_link_call_ticket(call, ticket, acting_user=make_staff(Role.OPERATOR, branches=[other_branch]))
    assert Call.objects.get().ticket_id is None


@pytest.mark.django_db
def test_the_card_links_a_call_to_an_open_request(make_staff, branch, other_branch, make_subscriber, admin):
    subscriber = make_subscriber(phone="+79160000005")
    ticket = do_open_ticket(
        subscriber, TicketData(category="billing", subject="Счёт", text="Вопрос"), source="console", acting_user=admin
    )
    call = actions.do_register_ring("ami", "K1", extension="101", caller_number="+79160000005")
    outsider = Client()
    outsider.force_login(make_staff(Role.OPERATOR, branches=[other_branch]))
    assert outsider.post(f"/staff/telephony/calls/{call.pk}/ticket/", {"ticket": ticket.pk}).status_code == 404
    assert Call.objects.get().ticket_id is None

    client = Client()
    client.force_login(make_staff(Role.OPERATOR, branches=[branch]))
    card = client.get(f"/staff/subscribers/{subscriber.pk}/").content.decode()
    assert f'action="/staff/telephony/calls/{call.pk}/ticket/"' in card
    response = client.post(f"/staff/telephony/calls/{call.pk}/ticket/", {"ticket": ticket.pk})
    assert response.status_code == 302 and response["Location"] == f"/staff/subscribers/{subscriber.pk}/"
    assert Call.objects.get().ticket == ticket
    assert AuditEvent.objects.filter(action="telephony.call_linked", subscriber_id=subscriber.pk).count() == 1
    assert client.post(f"/staff/telephony/calls/{call.pk}/ticket/", {"ticket": "x"}).status_code == 404
