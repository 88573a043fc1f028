"""``abonent lawful export``: the vendor's scheduled feed, audited as the officer named."""

import json

import pytest
from django.core.management import CommandError, call_command

from abonent.core.models import AuditEvent
from abonent.integrations.lawful.models import ExportRequest

from .conftest import read_zip

pytestmark = pytest.mark.django_db

ARGS = ["--basis-kind", "agency_request", "--basis-number", "77-ФСБ", "--basis-date", "2026-11-16"]
PERIOD = ["--from", "2026-11-01", "--to", "2026-11-10"]


def test_the_command_exports_and_copies_the_file_out_audited(officer, world, tmp_path, capsys):
    target = tmp_path / "feed.zip"

    call_command("lawful", "export", "--as", officer.username, *ARGS, *PERIOD, "--all", "--output", str(target))

    summary = json.loads(capsys.readouterr().out)
    request = ExportRequest.objects.get()
    assert summary["request"] == request.pk and summary["status"] == "done" and summary["output"] == str(target)
    files = read_zip(target.read_bytes())
    assert sorted(row[0] for row in files["abonents"][1:]) == sorted(
        [world["ivanov"].account_number, world["petrov"].account_number]
    )
    assert len(files["aaa"]) - 1 == 6  # a: start, stop; b: start, update; c: start, stop
    rows = AuditEvent.objects.filter(object_type="lawful.exportrequest", object_id=str(request.pk), actor=officer)
    actions = list(rows.order_by("pk").values_list("action", flat=True))
    assert actions == ["lawful.export_requested", "lawful.export_generated", "lawful.export_downloaded"]


def test_the_command_refuses_a_user_without_the_role_and_writes_nothing(admin, world):
    with pytest.raises(CommandError, match="permission"):
        call_command("lawful", "export", "--as", admin.username, *ARGS, *PERIOD, "--all")
    assert not ExportRequest.objects.exists()


def test_the_command_names_a_missing_basis(officer, world):
    with pytest.raises(CommandError, match="basis_number"):
        call_command(
            "lawful", "export", "--as", officer.username, "--basis-kind", "court_order", "--basis-number", " ",
            "--basis-date", "2026-11-16", *PERIOD, "--account", "173829",
        )  # fmt: skip
    assert not ExportRequest.objects.exists()


def test_the_audit_command_prints_the_sealed_rows(officer, world, capsys):
    call_command("lawful", "export", "--as", officer.username, *ARGS, *PERIOD, "--account", "173829")
    capsys.readouterr()

    call_command("lawful", "audit")

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["action"] for r in rows] == ["lawful.export_requested", "lawful.export_generated"]
    assert rows[0]["after"]["basis_number"] == "77-ФСБ" and rows[0]["actor"] == officer.username
