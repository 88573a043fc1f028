"""The console's import wizard: administrators only, each step's refusals with nothing written, the dry run in the
worker behind a progress bar, the real run only on the dry run's settings and started once however often it is
sent, the quarantine exported, and a job resumed at its step."""

from __future__ import annotations

import csv
import html
import io
import re
from decimal import Decimal

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from abonent.billing.models import LedgerTransaction, Subscription
from abonent.core.models import AuditEvent
from abonent.imports import actions
from abonent.imports.models import ImportIssue, ImportJob, ImportProfile, JobStatus
from abonent.imports.tasks import run_import
from abonent.imports.wizard_selectors import settings_fingerprint
from abonent.staff.permissions import Role
from abonent.subscribers.models import Subscriber

from .conftest import CUTOVER, HEADERS, MAPPING, SEED, csv_bytes, xlsx

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def upload(client, content: bytes, name: str = "export.xlsx", **fields):
    data = {"entity": "subscribers", "source": "mikbill", "sheet": "", **fields}
    data["file"] = io.BytesIO(content)
    data["file"].name = name
    return client.post("/staff/imports/new/", data)


def mapping_post(job, mapping: dict, **extra) -> dict:
    """The mapping form's data: for each column of the file the field chosen for it."""
    data = {}
    for i, header in enumerate(job.headers):
        fields = [field for field, column in mapping.items() if column == header] + ["", ""]
        data[f"col_{i}"], data[f"col_{i}_also"] = fields[0], fields[1]
    return {**data, "save_profile_as": "", "profile": "", **extra}


def options_post(**extra) -> dict:
    return {"cutover_date": CUTOVER.isoformat(), "default_branch": "", "duplicate_default": "skip", **extra}


def queued_runs(dry_run: bool) -> int:
    return sum(
        1
        for task in DBTaskResult.objects.filter(task_path__endswith="run_import")
        if task.args_kwargs["kwargs"]["dry_run"] is dry_run
    )


def text(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", response.content.decode()))


@pytest.fixture
def mapped_job(admin_client, branch, plan100):
    """The seed's XLSX uploaded and mapped through the wizard."""
    response = upload(admin_client, xlsx([SEED]))
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/staff/imports/{job.pk}/mapping/"
    response = admin_client.post(f"/staff/imports/{job.pk}/mapping/", mapping_post(job, MAPPING))
    assert response.status_code == 302 and response["Location"] == f"/staff/imports/{job.pk}/options/"
    job.refresh_from_db()
    return job


def dry_run(admin_client, job, django_capture_on_commit_callbacks, admin, **options):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/staff/imports/{job.pk}/options/", options_post(**options))
    assert response.status_code == 302 and response["Location"] == f"/staff/imports/{job.pk}/progress/"
    run_import.call(job_id=job.pk, dry_run=True, user_id=admin.pk)
    job.refresh_from_db()
    return job


# --- who may -------------------------------------------------------------------------------------------------


def test_only_an_administrator_without_a_branch_limit_opens_the_wizard(
    admin_client, operator_client, make_staff, branch
):
    assert admin_client.get("/staff/imports/").status_code == 200
    assert 'id="nav-imports"' in admin_client.get("/staff/subscribers/").content.decode()

    denied = operator_client.get("/staff/imports/")
    assert denied.status_code == 403
    assert 'id="missing-permission">import.run<' in denied.content.decode()
    assert operator_client.post("/staff/imports/new/", {"source": "x"}).status_code == 403
    assert 'id="nav-imports"' not in operator_client.get("/staff/subscribers/").content.decode()

    limited = Client()
    limited.force_login(make_staff(Role.ADMIN, branches=[branch]))
    assert limited.get("/staff/imports/").status_code == 403
    assert upload(limited, xlsx([SEED])).status_code == 403
    assert ImportJob.objects.count() == 0


def test_an_operator_cannot_run_a_job_an_administrator_prepared(mapped_job, operator_client):
    response = operator_client.post(f"/staff/imports/{mapped_job.pk}/options/", options_post())
    assert response.status_code == 403
    mapped_job.refresh_from_db()
    assert mapped_job.status == JobStatus.UPLOADED and mapped_job.cutover_date is None
    assert queued_runs(dry_run=True) == 0


# --- upload --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "code_text"),
    [
        (b"%PDF-1.4 not a table", "export.csv", "This is not a CSV or XLSX file."),
        (xlsx([SEED], formula="B2"), "export.xlsx", "has a formula at B2"),
        (xlsx([SEED, SEED], merge="A2:A3"), "export.xlsx", "has merged cells (at A2)"),
        (b"", "empty.csv", "The submitted file is empty."),
    ],
)
def test_a_bad_file_is_refused_on_the_form_and_nothing_is_written(admin_client, content, name, code_text):
    audit_before = AuditEvent.objects.count()

    response = upload(admin_client, content, name)

    assert response.status_code == 422
    assert code_text in text(response)
    assert 'data-field="file"' in response.content.decode() and "is-invalid" in response.content.decode()
    assert ImportJob.objects.count() == 0
    assert AuditEvent.objects.count() == audit_before


