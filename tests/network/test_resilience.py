"""The database goes away: accounting is spooled to disk and answered, then replayed in order."""

import time

import pytest
from django.db import OperationalError

from abonent.network import accounting
from abonent.network.models import Session, SessionStatus
from abonent.network.radius.spool import spool_files
from abonent.network.radius.spoolfile import read_records

from .conftest import SECRET
from .test_radclient_acct import acct, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("radius")]


def test_accounting_is_spooled_while_the_database_is_down_and_replayed_after(
    customer, make_nas, server, radclient, monkeypatch, tmp_path
):
    make_nas()
    real = accounting.write_batch

    def database_down(records):
        raise OperationalError("connection refused (simulated outage)")

    with server() as running:
        monkeypatch.setattr(accounting, "write_batch", database_down)
        # The asyncio lanes of PostgreSQL reach the database on their own connections: point them nowhere.
        writer = running.server.writer
        real_conninfo = writer.conninfo
        if real_conninfo is not None:
            writer.conninfo = "host=127.0.0.1 port=1 dbname=nowhere connect_timeout=1"
        send(radclient, running, acct("Start"))  # answered although nothing reached the database
        send(radclient, running, acct("Stop", Acct_Session_Time=60, Acct_Input_Octets=10, Acct_Output_Octets=20))
        # Authentication keeps working from the in-memory policy meanwhile.
        result = radclient(
            running.auth_port,
            SECRET,
            "auth",
            'User-Name = "ivanov"\nUser-Password = "s3cret-pw"\nMessage-Authenticator = 0x00\n',
        )
        assert "Received Access-Accept" in result.stdout
        assert Session.objects.count() == 0
        spool = spool_files(tmp_path / "radius")
        assert len(spool) == 1 and len(read_records(spool[0])) == 2
        assert running.counter("accounting_spooled") == 2
        monkeypatch.setattr(accounting, "write_batch", real)
        writer.conninfo = real_conninfo
        deadline = time.monotonic() + 10
        while Session.objects.count() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    session = Session.objects.get()
    # Replayed in order: the Start, then the Stop.
    assert (session.status, session.input_octets, session.output_octets) == (SessionStatus.CLOSED, 10, 20)
    assert spool_files(tmp_path / "radius") == []
