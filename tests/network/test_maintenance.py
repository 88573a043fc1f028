"""The RADIUS maintenance thread (issue 12): each of its steps runs whatever another one does. A full disk, a row
the attempt log refuses or a spool that cannot be replayed must not keep the node from publishing its counters,
nor the snapshot from being saved; and a step failing every tick is retried and logged, not hammered and shouted
every two seconds."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import ProgrammingError

from abonent.core import clock
from abonent.network.models import AuthAttempt, AuthOutcome, RadiusNode, RejectReason
from abonent.network.policy import PolicyStore
from abonent.network.radius import runner
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry

NODE = "host:1812:0"

pytestmark = [
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
        reason="the thread needs committed data: SQLite's test database cannot flush past the ledger's triggers",
    ),
    # The thread has a connection of its own: it sees only what is committed.
    pytest.mark.django_db(transaction=True),
]


class Spool:
    """The writer's spool, as the maintenance thread sees it: a backlog to replay on every tick."""

    def __init__(self) -> None:
        self.replays = 0

    def has_backlog(self) -> bool:
        return True

    def refresh(self) -> bool:
        return True


@pytest.fixture
def maintained(make_nas, tmp_path):
    """A Maintenance thread over a server with one NAS, ticking every 50 ms; ``run(seconds)`` runs it."""
    nas = make_nas()
    store = PolicyStore()
    store.load_all()
    server = RadiusServer(store=store, nas_table={"127.0.0.1": NasEntry.from_model(nas)})
    spool = Spool()

    def replay() -> int:
        spool.replays += 1
        return 0

    writer = SimpleNamespace(depth=0, lanes=[], spool=spool, replay=replay)
    maintenance = runner.Maintenance(server, writer, tmp_path / "policy.json", NODE, every=0.05)

    def run(seconds: float) -> None:
        maintenance.start()
        try:
            time.sleep(seconds)
        finally:
            maintenance.stop_event.set()
            maintenance.join(timeout=5)
        assert not maintenance.is_alive()

    return SimpleNamespace(maintenance=maintenance, server=server, spool=spool, writer=writer, run=run)


def _attempt(username: str) -> dict:
    return {
        "created_at": clock.now(),
        "username": username,
        "outcome": AuthOutcome.REJECT,
        "reason": RejectReason.BAD_PASSWORD,
    }


def _attempt_row(username: str) -> AuthAttempt:
    return AuthAttempt(**_attempt(username))


def test_an_attempt_log_that_cannot_be_written_does_not_stop_the_rest(maintained, monkeypatch):
    # given an attempt log the database refuses every time for a reason that is no outage (a migration not run)
    def refused(*args, **kwargs):
        raise ProgrammingError('relation "network_authattempt" does not exist')

    monkeypatch.setattr(AuthAttempt.objects, "bulk_create", refused)
    maintained.server.attempts.append(_attempt_row("ivanov"))
    # when the thread runs for a while
    maintained.run(1.0)
    # then the spool is still replayed, the snapshot saved and the counters published. On main (f14e0c7) the
    # exception ended each tick at the attempt log: none of them happened.
    assert maintained.spool.replays >= 5
    assert maintained.maintenance.snapshot.exists()
    assert RadiusNode.objects.filter(node=NODE).exists()


def test_an_attempt_from_a_nas_deleted_since_is_dropped_not_retried_forever(maintained, make_nas, caplog):
    # given two rejects waiting to be written, one of them through a NAS deleted in the console since
    gone = make_nas(name="gone", ip_address="10.0.0.9")
    maintained.server.attempts.extend([AuthAttempt(**_attempt("ivanov"), nas_id=gone.pk), _attempt_row("petrov")])
    gone.delete()
    # when the attempts are written
    with caplog.at_level(logging.ERROR, "abonent.radius"):
        maintained.maintenance._flush_attempts()
    # then the other one is in the log, and the refused one dropped with a line. On main (f14e0c7) the
    # foreign-key violation re-queued both for ever, and the thread, taking it for an outage, skipped the spool,
    # the snapshot and publishing at every tick.
    assert list(AuthAttempt.objects.values_list("username", flat=True)) == ["petrov"]
    assert maintained.server.attempts == []
    assert "refused by the database: 'ivanov'" in caplog.text


def test_a_spool_that_cannot_be_replayed_does_not_stop_the_snapshot_nor_publishing(maintained):
    def broken() -> int:
        raise OSError(5, "Input/output error")

    maintained.writer.replay = broken
    maintained.run(1.0)
    assert maintained.maintenance.snapshot.exists()
    assert RadiusNode.objects.filter(node=NODE).exists()


def test_a_failing_snapshot_save_is_retried_later_and_logged_once(maintained, monkeypatch, caplog):
    # given a full disk
    saves: list[float] = []

    def disk_full(*args, **kwargs):
        saves.append(time.monotonic())
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner.snapshots, "save", disk_full)
    # when the thread ticks some twenty times
    with caplog.at_level(logging.ERROR, "abonent.radius"):
        maintained.run(1.0)
    # then the save is tried once and next after its back-off (5 s), not at every tick; one line says why. On
    # main it was tried, and failed with a traceback, at every tick.
    assert len(saves) == 1, len(saves)
    failed = [r for r in caplog.records if "snapshot save failed" in r.getMessage()]
    assert len(failed) == 1
    assert "No space left on device" in failed[0].getMessage()
    # and the rest of every tick went on
    assert maintained.spool.replays >= 5
    assert RadiusNode.objects.filter(node=NODE).exists()


def test_the_snapshot_back_off_doubles_up_to_the_minute_and_resets_once_saved(maintained, monkeypatch):
    maintenance = maintained.maintenance
    outcome: list[Exception | None] = [OSError(28, "No space left on device")] * 6 + [None]

    def save(*args, **kwargs):
        error = outcome.pop(0)
        if error is not None:
            raise error

    monkeypatch.setattr(runner.snapshots, "save", save)
    waits = []
    for _ in range(7):
        maintenance._snapshot_due = 0.0  # due now, whatever the back-off said
        before = time.monotonic()
        maintenance._step("snapshot save", maintenance._save_snapshot)
        waits.append(round(maintenance._snapshot_due - before))
    assert waits == [5, 10, 20, 40, 60, 60, 60]
    assert maintenance._snapshot_failures == 0
