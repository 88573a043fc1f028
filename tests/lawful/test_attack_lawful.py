"""Attack review of the lawful export: a database failing at the last step, a file swapped or purged between its
check and its serving, an identity changed after the period, instants typed in local time."""

import datetime as dt
import hashlib
import io
import json
import os
import zipfile

import pytest
from django.db import OperationalError

from abonent.core import audit as core_audit
from abonent.core.models import AuditEvent
from abonent.integrations.lawful import actions
from abonent.integrations.lawful.models import ExportRequest, ExportStatus
from abonent.integrations.lawful.tasks import purge_expired_lawful_exports
from abonent.subscribers.actions import do_update_subscriber

from .conftest import body, read_zip, request_export

pytestmark = pytest.mark.django_db


def _files_on_disk(root):
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_database_failing_at_the_last_step_leaves_no_orphan_zip(officer_client, world, settings, monkeypatch):
    """The ZIP was renamed into place, then the row that names it could not be written (the database hung or
    restarted): a file of passports that no request names stayed on disk for good, the purge never looking for it."""
    real_record = core_audit.record

    def failing(**kwargs):
        if kwargs.get("action") == "lawful.export_generated":
            raise OperationalError("canceling statement due to statement timeout")
        return real_record(**kwargs)

    monkeypatch.setattr(actions.audit, "record", failing)
    with pytest.raises(OperationalError):
        request_export(officer_client, accounts="173829")

    assert _files_on_disk(settings.ABONENT_LAWFUL_DIR) == []
    request = ExportRequest.objects.get()
    assert request.status != ExportStatus.DONE and request.file_name == ""


def test_the_purge_removes_the_file_a_killed_worker_left_behind(officer_client, world, settings):
    """A worker killed between the rename and its commit leaves a whole ``request-<pk>-….zip`` (not a ``.tmp``):
    the purge that fails the stale request must remove it too."""
    from abonent.integrations.lawful.tasks import generate_lawful_export as task

    _r, request = request_export(officer_client, accounts="173829")  # a real file to copy
    path = settings.ABONENT_LAWFUL_DIR / request.file_name
    data = path.read_bytes()
    # A second request, left "running" with its finished file on disk and no row naming it.
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=False):
        officer_client.post(
            "/staff/lawful/new/",
            {"basis_kind": "court_order", "basis_number": "9", "basis_date": "2026-11-15",
             "period_start": "2026-11-01T00:00", "period_end": "2026-11-10T00:00", "accounts": "173829",
             "format": "vas-experts-sorm3"},
        )  # fmt: skip
    stale = ExportRequest.objects.exclude(pk=request.pk).get()
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3 * settings.ABONENT_LAWFUL_DEADLINE_SECONDS)
    ExportRequest.objects.filter(pk=stale.pk).update(status=ExportStatus.RUNNING, started_at=started)
    orphan = path.parent / f"request-{stale.pk}-20261120100000.zip"
    orphan.write_bytes(data)
    assert task  # the task is not run: the worker "died"

    purge_expired_lawful_exports.call()

    stale.refresh_from_db()
    assert stale.status == ExportStatus.FAILED
    assert not orphan.exists() and path.exists()


def _swap(path):
    """Another process replaces the file whole (what a rewrite or an intruder does): a new inode at the path."""
    tmp = path.with_suffix(".swap")
    tmp.write_bytes(b"PK not the export")
    os.replace(tmp, path)


def _purge(path):
    path.unlink()


@pytest.mark.parametrize("meddle", [_swap, _purge], ids=["replaced", "purged"])
def test_the_file_served_is_the_file_checked(officer_client, world, monkeypatch, meddle, settings):
    """The SHA-256 was checked on one open of the path and another open was served: a file replaced in between
    went out unverified, and one purged in between gave a 410 after the audit had recorded a download."""
    _r, request = request_export(officer_client, accounts="173829")
    path = settings.ABONENT_LAWFUL_DIR / request.file_name
    real_record = core_audit.record

    def meddling(**kwargs):
        if kwargs.get("action") == "lawful.export_downloaded":
            meddle(path)
        return real_record(**kwargs)

    monkeypatch.setattr(actions.audit, "record", meddling)
    response = officer_client.get(f"/staff/lawful/{request.pk}/download/")

    assert response.status_code == 200
    assert hashlib.sha256(body(response)).hexdigest() == request.file_sha256
    assert AuditEvent.objects.filter(action="lawful.export_downloaded").count() == 1