def test_a_file_over_the_limit_is_refused_before_it_is_read(admin_client, settings):
    settings.ABONENT_IMPORT_MAX_BYTES = 100

    response = upload(admin_client, csv_bytes([SEED]), "export.csv")

    assert response.status_code == 422
    assert "The file is larger than" in text(response)
    assert ImportJob.objects.count() == 0


def test_the_old_system_must_be_named(admin_client):
    response = upload(admin_client, csv_bytes([SEED]), "export.csv", source="   ")
    assert response.status_code == 422
    assert ImportJob.objects.count() == 0


# --- mapping -------------------------------------------------------------------------------------------------


def test_the_mapping_shows_the_headers_and_first_rows_and_is_filled_by_a_profile(admin_client, branch):
    upload(admin_client, xlsx([SEED]))
    job = ImportJob.objects.get()

    page = admin_client.get(f"/staff/imports/{job.pk}/mapping/?profile=mikbill").content.decode()

    assert '<th class="text-nowrap" scope="col">fio</th>' in page
    assert "Петров Иван Сергеевич" in page and "GPON-ONT ZTE" in page
    # The Mikbill profile maps its own column names; the rest of the file's columns are left for the operator.
    uid = HEADERS.index("uid")
    assert re.search(rf'name="col_{uid}"[^>]*>.*?<option value="old_id" selected>', page, re.S)
    packet = HEADERS.index("packet")
    assert re.search(rf'name="col_{packet}"[^>]*>.*?<option value="plan" selected>', page, re.S)
    equipment = HEADERS.index("equipment")
    assert not re.search(rf'name="col_{equipment}"[^>]*>(?:(?!</select>).)*value="[^"]+" selected', page, re.S)
    assert "Plan *" in page  # a required field is marked


def test_a_mapping_without_a_required_field_is_refused_naming_it(mapped_job, admin_client):
    mapping = {k: v for k, v in MAPPING.items() if k != "balance"}

    response = admin_client.post(f"/staff/imports/{mapped_job.pk}/mapping/", mapping_post(mapped_job, mapping))

    assert response.status_code == 422
    assert "Map a column to Balance: it is required." in text(response)
    mapped_job.refresh_from_db()
    assert mapped_job.mapping == MAPPING  # the saved one stands


def test_one_field_for_two_columns_is_refused_on_the_second(mapped_job, admin_client):
    data = mapping_post(mapped_job, MAPPING)
    data[f"col_{HEADERS.index('email')}"] = "phone"

    response = admin_client.post(f"/staff/imports/{mapped_job.pk}/mapping/", data)

    assert response.status_code == 422
    assert "“Phone” is chosen for two columns: “mob_tel” and “email”." in text(response)
    mapped_job.refresh_from_db()
    assert mapped_job.mapping == MAPPING


