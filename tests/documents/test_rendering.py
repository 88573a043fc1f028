"""The PDFs: an act rendered, rasterised with pdftoppm and read back with pdftotext (numbers, the VAT line, the
amount in words); the file stored once with its sha256; the other kinds render."""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from abonent.documents import actions, rendering
from abonent.documents.models import DocumentFile

from .conftest import NOVEMBER

pytestmark = pytest.mark.django_db
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _text(pdf: bytes, tmp_path: Path, *, layout: bool = True) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    mode = ["-layout"] if layout else []
    out = subprocess.run(["pdftotext", *mode, str(path), "-"], capture_output=True, check=True, timeout=60)
    return " ".join(out.stdout.decode().split())


def _issued(org, subscribe, admin):
    subscribe(org)
    return {d.kind: d for d in actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin).created}


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils not installed")
def test_act_pdf_says_the_number_the_vat_and_the_amount_in_words(org, subscribe, admin, december, tmp_path):
    act = _issued(org, subscribe, admin)["act"]

    pdf = rendering.render_pdf(act)

    assert pdf.startswith(b"%PDF")
    text = _text(pdf, tmp_path)
    assert "Акт № 1 от 30.11.2026" in text
    assert "Интернет за ноябрь 2026 г." in text
    assert "ООО «Ромашка», ИНН 7736207543, КПП 773601001" in text
    assert "В том числе НДС (22%): 117,21" in text
    assert "Итого: 650,00" in text
    assert "Шестьсот пятьдесят рублей 00 копеек" in text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (tmp_path / "act.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", str(tmp_path / "act.pdf"),
         str(SCREENSHOTS / "document-act")],
        check=True, timeout=60,
    )  # fmt: skip
    assert (SCREENSHOTS / "document-act.png").stat().st_size > 10_000


def test_vat_invoice_invoice_and_upd_render(org, subscribe, admin, december, tmp_path):
    docs = _issued(org, subscribe, admin)
    upd = actions.do_issue_month_documents(
        org.__class__.objects.get(pk=org.pk), NOVEMBER, acting_user=admin, closing="upd"
    )
    assert upd.created == []  # the month is closed by the act already: no УПД on top of it

    sf = _text(rendering.render_pdf(docs["vat_invoice"]), tmp_path)
    invoice = _text(rendering.render_pdf(docs["invoice"]), tmp_path)

    assert "Счёт-фактура № 1 от 30.11.2026" in sf
    assert "ИНН/КПП покупателя: 7736207543/773601001" in sf
    assert "22% 117,21 650,00" in sf
    assert "Счёт на оплату № 1 от 01.12.2026" in invoice
    assert "044525225" in invoice and "40702810900000000001" in invoice


def test_upd_pdf_shows_its_status(make_org, subscribe, admin, december, tmp_path):
    org = make_org()
    subscribe(org)
    upd = next(d for d in actions.do_issue_month_documents(org, NOVEMBER, acting_user=admin, closing="upd").created
               if d.kind == "upd")  # fmt: skip

    text = _text(rendering.render_pdf(upd), tmp_path, layout=False)

    assert "Универсальный передаточный документ" in text
    assert "Статус: 1" in text
    assert "Шестьсот пятьдесят рублей 00 копеек" in text


def test_the_pdf_is_stored_once_privately_with_its_sha256(org, subscribe, admin, december, settings):
    act = _issued(org, subscribe, admin)["act"]

    stored = rendering.stored_file(act)
    again = rendering.stored_file(act)

    assert again.pk == stored.pk and DocumentFile.objects.count() == 1
    path = Path(settings.ABONENT_DOCUMENTS_DIR) / stored.path
    assert path.stat().st_mode & 0o077 == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == stored.sha256
    assert rendering.read_file(act) == path.read_bytes()


def test_a_pdf_changed_on_disk_is_not_served(org, subscribe, admin, december, settings):
    from django.core.exceptions import SuspiciousFileOperation

    act = _issued(org, subscribe, admin)["act"]
    stored = rendering.stored_file(act)
    (Path(settings.ABONENT_DOCUMENTS_DIR) / stored.path).write_bytes(b"%PDF-forged")

    with pytest.raises(SuspiciousFileOperation):
        rendering.read_file(act)


def test_a_four_digit_number_is_printed_whole(org, subscribe, admin, december, tmp_path):
    from abonent.core import sequences

    sequences.ensure_at_least("documents:act:2026", 1941)
    act = _issued(org, subscribe, admin)["act"]

    text = _text(rendering.render_pdf(act), tmp_path)

    assert act.number == 1942
    assert "Акт № 1942 от 30.11.2026" in text  # not «1 942»: the locale's grouping is not for numbers of documents