def test_an_identity_changed_after_the_period_is_in_the_export(officer_client, world, admin):
    """Ivanov's account was re-registered to another person after the period (name and passport changed): the
    export named only the new holder for the sessions of the period, and the name the account had then appeared
    nowhere. The changes since the period began are exported beside the current identity."""
    ivanov = world["ivanov"]
    do_update_subscriber(
        ivanov,
        changes={"last_name": "Сидоров", "first_name": "Семён", "passport_series": "4511", "passport_number": "654321"},
        acting_user=admin,
        reason="переоформление",
    )

    _r, request = request_export(officer_client, ips="10.1.2.3", ip_at="2026-11-05T14:00")

    files = read_zip(body(officer_client.get(f"/staff/lawful/{request.pk}/download/")))
    assert files["fiz"][1][1:3] == ["Сидоров", "Семён"]
    changes = files["identity_changes"]
    assert changes[0] == ["customer_id", "change_time", "field", "old_value", "new_value"]
    assert {(row[0], row[2], row[3], row[4]) for row in changes[1:]} == {
        (ivanov.account_number, "last_name", "Иванов", "Сидоров"),
        (ivanov.account_number, "first_name", "Иван", "Семён"),
        (ivanov.account_number, "passport_series", "4510", "4511"),
        (ivanov.account_number, "passport_number", "123456", "654321"),
    }


def test_an_instant_typed_in_local_time_is_kept_in_utc(officer_client, world, settings):
    """The officer types 17:00 in Moscow; the list says "at (UTC)" and the manifest says its times are UTC, but the
    criteria kept "17:00+03:00": a reader trusting the label is three hours off."""
    settings.TIME_ZONE = "Europe/Moscow"
    _r, request = request_export(
        officer_client,
        ips="10.1.2.3",
        ip_at="2026-11-05T17:00",
        period_start="2026-11-01T03:00",
        period_end="2026-11-10T03:00",
    )

    assert request.criteria["ip_at"] == "2026-11-05T14:00:00+00:00"
    data = body(officer_client.get(f"/staff/lawful/{request.pk}/download/"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["criteria"]["ip_at"] == "2026-11-05T14:00:00+00:00"
    assert [row[0] for row in read_zip(data)["abonents"][1:]] == [world["ivanov"].account_number]


@pytest.mark.parametrize("zone", ["Europe/Moscow", "America/New_York"])
@pytest.mark.parametrize("moment", ["0001-01-01T00:00", "9999-12-31T23:59"])
def test_absurd_instants_in_any_zone_are_field_errors(officer_client, world, settings, zone, moment):
    settings.TIME_ZONE = zone
    response, request = request_export(officer_client, ips="10.1.2.3", period_start=moment, ip_at=moment)

    assert response.status_code == 422 and request is None
    assert response.context["form"].errors


@pytest.mark.parametrize(("env", "roles", "warned"), [
    ("production", ["admin", "cashier"], True),  # a list set before the role existed
    ("production", ["admin", "cashier", "lawful"], False),
    ("development", [], False),
])  # fmt: skip
def test_a_production_2fa_list_without_the_officer_is_warned_about(settings, env, roles, warned):
    """ABONENT_REQUIRE_2FA_ROLES set before this role existed replaces the default that holds it: the officers went
    without a second factor and nothing said so."""
    from abonent.staff.checks import check_lawful_officers_two_factor

    settings.ENV, settings.ABONENT_REQUIRE_2FA_ROLES = env, roles
    assert [m.id for m in check_lawful_officers_two_factor(None)] == (["staff.W002"] if warned else [])


def test_only_a_get_downloads_and_is_audited(officer_client, world):
    """A HEAD (a link preview, a download manager's probe) ran the view: the audit said "downloaded" and no byte
    went out."""
    _r, request = request_export(officer_client, accounts="173829")

    assert officer_client.head(f"/staff/lawful/{request.pk}/download/").status_code == 405
    assert officer_client.post(f"/staff/lawful/{request.pk}/download/").status_code == 405
    assert not AuditEvent.objects.filter(action="lawful.export_downloaded").exists()
    assert officer_client.get(f"/staff/lawful/{request.pk}/download/").status_code == 200
    assert AuditEvent.objects.filter(action="lawful.export_downloaded").count() == 1
