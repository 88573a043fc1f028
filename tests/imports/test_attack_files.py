"""Hostile files: a huge field, a NUL byte past the sniffed head, merged cells written with a namespace prefix,
terminal escape sequences reaching the console."""

import io
import re
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from abonent.imports import actions
from abonent.imports.models import Entity, ImportJob

from .conftest import HEADERS, SEED, csv_bytes, xlsx


def _refused(admin, content, name):
    with pytest.raises(ValidationError) as refused:
        actions.do_create_import_job(
            entity=Entity.SUBSCRIBERS, file_name=name, content=content, source="mikbill", acting_user=admin
        )
    assert ImportJob.objects.count() == 0
    return [e.code for e in refused.value.error_dict["file"]], refused.value.error_dict["file"][0].messages[0]


def test_a_field_larger_than_the_csv_reader_takes_is_a_file_error_not_a_crash(admin):
    huge = list(SEED)
    huge[1] = "Я" * 200_000
    codes, message = _refused(admin, csv_bytes([SEED, huge]), "huge.csv")
    assert codes == ["file_unreadable"]
    assert "3" in message  # the line


def test_a_nul_byte_past_the_first_64_kb_is_refused(admin):
    padding = [list(SEED) for _ in range(300)]
    for n, values in enumerate(padding):
        values[0] = str(100000 + n)
    bad = list(SEED)
    bad[1] = "Петров\x00Иван Сергеевич"
    content = csv_bytes([*padding, bad])
    assert content.index(b"\x00") > 65536
    codes, _message = _refused(admin, content, "nul.csv")
    assert codes == ["file_nul"]


def test_merged_cells_written_with_a_namespace_prefix_are_refused_too(admin):
    plain = xlsx([SEED, SEED], merge="B2:B3")
    source = zipfile.ZipFile(io.BytesIO(plain))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                # As the .NET Open XML SDK writes it: the same namespace under a prefix.
                data = data.replace(
                    b'<worksheet xmlns="',
                    b'<worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns="',
                    1,
                )
                data = re.sub(rb"<(/?)mergeCell", rb"<\1x:mergeCell", data)
                assert b"<x:mergeCell ref=" in data
            archive.writestr(item, data)
    codes, message = _refused(admin, out.getvalue(), "prefixed.xlsx")
    assert codes == ["xlsx_merged_cells"]
    assert "B2" in message


def test_escape_sequences_in_a_file_do_not_reach_the_terminal(admin, branch, plan100, tmp_path):
    evil = list(SEED)
    evil[7] = "\x1b[2J\x1b[1A\x0705.11.2019"  # the contract date: reported back as not a date
    path = tmp_path / "evil.csv"
    path.write_bytes(csv_bytes([evil], HEADERS))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit):
        call_command(
            "import",
            "subscribers",
            str(path),
            "--profile",
            "test-attack",
            "--cutover",
            "31.05.2026",
            "--branch",
            branch.code,
            "--dry-run",
            stdout=out,
            stderr=err,
        )
    assert "date_invalid" in out.getvalue()
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()


@pytest.fixture(autouse=True)
def _profile(db, admin):
    from .conftest import MAPPING

    actions.do_save_profile(name="test-attack", entity=Entity.SUBSCRIBERS, mapping=MAPPING, acting_user=admin)
