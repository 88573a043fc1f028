import datetime as dt
import io

import pytest

from abonent.imports import actions
from abonent.imports.models import Entity

CUTOVER = dt.date(2026, 5, 31)

HEADERS = [
    "uid",
    "fio",
    "passport",
    "address",
    "mob_tel",
    "email",
    "numdogovor",
    "date_dogovor",
    "packet",
    "price",
    "deposit",
    "credit",
    "status",
    "user",
    "password",
    "framed_ip",
    "equipment",
    "serial",
]
MAPPING = {
    "old_id": "uid",
    "legacy_account": "uid",
    "full_name": "fio",
    "passport": "passport",
    "address": "address",
    "phone": "mob_tel",
    "email": "email",
    "contract_number": "numdogovor",
    "contract_date": "date_dogovor",
    "plan": "packet",
    "price": "price",
    "balance": "deposit",
    "credit_limit": "credit",
    "status": "status",
    "login": "user",
    "password": "password",
    "static_ip": "framed_ip",
    "equipment_model": "equipment",
    "equipment_serial": "serial",
}
SEED = [
    "173829",
    "Петров Иван Сергеевич",
    "2804 123456",
    "г. Тверь, ул. Ленина, д. 5, кв. 12",
    "8 (916) 123-45-67",
    "petrov@example.ru",
    "Д-173829",
    "05.11.2019",
    "Интернет-100",
    "",
    "1 234,56",
    "0",
    "активен",
    "petrov",
    "s3cret-pass",
    "100.64.0.10",
    "GPON-ONT ZTE",
    "ZTEG12345678",
]


def xlsx(rows, headers=HEADERS, *, merge=None, formula=None) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Абоненты"
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    if merge:
        sheet.merge_cells(merge)
    if formula:
        sheet[formula] = "=1+1"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_bytes(rows, headers=HEADERS, *, delimiter=";", encoding="utf-8") -> bytes:
    lines = [delimiter.join(headers)] + [delimiter.join(row) for row in rows]
    return ("\n".join(lines) + "\n").encode(encoding)


@pytest.fixture
def plan100(make_plan):
    return make_plan("inet100", "650.00", name="Интернет-100", download_kbps=100_000, upload_kbps=100_000)


@pytest.fixture
def configured(admin, branch, plan100):
    """``configured(content, name)``: a subscribers job for the file, mapped and with the cut-over set."""

    def make(content: bytes, name: str = "export.xlsx", **settings):
        job = actions.do_create_import_job(
            entity=Entity.SUBSCRIBERS, file_name=name, content=content, source="mikbill", acting_user=admin
        )
        return actions.do_configure_job(
            job,
            mapping=settings.pop("mapping", MAPPING),
            cutover_date=settings.pop("cutover_date", CUTOVER),
            default_branch=branch,
            acting_user=admin,
            **settings,
        )

    return make
