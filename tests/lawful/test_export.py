"""The export's files and columns, the IP-at-an-instant query, criteria checks and the manifest."""

import hashlib
import io
import json
import zipfile

import pytest
from django.core.exceptions import ValidationError

from abonent.core.models import AuditEvent
from abonent.integrations.lawful import actions
from abonent.integrations.lawful.formats import vas_experts
from abonent.integrations.lawful.models import ExportRequest, ExportStatus

from .conftest import BASIS, PERIOD, body, read_zip, request_export

pytestmark = pytest.mark.django_db


def test_the_zip_holds_identity_payments_and_sessions_of_the_named_subscriber(officer, officer_client, world):
    ivanov = world["ivanov"]

    response, request = request_export(officer_client, accounts="173829")

    assert response.status_code == 302 and response["Location"] == "/staff/lawful/"
    assert request.status == ExportStatus.DONE, request.error
    download = officer_client.get(f"/staff/lawful/{request.pk}/download/")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    data = body(download)
    assert hashlib.sha256(data).hexdigest() == request.file_sha256 and len(data) == request.file_size
    files = read_zip(data)

    assert files["abonents"] == [
        vas_experts.ABONENT_COLUMNS,
        [ivanov.account_number, "173829", "0", "Иванов Иван Петрович", "Тверь", "0", files["abonents"][1][6], ""],
    ]
    assert files["fiz"] == [
        vas_experts.FIZ_COLUMNS,
        [
            ivanov.account_number, "Иванов", "Иван", "Петрович", "17.05.1980", "21", "4510", "123456",
            # CSV injection: the formula is kept as text behind an apostrophe (docs/lawful-export.md).
            "'=cmd|' /C calc'!A0", "01.06.2005", "", "Тверь, ул. Ленина, 5, 12",
        ],
    ]  # fmt: skip
    assert files["jur"] == [vas_experts.JUR_COLUMNS]
    assert files["contact_phones"] == [vas_experts.CONTACT_COLUMNS, [ivanov.account_number, "+79161234567", "1", ""]]
    assert files["contracts"][1][:4] == [
        ivanov.account_number,
        ivanov.account_number,
        files["contracts"][1][2],
        "active",
    ]
    assert files["logins"][1][:5] == [ivanov.account_number, "ivanov", "pppoe", "10.9.0.7", "1"]
    assert files["ip_assignments"][1][:3] == [ivanov.account_number, "ivanov", "10.9.0.7"]
    # The payments of the period only (not October's 100.00), the payer's formula neutralised.
    assert [row[2:10] for row in files["payments"][1:]] == [
        ["02.11.2026 09:00:00", "650.00", "cash", "cash", "", "c-1", "credited", ""],
        ["07.11.2026 11:00:00", "1200.50", "bank", "bank", "", "pp-77", "credited", "'@SUM(1+1) Иванов И.П."],
    ]
    # Session a: start and stop with its final counters; session b, still open: start and its last update.
    assert files["aaa"] == [
        vas_experts.AAA_COLUMNS,
        ["05.11.2026 13:00:00", "0", "sess-a", "10.1.2.3", "ivanov", ivanov.account_number, "0", "10.0.0.1", "ether5",
         "0", "0", "AA:BB:CC:DD:EE:01"],
        ["05.11.2026 14:30:00", "1", "sess-a", "10.1.2.3", "ivanov", ivanov.account_number, "0", "10.0.0.1", "ether5",
         "4000", "90000", "AA:BB:CC:DD:EE:01"],
        ["06.11.2026 10:00:00", "0", "sess-b", "10.1.2.99", "ivanov", ivanov.account_number, "0", "10.0.0.1", "ether5",
         "0", "0", "AA:BB:CC:DD:EE:01"],
        ["06.11.2026 10:10:00", "2", "sess-b", "10.1.2.99", "ivanov", ivanov.account_number, "0", "10.0.0.1", "ether5",
         "77", "88", "AA:BB:CC:DD:EE:01"],
    ]  # fmt: skip
    assert files["gateways"] == [
        vas_experts.GATEWAY_COLUMNS,
        [str(world["nas"].pk), "bras-1", "10.0.0.1", "mikrotik", "1"],
    ]
    assert dict(request.row_summary) == {
        "abonents": 1, "fiz": 1, "jur": 0, "contact_phones": 1, "contact_emails": 0, "contracts": 1, "logins": 1,
        "ip_assignments": 1, "identity_changes": 0, "payments": 2, "aaa": 4, "gateways": 1, "ip_numbering": 0,
    }  # fmt: skip


