"""Bad input is refused with a clear message before anything is written."""

import pytest
from django.core.exceptions import ValidationError

from abonent.imports import actions
from abonent.imports.models import Entity, ImportJob
from abonent.subscribers.models import Subscriber

from .conftest import MAPPING, SEED, csv_bytes, xlsx


def _create(admin, content, name="export.xlsx"):
    return actions.do_create_import_job(
        entity=Entity.SUBSCRIBERS, file_name=name, content=content, source="mikbill", acting_user=admin
    )


def _refused(admin, content, code, name="export.xlsx"):
    with pytest.raises(ValidationError) as refused:
        _create(admin, content, name)
    assert [e.code for e in refused.value.error_dict["file"]] == [code]
    assert ImportJob.objects.count() == 0
    assert Subscriber.objects.count() == 0
    return refused.value.error_dict["file"][0].messages[0]


def test_a_renamed_pdf_is_refused(admin):
    _refused(admin, b"%PDF-1.7\n1 0 obj <<>> endobj\n", "file_type")


def test_a_zip_that_is_not_a_workbook_is_refused(admin):
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.txt", b"0" * 20_000_000)
    _refused(admin, out.getvalue(), "file_type")


def test_a_file_over_the_size_limit_is_refused(admin, settings):
    settings.ABONENT_IMPORT_MAX_BYTES = 1000
    message = _refused(admin, csv_bytes([SEED] * 20), "file_too_large", "big.csv")
    assert "MB" in message


def test_too_many_rows_are_refused(admin, settings):
    settings.ABONENT_IMPORT_MAX_ROWS = 2
    _refused(admin, csv_bytes([SEED] * 3), "file_too_many_rows", "rows.csv")


def test_a_formula_is_refused_naming_the_cell(admin):
    message = _refused(admin, xlsx([SEED], formula="K2"), "xlsx_formula")
    assert "K2" in message


def test_merged_cells_are_refused_naming_the_cell(admin):
    message = _refused(admin, xlsx([SEED, SEED], merge="B2:B3"), "xlsx_merged_cells")
    assert "B2" in message


def test_a_file_mixing_encodings_is_refused_naming_the_line(admin):
    content = csv_bytes([SEED]) + ";".join(SEED).encode("cp1251") + b"\n"
    message = _refused(admin, content, "encoding_mixed", "mixed.csv")
    assert "line 3" in message


def test_windows_1251_with_any_delimiter_is_read(admin):
    job = _create(admin, csv_bytes([SEED], delimiter="\t", encoding="cp1251"), "tab.csv")
    assert (job.encoding, job.delimiter, job.row_count) == ("cp1251", "\t", 1)
    job = _create(admin, b"\xef\xbb\xbf" + csv_bytes([SEED], delimiter=","), "bom.csv")
    assert (job.encoding, job.delimiter, job.headers[0]) == ("utf-8-sig", ",", "uid")


def test_a_mapping_without_a_required_field_is_refused_before_anything_is_written(admin, branch, plan100):
    job = _create(admin, xlsx([SEED]))
    mapping = {k: v for k, v in MAPPING.items() if k != "plan"}

    with pytest.raises(ValidationError) as refused:
        actions.do_configure_job(job, mapping=mapping, cutover_date=None, acting_user=admin)

    assert refused.value.error_dict["plan"][0].code == "mapping_required"
    job.refresh_from_db()
    assert job.status == "uploaded"
    with pytest.raises(ValidationError) as not_mapped:
        actions.do_start_run(job, dry_run=True, acting_user=admin)
    assert not_mapped.value.code == "job_not_mapped"
    assert Subscriber.objects.count() == 0


def test_only_the_admin_role_may_import(make_staff):
    from django.core.exceptions import PermissionDenied

    operator = make_staff("operator")
    with pytest.raises(PermissionDenied):
        _create(operator, xlsx([SEED]))
    assert ImportJob.objects.count() == 0
