"""``abonent rotate-field-key`` (issue 12): every encrypted value re-encrypted under the new ABONENT_FIELD_KEY,
the old key still read meanwhile; in batches, again without harm, with a dry run, and loud about a value no
key reads. Runs on PostgreSQL and on SQLite."""

import io

import pytest
from django.core.management import CommandError, call_command

from abonent.cli import main as abonent_cli
from abonent.core import secrets
from abonent.network import actions as network
from abonent.network.models import Login, LoginKind, Nas, PolicyChange

pytestmark = pytest.mark.django_db

OLD_KEY = "old-field-key-" + "Vb7rT" * 8
NEW_KEY = "new-field-key-" + "q9XwZ" * 8
STRAY_KEY = "stray-field-key-" + "m3PkL" * 8
NAS_SECRET = "a-long-shared-secret-for-tests"


@pytest.fixture
def under_old_key(settings, make_subscriber, admin):
    """A NAS and three subscribers' logins (PPPoE, hotspot, IPoE without a password) stored under OLD_KEY."""
    settings.ABONENT_FIELD_KEY = OLD_KEY
    settings.ABONENT_FIELD_KEY_OLD = []
    network.do_create_nas(acting_user=admin, name="nas-1", ip_address="10.0.0.1", secret=NAS_SECRET, vendor="mikrotik")
    for n, (kind, username, password) in enumerate(
        [
            (LoginKind.PPPOE, "ivanov", "pw-ivanov"),
            (LoginKind.HOTSPOT, "petrov", "pw-petrov"),
            (LoginKind.IPOE_MAC, "aa:bb:cc:dd:ee:01", ""),
        ]
    ):
        subscriber = make_subscriber(last_name=f"Абонент{n}", phone=f"+7916123450{n}")
        network.do_create_login(subscriber, acting_user=admin, kind=kind, username=username, password=password)
    return settings


def _rotating(settings) -> None:
    """Step 1 of the procedure: the new key in ABONENT_FIELD_KEY, the old one in ABONENT_FIELD_KEY_OLD."""
    settings.ABONENT_FIELD_KEY = NEW_KEY
    settings.ABONENT_FIELD_KEY_OLD = [OLD_KEY]


def _clear_values() -> dict[str, str]:
    values = {f"nas:{nas.name}": nas.secret for nas in Nas.objects.all()}
    values |= {f"login:{login.username}": login.password for login in Login.objects.all()}
    return values


def _stored() -> dict[str, str]:
    values = {f"nas:{name}": token for name, token in Nas.objects.values_list("name", "secret_encrypted")}
    values |= {f"login:{name}": token for name, token in Login.objects.values_list("username", "password_encrypted")}
    return values


def _run(*args) -> str:
    out = io.StringIO()
    call_command("rotate_field_key", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_the_old_key_is_still_read_while_the_rotation_runs(under_old_key):
    before = _clear_values()
    _rotating(under_old_key)
    assert _clear_values() == before
    under_old_key.ABONENT_FIELD_KEY_OLD = []
    with pytest.raises(secrets.SecretError):
        Nas.objects.get().secret  # noqa: B018 - reading it is the test


def test_a_dry_run_counts_and_writes_nothing(under_old_key):
    _rotating(under_old_key)
    stored = _stored()
    output = _run("--dry-run")
    assert "network.Nas.secret_encrypted: 1 to re-encrypt, 0 already under the new key, 0 unreadable" in output
    # the IPoE login has no password: nothing to re-encrypt
    assert "network.Login.password_encrypted: 2 to re-encrypt, 1 already under the new key, 0 unreadable" in output
    assert _stored() == stored


def test_every_value_is_re_encrypted_under_the_new_key_in_batches(under_old_key):
    before = _clear_values()
    _rotating(under_old_key)
    changes_before = PolicyChange.objects.count()
    output = _run("--batch-size", "1")
    assert "network.Nas.secret_encrypted: 1 re-encrypted, 0 already under the new key, 0 unreadable" in output
    assert "network.Login.password_encrypted: 2 re-encrypted, 1 already under the new key, 0 unreadable" in output
    # then the old key is no longer needed to read any of them
    under_old_key.ABONENT_FIELD_KEY_OLD = []
    assert _clear_values() == before
    # and the RADIUS processes are told to reload the two subscribers whose passwords changed
    assert PolicyChange.objects.count() == changes_before + 2


def test_running_it_again_skips_what_is_done(under_old_key):
    _rotating(under_old_key)
    _run()
    stored = _stored()
    output = _run()
    assert "network.Nas.secret_encrypted: 0 re-encrypted, 1 already under the new key, 0 unreadable" in output
    assert "network.Login.password_encrypted: 0 re-encrypted, 3 already under the new key, 0 unreadable" in output
    assert _stored() == stored


def test_a_value_no_key_reads_is_named_and_left_alone_and_the_rest_done(under_old_key):
    # given a password stored under a key nobody listed (a restore from another installation, say)
    under_old_key.ABONENT_FIELD_KEY = STRAY_KEY
    stray = Login.objects.get(username="petrov")
    stray.set_password("pw-stray")
    stray.save(update_fields=["password_encrypted"])
    _rotating(under_old_key)
    out = io.StringIO()
    # when the rotation runs
    with pytest.raises(CommandError, match="1 values could not be decrypted"):
        call_command("rotate_field_key", stdout=out, stderr=out)
    # then the row is named, its value untouched, and every other value rotated
    assert (
        f"network.Login.password_encrypted: 1 values decrypt under neither ABONENT_FIELD_KEY nor "
        f"ABONENT_FIELD_KEY_OLD; left as they are (ids {stray.pk})" in out.getvalue()
    )
    assert Login.objects.get(pk=stray.pk).password_encrypted == stray.password_encrypted
    under_old_key.ABONENT_FIELD_KEY_OLD = []
    assert Login.objects.get(username="ivanov").password == "pw-ivanov"
    assert Nas.objects.get().secret == NAS_SECRET


def test_without_an_old_key_it_refuses_to_start(under_old_key):
    under_old_key.ABONENT_FIELD_KEY = NEW_KEY
    with pytest.raises(CommandError, match="ABONENT_FIELD_KEY_OLD is not set"):
        _run()


def test_the_command_is_spelt_with_hyphens(under_old_key, capsys):
    _rotating(under_old_key)
    abonent_cli(["abonent", "rotate-field-key", "--dry-run"])
    assert "Dry run: nothing written." in capsys.readouterr().out
