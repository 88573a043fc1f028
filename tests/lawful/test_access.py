"""Who reaches the lawful pages and files: the officer alone, their own files only, for a limited time; what the
officer sees of the rest of the console (nothing); the audit trail and who can read it."""

import datetime as dt

import pytest
import time_machine
from django.test import Client

from abonent.core.models import AuditEvent
from abonent.integrations.lawful.models import ExportStatus
from abonent.integrations.lawful.tasks import purge_expired_lawful_exports
from abonent.staff.permissions import ROLE_PERMISSIONS, Perm, Role

from .conftest import NOW, body, request_export, verified_client

pytestmark = pytest.mark.django_db

OTHER_ROLES = [role for role in Role.values if role != Role.LAWFUL]


@pytest.fixture
def ready(officer_client, world):
    _r, request = request_export(officer_client, accounts="173829")
    assert request.status == ExportStatus.DONE
    return request


def test_no_role_but_the_officers_holds_the_permission():
    assert [role for role, perms in ROLE_PERMISSIONS.items() if Perm.LAWFUL_EXPORT in perms] == [Role.LAWFUL]
    assert ROLE_PERMISSIONS[Role.LAWFUL] == frozenset({Perm.LAWFUL_EXPORT})


@pytest.mark.parametrize("role", OTHER_ROLES)
def test_every_other_role_is_refused_every_page_and_the_download(make_staff, ready, role):
    client = Client()
    client.force_login(make_staff(role))
    downloads = AuditEvent.objects.filter(action="lawful.export_downloaded").count()

    assert client.get("/staff/lawful/").status_code == 403
    assert client.get("/staff/lawful/new/").status_code == 403
    assert client.post("/staff/lawful/new/", {"accounts": "173829"}).status_code == 403
    assert client.get(f"/staff/lawful/{ready.pk}/download/").status_code == 403
    assert AuditEvent.objects.filter(action="lawful.export_downloaded").count() == downloads
    assert 'id="nav-lawful"' not in client.get("/staff/dashboard/").content.decode()


def test_anonymous_is_sent_to_the_login(ready):
    response = Client().get(f"/staff/lawful/{ready.pk}/download/")
    assert response.status_code == 302 and response["Location"].startswith("/staff/?next=")


def test_another_officer_cannot_see_or_download_my_export(make_officer, ready):
    other = verified_client(make_officer("sorm-2"))

    assert other.get(f"/staff/lawful/{ready.pk}/download/").status_code == 404
    assert f'data-request="{ready.pk}"' not in other.get("/staff/lawful/").content.decode()
    assert not AuditEvent.objects.filter(action="lawful.export_downloaded").exists()


def test_the_officer_needs_the_second_factor_by_default(make_staff, client):
    officer = make_staff(Role.LAWFUL, username="new-officer", password="s3cret-pass!")
    client.post("/staff/", {"username": "new-officer", "password": "s3cret-pass!"})

    response = client.get("/staff/lawful/")

    assert response.status_code == 302 and response["Location"].startswith("/staff/two-factor/setup/")
    assert officer.two_factor_enabled is False


def test_the_officer_sees_nothing_else_in_the_console(officer_client, ready):
    page = officer_client.get("/staff/lawful/").content.decode()
    assert 'id="nav-lawful"' in page and f'data-request="{ready.pk}"' in page
    assert "global-search" not in page and "/staff/subscribers/" not in page and "nav-administration" not in page

    home = officer_client.get("/staff/dashboard/")
    assert home.status_code == 302 and home["Location"] == "/staff/lawful/"
    for path in (
        "/staff/subscribers/",
        f"/staff/subscribers/{ready.requested_by_id}/",
        "/staff/payments/",
        "/staff/network/nas/",
        "/staff/audit/",
        "/staff/reports/receivables/",
        "/staff/helpdesk/",
    ):
        assert officer_client.get(path).status_code in (403, 404), path
    assert officer_client.get("/staff/admin/").status_code in (302, 403)
    refused = officer_client.get("/staff/subscribers/")
    assert "Lawful requests" in refused.content.decode()  # the 403 page keeps their menu


