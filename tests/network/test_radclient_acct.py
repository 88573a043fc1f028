"""Accounting from FreeRADIUS's radclient: sessions, 64-bit counters, retransmissions, NAS reboots."""

import pytest

from abonent.billing.models import OnlineDay
from abonent.network.models import Session, SessionStatus, UsageDay

from .conftest import SECRET

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("radius")]


def acct(status: str, session: str = "sess-1", **attrs) -> str:
    lines = [
        'User-Name = "ivanov"',
        f"Acct-Status-Type = {status}",
        f'Acct-Session-Id = "{session}"',
        "NAS-IP-Address = 127.0.0.1",
        'NAS-Port-Id = "ether1"',
        "Framed-IP-Address = 100.64.0.7",
        'Calling-Station-Id = "AA:BB:CC:DD:EE:01"',
    ]
    lines += [f"{name.replace('_', '-')} = {value}" for name, value in attrs.items()]
    return "\n".join(lines) + "\n"


def send(radclient, running, packet: str, **kw):
    result = radclient(running.acct_port, SECRET, "acct", packet, **kw)
    assert "Received Accounting-Response" in result.stdout, result.stdout + result.stderr
    return result


def test_start_interim_stop_with_a_gigawords_rollover_adds_up_exactly(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        send(radclient, running, acct("Start"))
        # 4 GiB − 1,000 bytes in, then past the 32-bit wrap: Gigawords = 1, Octets small.
        send(
            radclient,
            running,
            acct("Interim-Update", Acct_Session_Time=300, Acct_Input_Octets=4294966296, Acct_Output_Octets=1000),
        )
        send(
            radclient,
            running,
            acct(
                "Interim-Update",
                Acct_Session_Time=600,
                Acct_Input_Octets=500,
                Acct_Input_Gigawords=1,
                Acct_Output_Octets=2000,
            ),
        )
        send(
            radclient,
            running,
            acct(
                "Stop",
                Acct_Session_Time=900,
                Acct_Input_Octets=7000,
                Acct_Input_Gigawords=1,
                Acct_Output_Octets=3000,
                Acct_Output_Gigawords=2,
                Acct_Terminate_Cause="User-Request",
            ),
        )
    session = Session.objects.get()
    assert session.status == SessionStatus.CLOSED
    assert session.input_octets == (1 << 32) + 7000
    assert session.output_octets == (2 << 32) + 3000
    assert session.session_time == 900
    assert session.terminate_cause == "User-Request"
    assert (session.subscriber_id, session.framed_ip, session.calling_station_id) == (
        customer.pk,
        "100.64.0.7",
        "AA:BB:CC:DD:EE:01",
    )
    usage = UsageDay.objects.get(subscriber=customer)
    # The daily usage is the sum of per-record deltas: exactly the final totals.
    assert (usage.input_octets, usage.output_octets) == ((1 << 32) + 7000, (2 << 32) + 3000)
    assert OnlineDay.objects.filter(subscriber=customer).count() == 1


def test_a_nas_without_gigawords_wrapping_its_32_bit_counter_is_still_counted(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        send(radclient, running, acct("Start"))
        for seconds, octets in ((300, 4294966296), (600, 500), (900, 7000)):
            send(
                radclient,
                running,
                acct("Interim-Update", Acct_Session_Time=seconds, Acct_Input_Octets=octets, Acct_Output_Octets=seconds),
            )
    session = Session.objects.get()
    assert (session.input_octets, session.output_octets) == ((1 << 32) + 7000, 900)
    usage = UsageDay.objects.get(subscriber=customer)
    assert (usage.input_octets, usage.output_octets) == ((1 << 32) + 7000, 900)


def test_the_same_interim_sent_three_times_counts_once(customer, make_nas, server, radclient):
    make_nas()
    packet = acct("Interim-Update", Acct_Session_Time=300, Acct_Input_Octets=123456, Acct_Output_Octets=654321)
    with server() as running:
        for _ in range(3):
            send(radclient, running, packet)
        # radclient's own retransmission of one request (same id and authenticator) as well.
        send(radclient, running, packet, extra=("-c", "3"))
    assert Session.objects.count() == 1
    usage = UsageDay.objects.get(subscriber=customer)
    assert (usage.input_octets, usage.output_octets) == (123456, 654321)


def test_stop_before_start_and_interim_after_stop(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        send(radclient, running, acct("Stop", Acct_Session_Time=60, Acct_Input_Octets=100, Acct_Output_Octets=200))
        send(radclient, running, acct("Start"))
        send(
            radclient,
            running,
            acct("Interim-Update", Acct_Session_Time=30, Acct_Input_Octets=50, Acct_Output_Octets=60),
        )
    session = Session.objects.get()
    assert session.status == SessionStatus.CLOSED  # a late Start or Interim never reopens it
    assert (session.input_octets, session.output_octets, session.session_time) == (100, 200, 60)
    assert UsageDay.objects.get(subscriber=customer).input_octets == 100


def test_accounting_on_closes_the_nas_sessions(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        send(radclient, running, acct("Start", session="a"))
        send(radclient, running, acct("Start", session="b"))
        assert Session.objects.filter(status=SessionStatus.OPEN).count() == 2
        send(radclient, running, "Acct-Status-Type = Accounting-On\nNAS-IP-Address = 127.0.0.1\n")
    assert Session.objects.filter(status=SessionStatus.OPEN).count() == 0
    assert set(Session.objects.values_list("terminate_cause", flat=True)) == {"NAS-Reboot"}


def test_the_same_session_id_on_another_port_is_another_session(customer, make_nas, server, radclient):
    make_nas()
    with server() as running:
        send(radclient, running, acct("Start"))
        send(radclient, running, acct("Start").replace('"ether1"', '"ether2"'))
    assert Session.objects.count() == 2
