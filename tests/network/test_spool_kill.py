"""SIGKILL of ``abonent radius`` mid-batch, with radclient resending what went unanswered: every record is
counted once and the totals are exact, through a database outage, a torn spool and a kill while writing."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from abonent.network.models import RadiusNode, Session, SessionStatus, UsageDay
from abonent.network.radius.spool import QUARANTINE, spool_files
from abonent.network.radius.spoolfile import encode, read_records
from abonent.network.testing import RADCLIENT

from .conftest import SECRET
from .test_spool import quarantined, rec

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("radius"),
    pytest.mark.skipif(RADCLIENT is None, reason="radclient is not installed (apt-get install freeradius-utils)"),
    # A server in a process of its own needs a database it can reach, and a transactional test on SQLite cannot
    # flush past the ledger's triggers (tests/network/conftest.py).
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"), reason="the RADIUS process tests run on PostgreSQL"
    ),
]

ROOT = Path(__file__).resolve().parents[2]


class Relay:
    """A TCP relay to PostgreSQL that can cut every connection and refuse new ones: the database made
    unreachable for a server running in another process."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _addr = self.listener.accept()
            except OSError:
                return
            try:
                if not self.up:
                    raise ConnectionRefusedError
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.sockets += [client, server]
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        _shut(src, dst)

    def cut(self) -> None:
        self.up = False
        with self.lock:
            _shut(*self.sockets)
            self.sockets.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


def _shut(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Radius:
    """``abonent radius`` in a process of its own, on the relay."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.spool = tmp_path / "radius"
        self.log = tmp_path / "radius.log"
        self.auth_port, self.acct_port = _free_udp_port(), _free_udp_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ABONENT_LOG_LEVEL": "INFO",
            "ABONENT_LOG_FORMAT": "text",
            "PYTHONPATH": str(ROOT),
            # A start with the database away waits this long for a connection from the pool before it answers
            # from its snapshot (10 s by default).
            "ABONENT_DB_POOL_TIMEOUT": "2",
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        start = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "abonent.cli", "radius", "--bind", "127.0.0.1", "--auth-port",
                 str(self.auth_port), "--acct-port", str(self.acct_port), "--spool-dir", str(self.spool)],
                env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while b"listening on" not in self.log.read_bytes()[start:]:
            assert self.proc.poll() is None and time.monotonic() < deadline, self.output()
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def accounting(status: str, sessions, seconds: int, octets) -> str:
    blocks = []
    for k in sessions:
        inp, out = octets(k)
        blocks.append(
            "\n".join(
                [
                    'User-Name = "ivanov"',
                    f"Acct-Status-Type = {status}",
                    f'Acct-Session-Id = "kill-{k}"',
                    "NAS-IP-Address = 127.0.0.1",
                    f'NAS-Port-Id = "ether{k}"',
                    "Framed-IP-Address = 100.64.0.7",
                    f"Acct-Session-Time = {seconds}",
                    f"Acct-Input-Octets = {inp & 0xFFFFFFFF}",
                    f"Acct-Input-Gigawords = {inp >> 32}",
                    f"Acct-Output-Octets = {out & 0xFFFFFFFF}",
                    f"Acct-Output-Gigawords = {out >> 32}",
                ]
            )
        )
    return "\n\n".join(blocks) + "\n"


def radclient(radius: Radius, requests: str, tmp_path: Path, rate: int) -> subprocess.Popen:
    """radclient sending ``requests`` at ``rate`` a second, four in flight, resending each unanswered one every
    second for up to 40 s (the NAS's retransmissions)."""
    path = tmp_path / f"requests-{time.monotonic_ns()}.txt"
    path.write_text(requests)
    return subprocess.Popen(
        [RADCLIENT, "-q", "-f", str(path), "-p", "4", "-n", str(rate), "-r", "40", "-t", "1",
         f"127.0.0.1:{radius.acct_port}", "acct", SECRET],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def finished(client: subprocess.Popen) -> None:
    output, _ = client.communicate(timeout=60)
    assert client.returncode == 0, output  # every request answered, after resends


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


SESSIONS = range(1, 201)
LATER = range(201, 401)


def interim(k: int) -> tuple[int, int]:
    return k * 1_000_003, k * 2_000_003


def final(k: int) -> tuple[int, int]:
    return k * 50_000_017 + (k % 3 << 32), k * 7_000_001


def test_sigkill_mid_batch_with_radclient_resending_counts_every_record_once(customer, make_nas, tmp_path):
    make_nas()
    database = connection.settings_dict
    relay = Relay((database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432)))
    user = quote(database["USER"] or "") + (f":{quote(database['PASSWORD'])}" if database["PASSWORD"] else "")
    radius = Radius(tmp_path, f"postgres://{user}@127.0.0.1:{relay.port}/{quote(database['NAME'])}")
    try:
        radius.start()
        finished(radclient(radius, accounting("Start", SESSIONS, 0, lambda k: (0, 0)), tmp_path, 2000))

        # The database goes away: interims are spooled to disk and answered. The server is killed mid-batch.
        relay.cut()
        client = radclient(radius, accounting("Interim-Update", SESSIONS, 300, interim), tmp_path, 100)
        wait_for(lambda: sum(len(read_records(p)) for p in spool_files(radius.spool)) >= 40, 15, radius.output())
        radius.kill()
        assert client.poll() is None  # radclient still has requests unanswered: it resends them to the next
        [left] = spool_files(radius.spool)
        assert len(read_records(left)) < len(SESSIONS)
        # A kill in the middle of an append leaves half a record at the end of the file.
        torn = encode([rec("torn")])[:57]
        with open(left, "ab") as fh:
            fh.write(torn)
        radius.start()  # from its snapshot: the database is still away
        finished(client)
        finished(radclient(radius, accounting("Stop", SESSIONS, 600, final), tmp_path, 2000))
        assert Session.objects.filter(status=SessionStatus.CLOSED).count() == 0

        relay.restore()
        wait_for(lambda: not spool_files(radius.spool), 20, radius.output())
        assert quarantined(radius.spool) == [torn]

        def corrupt_published():
            node = RadiusNode.objects.filter(node__endswith=f":{radius.auth_port}:0").first()
            return node is not None and node.counters.get("all", {}).get("accounting_spool_corrupt") == 1

        wait_for(corrupt_published, 10, "accounting_spool_corrupt not published")

        # Killed while writing to the database, with later sessions coming in.
        client = radclient(radius, accounting("Start", LATER, 0, lambda k: (0, 0)), tmp_path, 100)
        wait_for(lambda: Session.objects.filter(acct_session_id__startswith="kill-2").count() >= 20, 15, "writes")
        radius.kill()
        assert client.poll() is None
        radius.start()
        finished(client)
        finished(radclient(radius, accounting("Stop", LATER, 600, final), tmp_path, 2000))
        radius.stop()
    finally:
        radius.stop()
        relay.close()
    assert (tmp_path / "radius" / QUARANTINE).exists()
    sessions = {s.acct_session_id: s for s in Session.objects.all()}
    assert len(sessions) == len(SESSIONS) + len(LATER)
    for k in [*SESSIONS, *LATER]:
        session = sessions[f"kill-{k}"]
        assert (session.status, session.session_time) == (SessionStatus.CLOSED, 600), k
        assert (session.input_octets, session.output_octets) == final(k), k
    usage = UsageDay.objects.filter(subscriber=customer)
    assert sum(u.input_octets for u in usage) == sum(final(k)[0] for k in [*SESSIONS, *LATER])
    assert sum(u.output_octets for u in usage) == sum(final(k)[1] for k in [*SESSIONS, *LATER])