def test_a_mapping_saved_as_a_profile_fills_the_next_file(mapped_job, admin_client):
    data = mapping_post(mapped_job, MAPPING, save_profile_as="Наш Mikbill")
    assert admin_client.post(f"/staff/imports/{mapped_job.pk}/mapping/", data).status_code == 302
    profile = ImportProfile.objects.get()
    assert (profile.name, profile.entity, profile.mapping) == ("Наш Mikbill", "subscribers", MAPPING)

    upload(admin_client, xlsx([SEED]), "second.xlsx")
    second = ImportJob.objects.get(file_name="second.xlsx")
    page = admin_client.get(f"/staff/imports/{second.pk}/mapping/?profile=Наш Mikbill").content.decode()
    serial = HEADERS.index("serial")
    assert re.search(rf'name="col_{serial}"[^>]*>.*?<option value="equipment_serial" selected>', page, re.S)


# --- options, dry run, report --------------------------------------------------------------------------------


def test_options_without_a_cutover_date_are_refused_and_nothing_runs(mapped_job, admin_client):
    response = admin_client.post(f"/staff/imports/{mapped_job.pk}/options/", options_post(cutover_date=""))

    assert response.status_code == 422
    assert "Say through which day the old system has charged." in text(response)
    mapped_job.refresh_from_db()
    assert mapped_job.status == JobStatus.UPLOADED
    assert queued_runs(dry_run=True) == 0