def test_every_step_is_audited_and_sealed_from_the_console_audit_log(officer, officer_client, ready, admin):
    officer_client.get(f"/staff/lawful/{ready.pk}/download/")

    rows = AuditEvent.objects.filter(object_type="lawful.exportrequest", object_id=str(ready.pk)).order_by("pk")
    assert [(r.action, r.actor_id, r.subscriber_id) for r in rows] == [
        ("lawful.export_requested", officer.pk, None),
        ("lawful.export_generated", officer.pk, None),
        ("lawful.export_downloaded", officer.pk, None),
    ]
    requested, generated, downloaded = rows
    assert requested.after["basis_number"] == "3/12-115" and requested.after["criteria"] == {"accounts": ["173829"]}
    assert generated.after["sha256"] == ready.file_sha256 and generated.after["rows"] == ready.row_counts
    assert generated.after["basis_kind"] == "court_order" and generated.after["basis_date"] == "2026-11-15"
    assert downloaded.after == {"sha256": ready.file_sha256, "bytes": ready.file_size}
    # The administrator's audit log and the Django admin's list leave them out.
    admin_client = Client()
    admin_client.force_login(admin)
    html = admin_client.get("/staff/audit/").content.decode()
    assert 'data-action="staff.user_created"' in html and 'data-action="lawful.' not in html
    assert "No events match." in admin_client.get("/staff/audit/?action=lawful.export_requested").content.decode()
    html = admin_client.get("/staff/admin/core/auditevent/").content.decode()
    assert "3/12-115" not in html and "Lawful request recorded" not in html


def test_the_file_is_deleted_after_its_time_and_no_longer_served(officer, ready, settings):
    path = settings.ABONENT_LAWFUL_DIR / ready.file_name
    assert path.exists() and ready.expires_at == ready.finished_at + dt.timedelta(hours=24)

    with time_machine.travel(NOW + dt.timedelta(hours=23), tick=False):
        assert purge_expired_lawful_exports.call() == 0
        assert path.exists()
    with time_machine.travel(ready.expires_at + dt.timedelta(seconds=1), tick=False):
        officer_client = verified_client(officer)  # a day later: the session of yesterday has ended
        # Past its time, even before the purge runs: not served.
        assert officer_client.get(f"/staff/lawful/{ready.pk}/download/").status_code == 410
        assert purge_expired_lawful_exports.call() == 1
        assert purge_expired_lawful_exports.call() == 0

    ready.refresh_from_db()
    assert not path.exists() and ready.status == ExportStatus.EXPIRED and ready.file_name == ""
    assert AuditEvent.objects.filter(action="lawful.export_expired", object_id=str(ready.pk)).count() == 1
    assert officer_client.get(f"/staff/lawful/{ready.pk}/download/").status_code == 410


def test_a_file_changed_on_disk_is_not_served(officer_client, ready, settings):
    path = settings.ABONENT_LAWFUL_DIR / ready.file_name
    path.write_bytes(path.read_bytes() + b"x")

    assert officer_client.get(f"/staff/lawful/{ready.pk}/download/").status_code == 410
    assert not AuditEvent.objects.filter(action="lawful.export_downloaded").exists()


def test_the_file_is_private_on_disk(ready, settings):
    path = settings.ABONENT_LAWFUL_DIR / ready.file_name
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_the_list_shows_status_rows_and_the_download(officer_client, ready):
    page = officer_client.get("/staff/lawful/").content.decode()
    assert f'href="/staff/lawful/{ready.pk}/download/"' in page and 'data-status="done"' in page
    assert "aaa: 4" in page and "3/12-115" in page
    assert body(officer_client.get(f"/staff/lawful/{ready.pk}/download/"))[:2] == b"PK"