def test_the_manifest_names_the_request_and_hashes_every_file(officer, officer_client, world):
    _response, request = request_export(officer_client, accounts=world["ivanov"].account_number)

    data = body(officer_client.get(f"/staff/lawful/{request.pk}/download/"))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        contents = {name: zf.read(name) for name in zf.namelist()}
    assert manifest["format"] == "vas-experts-sorm3" and manifest["format_version"] == "1"
    assert manifest["request_id"] == request.pk
    assert manifest["legal_basis"] == {"kind": "court_order", "number": "3/12-115", "date": "2026-11-15"}
    assert manifest["criteria"] == {"accounts": [world["ivanov"].account_number]}
    assert manifest["period"] == {"from": "2026-11-01T00:00:00+00:00", "to": "2026-11-10T00:00:00+00:00"}
    assert manifest["generated_at"].startswith("2026-11-20T12:") and manifest["time_zone"] == "UTC"
    assert len(manifest["files"]) == 13
    for entry in manifest["files"]:
        assert hashlib.sha256(contents[entry["path"]]).hexdigest() == entry["sha256"]
        assert contents[entry["path"]].count(b"\n") == entry["rows"] + 1  # the header
        assert request.row_counts[entry["path"]] == entry["rows"]


def test_the_ip_at_an_instant_finds_who_had_it_then_not_who_had_it_an_hour_later(officer, officer_client, world):
    ivanov, petrov = world["ivanov"], world["petrov"]

    _r, at_two = request_export(officer_client, ips="10.1.2.3", ip_at="2026-11-05T14:00")
    _r, at_half_past_three = request_export(officer_client, ips="10.1.2.3", ip_at="2026-11-05T15:45")

    files = read_zip(body(officer_client.get(f"/staff/lawful/{at_two.pk}/download/")))
    assert [row[0] for row in files["abonents"][1:]] == [ivanov.account_number]
    assert {row[2] for row in files["aaa"][1:]} == {"sess-a", "sess-b"}  # his sessions of the period
    files = read_zip(body(officer_client.get(f"/staff/lawful/{at_half_past_three.pk}/download/")))
    assert [row[0] for row in files["abonents"][1:]] == [petrov.account_number]
    assert {row[2] for row in files["aaa"][1:]} == {"sess-c"}


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"logins": "petrov"}, "petrov"),
        ({"phones": "8 (916) 123-45-68"}, "petrov"),
        ({"macs": "aa-bb-cc-dd-ee-01"}, "ivanov"),  # the NAS wrote it AA:BB:…
        ({"ips": "10.1.2.99"}, "ivanov"),  # over the whole period
        # His static address, his since the login was made today: not his in the first days of November.
        ({"ips": "10.9.0.7", "period_start": "2026-11-15T00:00", "period_end": "2026-11-21T00:00"}, "ivanov"),
        ({"ips": "10.9.0.7"}, None),
        ({"accounts": "placeholder"}, "petrov"),
    ],
)
def test_each_criterion_finds_its_subscriber(officer, officer_client, world, criteria, expected):
    if criteria.get("accounts") == "placeholder":
        criteria = {"accounts": world["petrov"].account_number}
    _r, request = request_export(officer_client, **criteria)

    files = read_zip(body(officer_client.get(f"/staff/lawful/{request.pk}/download/")))
    assert [row[0] for row in files["abonents"][1:]] == ([world[expected].account_number] if expected else [])


def test_a_branch_limited_officer_gets_only_their_branch(make_officer, world, branch):
    from .conftest import verified_client

    limited = make_officer("sorm-tver", branches=[branch])
    client = verified_client(limited)

    _r, request = request_export(client, ips="10.1.2.3")

    files = read_zip(body(client.get(f"/staff/lawful/{request.pk}/download/")))
    assert [row[0] for row in files["abonents"][1:]] == [world["ivanov"].account_number]  # Petrov is in Klin
    assert {row[2] for row in files["aaa"][1:]} == {"sess-a", "sess-b"}


