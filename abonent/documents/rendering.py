"""Documents to PDF: a Django template per kind (``documents/pdf/<kind>.html``, A4, the Russian forms) turned into
PDF by WeasyPrint, and the file stored once under ``ABONENT_DOCUMENTS_DIR`` with its sha256.

Fast and offline: one ``FontConfiguration`` for the process (font lookup is the slow part of a first render), the
stylesheet parsed once, and a URL fetcher that refuses every URL, so a template can never make a network call.
The text is in Russian whatever the user's language: these are the forms the tax office reads.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation

from abonent.core import clock
from abonent.core.files import make_private_directory, write_private_file

from . import content
from .models import Document, DocumentFile, DocumentKind

TEMPLATES = {
    DocumentKind.INVOICE: "documents/pdf/invoice.html",
    DocumentKind.ACT: "documents/pdf/act.html",
    DocumentKind.VAT_INVOICE: "documents/pdf/vat_invoice.html",
    DocumentKind.UPD: "documents/pdf/upd.html",
    DocumentKind.STATEMENT: "documents/pdf/statement.html",
}
TITLES = {
    DocumentKind.INVOICE: "Счёт на оплату",
    DocumentKind.ACT: "Акт оказанных услуг",
    DocumentKind.VAT_INVOICE: "Счёт-фактура",
    DocumentKind.UPD: "Универсальный передаточный документ",
    DocumentKind.STATEMENT: "Выписка по лицевому счёту",
}


# WeasyPrint logs every step of every document at INFO: seven lines a PDF would bury a month-end run's own log.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


def _no_network(url: str, *args, **kwargs):
    raise ValueError(f"documents are rendered offline: {url} refused")


@functools.cache
def _weasy():
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    css = CSS(string=render_to_string("documents/pdf/style.css"), font_config=fonts)
    return HTML, css, fonts


def html_to_pdf(html: str) -> bytes:
    HTML, css, fonts = _weasy()
    return HTML(string=html, url_fetcher=_no_network).write_pdf(stylesheets=[css], font_config=fonts)


def _money(value) -> str:
    """1 234,56: a space between thousands, a comma before kopecks (the Russian forms' way)."""
    text = f"{Decimal(value):,.2f}"
    return text.replace(",", " ").replace(".", ",")


def _day(iso: str | None) -> str:
    return dt.date.fromisoformat(iso).strftime("%d.%m.%Y") if iso else ""


def context_of(document: Document) -> dict:
    lines = [
        {
            **line,
            "n": i,
            "price_text": _money(line["price"]),
            "amount_text": _money(line["amount"]),
            "net_text": _money(line["amount_net"]),
            "vat_text": _money(line["vat_amount"]) if line["vat_amount"] is not None else content.NO_VAT,
        }
        for i, line in enumerate(document.lines, start=1)
    ]
    corrected = None
    if document.corrects_id:
        corrected = {
            "number": str(document.extra.get("corrects_number")),
            "date": _day(document.extra.get("corrects_date")),
        }
    return {
        "doc": document,
        # Strings, not numbers: the Russian locale would print No. 1942 as «1 942».
        "number": str(document.number),
        "title": TITLES[document.kind],
        "seller": document.seller,
        "buyer": document.buyer,
        "lines": lines,
        "total_text": _money(document.total),
        "net_total_text": _money(document.total - (document.vat_total or 0)),
        "vat_total_text": _money(document.vat_total) if document.vat_total is not None else content.NO_VAT,
        "in_words": content.amount_in_words(document.total),
        "period": content.month_name_ru(document.period_start),
        "corrected": corrected,
        "upd_status": document.extra.get("upd_status"),
        "count": len(lines),
    }


def render_html(document: Document) -> str:
    with translation.override("ru"):
        return render_to_string(TEMPLATES[document.kind], context_of(document))


def render_pdf(document: Document) -> bytes:
    return html_to_pdf(render_html(document))


def statement_pdf(subscriber, statement, *, seller: dict | None = None) -> bytes:
    """A statement of account as PDF, from a statement the caller computed (``opening``, ``lines`` with date,
    kind label, description, amount and balance after, ``closing``): the portal's own statement, so the PDF
    and the page never disagree. Not numbered and not stored: it is a view of the ledger on a given day."""
    lines = [
        {
            "date": line.date,
            "what": line.kind_label,
            "description": line.description,
            "amount_text": _money(line.amount),
            "balance_text": _money(line.balance_after),
        }
        for line in statement.lines
    ]
    context = {
        "title": TITLES[DocumentKind.STATEMENT],
        "seller": seller or content.seller_block(),
        "buyer": {"name": subscriber.display_name, "account_number": subscriber.account_number},
        "start": statement.start,
        "end": statement.end,
        "opening_text": _money(statement.opening),
        "credits_text": _money(statement.credits),
        "debits_text": _money(statement.debits),
        "closing_text": _money(statement.closing),
        "lines": lines,
        "issued_on": clock.today(),
    }
    with translation.override("ru"):
        html = render_to_string(TEMPLATES[DocumentKind.STATEMENT], context)
    return html_to_pdf(html)


# --- Storage -----------------------------------------------------------------------------------------------------


def storage_dir() -> Path:
    return Path(settings.ABONENT_DOCUMENTS_DIR)


def file_name(document: Document) -> str:
    return f"{document.year}/{document.series}/{document.kind}-{document.year}-{document.number:06d}-{document.pk}.pdf"


def stored_file(document: Document) -> DocumentFile:
    """The document's PDF, rendered and stored on first need. Two workers rendering at once both write the same
    bytes to the same name; the first row inserted wins and the other is discarded."""
    existing = DocumentFile.objects.filter(document=document).first()
    if existing is not None:
        return existing
    data = render_pdf(document)
    relative = file_name(document)
    path = storage_dir() / relative
    make_private_directory(path.parent)
    write_private_file(path, data)
    try:
        with transaction.atomic():
            return DocumentFile.objects.create(
                document=document,
                path=relative,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                created_at=clock.now(),
            )
    except IntegrityError:
        return DocumentFile.objects.get(document=document)


def read_file(document: Document) -> bytes:
    """The stored PDF's bytes, checked against its sha256 (a file changed on disk is an error, not served)."""
    stored = stored_file(document)
    path = (storage_dir() / stored.path).resolve()
    if storage_dir().resolve() not in path.parents:
        raise SuspiciousFileOperation(stored.path)
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != stored.sha256:
        raise SuspiciousFileOperation(f"{stored.path}: the file does not match its sha256")
    return data


def download_name(document: Document) -> str:
    return f"{document.kind}-{document.year}-{document.number}.pdf"
