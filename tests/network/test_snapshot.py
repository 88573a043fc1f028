"""The outage snapshot on disk (issue 12, "Attack surface"): written 0600 from creation, a data format that
loading cannot turn into code, secrets as encrypted as in the database, refused whole when torn or forged."""

import builtins
import logging
import os
import pickle
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import OperationalError

from abonent.core import secrets
from abonent.network.models import Login, Nas
from abonent.network.policy import PolicyStore
from abonent.network.radius import runner
from abonent.network.radius import snapshot as snapshots
from abonent.network.radius.nas import load_nas_table

from .conftest import SECRET

PASSWORD = "s3cret-pw"  # the customer fixture's
NODE = "host:1812:0"
PAP = f'User-Name = "ivanov"\nUser-Password = "{PASSWORD}"\nMessage-Authenticator = 0x00\n'


def _database_down_at_start(monkeypatch):
    def refused(self):
        raise OperationalError("connection refused (simulated outage)")

    monkeypatch.setattr(PolicyStore, "load_all", refused)


def _files(spool: Path) -> list[Path]:
    return sorted(path for path in spool.iterdir() if path.is_file())


class _Malicious:
    """Unpickling this runs ``os.mkdir(marker)``: what anyone able to write the spool directory could plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.django_db
def test_the_snapshot_files_are_0600_from_creation_even_with_umask_022(customer, make_nas, tmp_path, monkeypatch):
    # given a permissive umask, and a watch on every file created in the spool directory
    make_nas()
    spool = tmp_path / "radius"
    spool.mkdir()
    modes: dict[str, int] = {}
    real_open, real_os_open = builtins.open, os.open

    def note(path) -> None:
        path = Path(os.fsdecode(path))
        if path.parent == spool and path.exists():
            modes.setdefault(path.name, stat.S_IMODE(path.stat().st_mode))

    def watched_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if isinstance(file, str | bytes | os.PathLike) and any(flag in mode for flag in "wax"):
            note(file)
        return handle

    def watched_os_open(path, flags, *args, **kwargs):
        fd = real_os_open(path, flags, *args, **kwargs)
        if flags & os.O_CREAT:
            note(path)
        return fd

    monkeypatch.setattr(builtins, "open", watched_open)
    monkeypatch.setattr(os, "open", watched_os_open)
    old_umask = os.umask(0o022)
    try:
        # when the server starts and writes its snapshot
        runner.build_server(spool, NODE)
    finally:
        os.umask(old_umask)
        monkeypatch.undo()
    # then every file was private the moment it existed, and still is
    assert modes and all(mode == 0o600 for mode in modes.values()), modes
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in _files(spool)} == {
        "policy-host-1812-0.json": 0o600
    }


@pytest.mark.django_db
def test_no_secret_or_password_in_clear_on_disk(customer, make_nas, tmp_path):
    make_nas()
    spool = tmp_path / "radius"
    spool.mkdir()
    runner.build_server(spool, NODE)
    data = b"".join(path.read_bytes() for path in _files(spool))
    assert data
    assert SECRET.encode() not in data
    assert PASSWORD.encode() not in data
    # what is there is the encrypted values, exactly as the database holds them
    assert Nas.objects.get().secret_encrypted.encode() in data
    assert Login.objects.get(username="ivanov").password_encrypted.encode() in data


@pytest.mark.django_db
def test_a_planted_pickle_is_never_loaded(customer, make_nas, tmp_path, monkeypatch, caplog):
    # given pickles where the snapshot and NAS table of earlier versions lay, each running code when loaded
    make_nas()
    spool = tmp_path / "radius"
    spool.mkdir()
    for name in ("policy-host-1812-0.pickle", "nas.pickle"):
        (spool / name).write_bytes(pickle.dumps(_Malicious(tmp_path / f"ran-{name}")))
    # when the server starts with the database away and has to fall back on what is on disk
    _database_down_at_start(monkeypatch)
    with caplog.at_level(logging.WARNING, "abonent.radius"), pytest.raises(OperationalError):
        runner.build_server(spool, NODE)
    # then nothing ran: no snapshot it can read, so it does not start (as without any snapshot)
    assert not list(tmp_path.glob("ran-*"))
    # and the pickles are gone, with a line each
    assert not list(spool.glob("*.pickle"))
    assert sum("earlier version" in record.message for record in caplog.records) == 2


@pytest.mark.django_db
def test_a_snapshot_round_trips(customer, make_nas, make_subscriber, admin, tmp_path):
    from abonent.network import actions as network
    from abonent.network.models import LoginKind

    nas = make_nas(interim_interval=120, debtor_pool="debtors-pool")
    other = make_subscriber(last_name="Петров", phone="+79161234568")
    network.do_create_login(other, acting_user=admin, kind=LoginKind.IPOE_MAC, username="aa:bb:cc:dd:ee:ff")
    store = PolicyStore()
    store.load_all()
    table = load_nas_table()
    path = tmp_path / "policy.json"
    snapshots.save(path, store, table)

    restored = PolicyStore()
    restored_table = snapshots.restore(path, restored)

    assert restored.by_login == store.by_login
    assert restored.by_login_id == store.by_login_id
    assert restored.by_subscriber == store.by_subscriber
    assert restored.plans == store.plans
    assert (restored.debtors, restored.over_quota, restored.last_change_id) == (
        store.debtors,
        store.over_quota,
        store.last_change_id,
    )
    assert restored.as_of == store.as_of and restored.restored
    assert restored_table == table
    assert restored_table[nas.ip_address].secret == SECRET.encode()
    entry = restored.find("ivanov")
    assert restored.password_of(entry) == PASSWORD


@pytest.mark.django_db
def test_a_torn_or_altered_snapshot_is_refused_whole(customer, make_nas, tmp_path, caplog):
    make_nas()
    store = PolicyStore()
    store.load_all()
    path = tmp_path / "policy.json"
    snapshots.save(path, store, load_nas_table())
    whole = path.read_bytes()
    header_end = whole.index(b"\n")
    # torn at every offset of the header and at a spread of offsets in the body (a file cut short)
    cuts = [*range(header_end + 2), *range(header_end + 2, len(whole), max(1, len(whole) // 97))]
    altered = bytearray(whole)
    altered[-10] ^= 0x01  # one bit flipped in the body: still JSON, wrong data
    # the same length, another time: a file edited to look fresher (or older)
    forged = whole.replace(b'"as_of":1', b'"as_of":0')
    assert forged != whole and len(forged) == len(whole)
    for data in [whole[:cut] for cut in cuts] + [bytes(altered), forged, b"", b"\x80\x04garbage"]:
        path.write_bytes(data)
        target = PolicyStore()
        with caplog.at_level(logging.ERROR, "abonent.radius"):
            assert snapshots.restore(path, target) is None, data[:80]
        assert not target.by_login and not target.restored
    assert "refused" in caplog.text


@pytest.mark.django_db
def test_a_snapshot_written_under_another_field_key_is_refused(customer, make_nas, tmp_path, settings):
    make_nas()
    store = PolicyStore()
    store.load_all()
    path = tmp_path / "policy.json"
    snapshots.save(path, store, load_nas_table())
    settings.ABONENT_FIELD_KEY = "another-key-" + "x7Qp2" * 10
    assert snapshots.restore(path, PolicyStore()) is None
    settings.ABONENT_FIELD_KEY_OLD = [settings.SECRET_KEY]  # the key it was written under, being rotated away
    assert snapshots.restore(path, PolicyStore()) is not None


@pytest.mark.django_db
def test_a_nas_secret_no_key_decrypts_leaves_that_nas_out(customer, make_nas, tmp_path, caplog):
    nas = make_nas()
    make_nas(name="second", ip_address="10.0.0.2")
    store = PolicyStore()
    store.load_all()
    table = load_nas_table()
    table[nas.ip_address].secret_encrypted = secrets.PREFIX + "not-a-token"
    path = tmp_path / "policy.json"
    snapshots.save(path, store, table)
    restored = snapshots.restore(path, PolicyStore())
    assert set(restored) == {"10.0.0.2"}
    assert "cannot be decrypted" in caplog.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_a_server_started_while_the_database_is_down_answers_from_the_snapshot(
    customer, make_nas, server, radclient, monkeypatch
):
    make_nas()
    with server() as running:  # writes the snapshot at start and at exit
        assert "Received Access-Accept" in radclient(running.auth_port, SECRET, "auth", PAP).stdout
    _database_down_at_start(monkeypatch)
    with server() as running:
        assert running.server.store.restored
        result = radclient(running.auth_port, SECRET, "auth", PAP)
        wrong = radclient(running.auth_port, SECRET, "auth", PAP.replace(PASSWORD, "wrong"))
    assert "Received Access-Accept" in result.stdout, result.stdout + result.stderr
    assert "Received Access-Reject" in wrong.stdout


# --- what is at the snapshot's path when the server starts (issue 12: the spool directory may be writable by
# someone else): only a regular file of ours, of a sane size, is read at all ----------------------------------


@pytest.fixture
def saved(customer, make_nas, tmp_path) -> Path:
    """A good snapshot, written as the server writes it."""
    make_nas()
    store = PolicyStore()
    store.load_all()
    path = tmp_path / "policy.json"
    snapshots.save(path, store, load_nas_table())
    return path


@pytest.mark.django_db
def test_a_symlink_at_the_snapshot_path_is_not_followed(saved, tmp_path, caplog):
    # given a link where the snapshot is (to a good snapshot here; to /dev/zero it would be read without end)
    link = snapshots.snapshot_path(tmp_path, NODE)
    link.symlink_to(saved)
    # when the server restores from it, then it is refused, with a line, and the store left as it was
    store = PolicyStore()
    with caplog.at_level(logging.ERROR, "abonent.radius"):
        assert snapshots.restore(link, store) is None
    assert not store.by_login and not store.restored
    assert "a symbolic link" in caplog.text
    assert snapshots.restore(saved, PolicyStore()) is not None  # the file itself is fine


@pytest.mark.django_db
@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_snapshot_file_someone_else_owns_is_refused(saved, caplog):
    os.chown(saved, 65534, 65534)
    with caplog.at_level(logging.ERROR, "abonent.radius"):
        assert snapshots.restore(saved, PolicyStore()) is None
    assert "owned by uid 65534" in caplog.text


@pytest.mark.django_db
def test_a_snapshot_file_over_the_size_cap_is_refused_unread(saved, monkeypatch, caplog):
    monkeypatch.setattr(snapshots, "MAX_BYTES", saved.stat().st_size - 1)
    with caplog.at_level(logging.ERROR, "abonent.radius"):
        assert snapshots.restore(saved, PolicyStore()) is None
    assert "a snapshot may have" in caplog.text


@pytest.mark.django_db
def test_a_spool_directory_others_can_open_is_made_private_with_a_warning(customer, make_nas, tmp_path, caplog):
    # given a spool directory made by hand, readable and listable by everyone
    make_nas()
    spool = tmp_path / "radius"
    spool.mkdir()
    spool.chmod(0o755)

    # when the server prepares it
    # (on a thread of its own, as the process's main thread: prepare() puts that thread's connection under the
    # radius deadlines, which would reconnect inside the test's transaction)
    def prepare():
        from django.db import connection

        try:
            runner.prepare(runner.Options(bind="127.0.0.1", auth_port=0, acct_port=0, spool_dir=spool), 0)
        finally:
            connection.close()

    with caplog.at_level(logging.WARNING, "abonent.radius"), ThreadPoolExecutor(1) as pool:
        pool.submit(prepare).result(60)
    # then it is ours alone from now on, and the operator is told
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert "is mode 0755" in caplog.text and "made 0700" in caplog.text


@pytest.mark.django_db
@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_spool_directory_of_another_user_is_left_alone_with_a_warning(tmp_path, caplog):
    from abonent.core.files import make_private_directory

    spool = tmp_path / "radius"
    spool.mkdir()
    spool.chmod(0o775)
    os.chown(spool, 65534, 65534)
    problem = make_private_directory(spool)
    assert stat.S_IMODE(spool.stat().st_mode) == 0o775
    assert "belongs to uid 65534" in problem