def test_a_missing_legal_basis_is_a_field_error_and_nothing_is_written(officer, officer_client, world):
    events = AuditEvent.objects.count()

    response, request = request_export(officer_client, basis_number="", basis_date="", accounts="173829")

    assert response.status_code == 422 and request is None
    form = response.context["form"]
    assert form.errors["basis_number"] and form.errors["basis_date"]
    assert ExportRequest.objects.count() == 0 and AuditEvent.objects.count() == events
    with pytest.raises(ValidationError) as refused:
        actions.do_request_export(
            acting_user=officer, basis_kind="", basis_number=" ", basis_date=None, accounts="173829",
            period_start=None, period_end=None,
        )  # fmt: skip
    codes = {field: [e.code for e in errors] for field, errors in refused.value.error_dict.items()}
    assert codes == {
        "basis_kind": ["required"],
        "basis_number": ["required"],
        "basis_date": ["required"],
        "period_start": ["required"],
        "period_end": ["required"],
    }
    assert ExportRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"period_start": "2025-10-01T00:00", "period_end": "2026-11-10T00:00"}, "period_end", "period_too_wide"),
        ({"period_start": "2023-10-01T00:00", "period_end": "2023-11-10T00:00"}, "period_start", "period_too_old"),
        ({"period_start": "2026-11-10T00:00", "period_end": "2026-11-01T00:00"}, "period_end", "period_order"),
        ({"ips": "10.1.2.3", "ip_at": "2026-11-12T00:00"}, "ip_at", "ip_at_outside"),
        ({"ips": "10.1.2.300"}, "ips", "invalid"),
        ({"macs": "not-a-mac"}, "macs", "invalid"),
        ({"phones": "12"}, "phones", "invalid"),
        ({"accounts": ""}, "accounts", "no_criteria"),
        ({"basis_date": "2026-12-01"}, "basis_date", "future"),
        ({"format": "yakhont"}, "format", "invalid"),
    ],
)
def test_bad_criteria_are_field_errors(officer, world, fields, field, code):
    import datetime as dt

    data = {**BASIS, **PERIOD, "accounts": "173829", **fields}

    def when(value):
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC) if value else None

    with pytest.raises(ValidationError) as refused:
        actions.do_request_export(
            acting_user=officer,
            basis_kind=data["basis_kind"],
            basis_number=data["basis_number"],
            basis_date=dt.date.fromisoformat(data["basis_date"]),
            period_start=when(data["period_start"]),
            period_end=when(data["period_end"]),
            accounts=data["accounts"],
            ips=data.get("ips", ""),
            ip_at=when(data.get("ip_at")),
            macs=data.get("macs", ""),
            phones=data.get("phones", ""),
            format=data.get("format", "vas-experts-sorm3"),
        )
    assert code in [e.code for e in refused.value.error_dict[field]]
    assert ExportRequest.objects.count() == 0


def test_an_export_past_its_deadline_fails_and_leaves_no_file(officer, officer_client, world, settings):
    settings.ABONENT_LAWFUL_DEADLINE_SECONDS = -1

    _r, request = request_export(officer_client, accounts="173829")

    assert request.status == ExportStatus.FAILED and "deadline" in request.error
    assert request.file_name == "" and not [p for p in settings.ABONENT_LAWFUL_DIR.rglob("*") if p.is_file()]
    assert AuditEvent.objects.filter(action="lawful.export_failed", object_id=str(request.pk)).exists()
    assert officer_client.get(f"/staff/lawful/{request.pk}/download/").status_code == 410


def test_the_task_run_twice_makes_one_file(officer, officer_client, world, settings):
    from abonent.integrations.lawful.tasks import generate_lawful_export

    _r, request = request_export(officer_client, accounts="173829")

    assert generate_lawful_export.call(request_id=request.pk) == {"request": request.pk, "status": None}
    assert len(list(settings.ABONENT_LAWFUL_DIR.rglob("*.zip"))) == 1
    assert AuditEvent.objects.filter(action="lawful.export_generated").count() == 1