def test_the_dry_run_goes_to_the_worker_with_a_progress_bar_and_writes_nothing(
    mapped_job, admin_client, admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/staff/imports/{mapped_job.pk}/options/", options_post())
        again = admin_client.post(f"/staff/imports/{mapped_job.pk}/options/", options_post())
    assert response.status_code == 302 and again.status_code == 302
    assert queued_runs(dry_run=True) == 1  # sent twice, queued once
    mapped_job.refresh_from_db()
    assert mapped_job.status == JobStatus.QUEUED and mapped_job.cutover_date == CUTOVER

    page = admin_client.get(f"/staff/imports/{mapped_job.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in page and 'id="import-progress-bar"' in page
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page
    # Leaving and coming back: the job's page is its progress while it runs.
    assert admin_client.get(f"/staff/imports/{mapped_job.pk}/")["Location"] == (
        f"/staff/imports/{mapped_job.pk}/progress/"
    )

    run_import.call(job_id=mapped_job.pk, dry_run=True, user_id=admin.pk)

    assert Subscriber.objects.count() == 0 and LedgerTransaction.objects.count() == 0
    polled = admin_client.get(f"/staff/imports/{mapped_job.pk}/progress/", headers={"HX-Request": "true"})
    assert polled["HX-Redirect"] == f"/staff/imports/{mapped_job.pk}/report/"
    assert admin_client.get(f"/staff/imports/{mapped_job.pk}/progress/")["Location"] == (
        f"/staff/imports/{mapped_job.pk}/report/"
    )
    report = admin_client.get(f"/staff/imports/{mapped_job.pk}/report/")
    page = report.content.decode()
    assert 'id="balance-old" data-amount="1234.56"' in page
    assert 'id="balance-new" data-amount="1234.56"' in page
    assert 'id="balance-difference" data-amount="0.00"' in page
    assert re.search(r'data-row-count="new">.*?<td class="text-end">1</td>', page, re.S)
    assert 'id="report-continue"' in page


def test_the_real_run_repeats_the_figures_starts_once_and_links_the_subscriber(
    mapped_job, admin_client, admin, make_staff, django_capture_on_commit_callbacks
):
    job = dry_run(admin_client, mapped_job, django_capture_on_commit_callbacks, admin)
    confirm = admin_client.get(f"/staff/imports/{job.pk}/run/")
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', confirm.content.decode()).group(1)
    assert 'id="balance-new" data-amount="1234.56"' in confirm.content.decode()

    second_admin = Client()
    second_admin.force_login(make_staff(Role.ADMIN))
    with django_capture_on_commit_callbacks(execute=True):
        first = admin_client.post(f"/staff/imports/{job.pk}/run/", {"fingerprint": fingerprint})
        double = admin_client.post(f"/staff/imports/{job.pk}/run/", {"fingerprint": fingerprint})
        other = second_admin.post(f"/staff/imports/{job.pk}/run/", {"fingerprint": fingerprint})
    assert [r.status_code for r in (first, double, other)] == [302, 302, 302]
    assert queued_runs(dry_run=False) == 1
    assert AuditEvent.objects.filter(action="imports.run_queued", after__dry_run=False).count() == 1

    run_import.call(job_id=job.pk, dry_run=False, user_id=admin.pk)

    subscriber = Subscriber.objects.get(legacy_account="173829")
    assert subscriber.ledger_account.balance == Decimal("1234.56")
    assert Subscription.objects.get(subscriber=subscriber).plan.name == "Интернет-100"
    # Sent again after it ran: nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        late = admin_client.post(f"/staff/imports/{job.pk}/run/", {"fingerprint": fingerprint})
    assert late.status_code == 302 and queued_runs(dry_run=False) == 1
    assert admin_client.get(f"/staff/imports/{job.pk}/")["Location"] == f"/staff/imports/{job.pk}/result/"
    result = admin_client.get(f"/staff/imports/{job.pk}/result/").content.decode()
    assert f'href="/staff/imports/{job.pk}/subscribers/"' in result
    listed = admin_client.get(f"/staff/imports/{job.pk}/subscribers/").content.decode()
    assert f'href="/staff/subscribers/{subscriber.pk}/"' in listed and "173829" in listed


def test_the_real_run_is_refused_when_the_settings_changed_since_the_dry_run(
    mapped_job, admin_client, admin, django_capture_on_commit_callbacks
):
    job = dry_run(admin_client, mapped_job, django_capture_on_commit_callbacks, admin)
    seen = settings_fingerprint(job)

    # Another administrator changes the cut-over: the dry run no longer stands.
    actions.do_configure_job(
        job, mapping=job.mapping, options=job.options, cutover_date=CUTOVER.replace(day=30), acting_user=admin
    )
    with django_capture_on_commit_callbacks(execute=True):
        refused = admin_client.post(f"/staff/imports/{job.pk}/run/", {"fingerprint": seen})
    assert refused.status_code == 409
    assert "Run the dry run first" in text(refused)

    # ... and runs a new dry run: its figures are not those the first one saw.
    actions.run_job(job, dry_run=True, acting_user=admin)
    with django_capture_on_commit_callbacks(execute=True):
        stale = admin_client.post(f"/staff/imports/{job.pk}/run/", {"fingerprint": seen})
    assert stale.status_code == 409
    assert "changed since the dry run you saw" in text(stale)
    assert 'name="fingerprint"' in stale.content.decode()  # the new figures, to confirm again

    assert queued_runs(dry_run=False) == 0
    assert Subscriber.objects.count() == 0


def test_a_new_mapping_after_the_dry_run_needs_a_new_dry_run(
    mapped_job, admin_client, admin, django_capture_on_commit_callbacks
):
    job = dry_run(admin_client, mapped_job, django_capture_on_commit_callbacks, admin)
    fingerprint = settings_fingerprint(job)
    mapping = {k: v for k, v in MAPPING.items() if k != "email"}
    assert admin_client.post(f"/staff/imports/{job.pk}/mapping/", mapping_post(job, mapping)).status_code == 302

    assert admin_client.get(f"/staff/imports/{job.pk}/")["Location"] == f"/staff/imports/{job.pk}/options/"
    with django_capture_on_commit_callbacks(execute=True):
        refused = admin_client.post(f"/staff/imports/{job.pk}/run/", {"fingerprint": fingerprint})
    assert refused.status_code == 409
    assert queued_runs(dry_run=False) == 0


# --- problems and the quarantine -----------------------------------------------------------------------------


def dirty_rows():
    text_amount = list(SEED)
    text_amount[0], text_amount[HEADERS.index("deposit")] = "200001", "сто рублей"
    text_amount[HEADERS.index("user")], text_amount[HEADERS.index("passport")] = "ivanov", "2804 999999"
    text_amount[HEADERS.index("numdogovor")], text_amount[HEADERS.index("framed_ip")] = "Д-200001", ""
    text_amount[HEADERS.index("serial")] = "ZTEG00000001"
    unknown_plan = list(text_amount)
    unknown_plan[0], unknown_plan[HEADERS.index("deposit")] = "200002", "10"
    unknown_plan[HEADERS.index("packet")], unknown_plan[HEADERS.index("user")] = "Нет такого", "sidorov"
    unknown_plan[HEADERS.index("passport")], unknown_plan[HEADERS.index("numdogovor")] = "2804 888888", "Д-200002"
    unknown_plan[HEADERS.index("serial")] = "ZTEG00000002"
    return [SEED, text_amount, unknown_plan]


def test_every_problem_row_is_listed_and_the_quarantine_exports_with_the_row_as_in_the_file(
    admin_client, admin, branch, plan100, django_capture_on_commit_callbacks
):
    upload(admin_client, xlsx(dirty_rows()))
    job = ImportJob.objects.get()
    admin_client.post(f"/staff/imports/{job.pk}/mapping/", mapping_post(job, MAPPING))
    job = dry_run(admin_client, job, django_capture_on_commit_callbacks, admin)
    problems = {(i.row_number, i.code) for i in ImportIssue.objects.filter(job=job, dry_run=True, is_warning=False)}
    assert (3, "amount_invalid") in problems and 4 in {row for row, _code in problems}

    page = admin_client.get(f"/staff/imports/{job.pk}/report/").content.decode()
    for row, code in problems:
        assert f'data-row="{row}" data-code="{code}"' in page
    assert "сто рублей" in page

    exported = admin_client.get(f"/staff/imports/{job.pk}/problems/?run=dry&format=csv")
    assert exported.status_code == 200
    lines = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig")), delimiter=";"))
    assert lines[0][:5] == ["Row", "Old id", "Field", "Code", "Problem"] and lines[0][6:] == HEADERS
    amount_line = next(line for line in lines[1:] if line[3] == "amount_invalid")
    assert amount_line[0] == "3" and amount_line[1] == "200001"
    assert amount_line[6 + HEADERS.index("deposit")] == "сто рублей"
    xlsx_export = admin_client.get(f"/staff/imports/{job.pk}/problems/?run=dry&format=xlsx")
    assert xlsx_export.status_code == 200 and xlsx_export["Content-Type"].startswith("application/vnd.openxmlformats")
    assert admin_client.get(f"/staff/imports/{job.pk}/problems/?format=pdf").status_code == 400


def test_the_jobs_list_shows_each_job_with_its_counts(
    mapped_job, admin_client, admin, django_capture_on_commit_callbacks
):
    dry_run(admin_client, mapped_job, django_capture_on_commit_callbacks, admin)

    page = admin_client.get("/staff/imports/").content.decode()

    assert f'data-job="{mapped_job.pk}" data-status="dry_run_done"' in page
    assert "export.xlsx" in page and "mikbill" in page
    assert re.search(r'data-count="new"[^>]*>1<', page)


def test_unknown_jobs_and_steps_out_of_order_do_not_break(admin_client, mapped_job):
    assert admin_client.get("/staff/imports/999999/").status_code == 404
    # No dry run yet: the report, the confirm screen and the result send back to where the job stands.
    for step in ("report", "run", "result"):
        response = admin_client.get(f"/staff/imports/{mapped_job.pk}/{step}/")
        assert response.status_code == 302 and response["Location"] == f"/staff/imports/{mapped_job.pk}/options/"
    assert admin_client.get("/staff/imports/?cursor=garbage").status_code == 200
