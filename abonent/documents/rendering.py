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
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

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


logger = logging.getLogger(__name__)
# A statement's PDF is laid out inside the portal request (~9 ms a line): past this many lines the period is
# refused with ``statement_too_long``, asking for a shorter one, so one click cannot hold a worker for seconds.
MAX_STATEMENT_LINES = 500


class FileUnavailable(Exception):
    """A stored PDF is gone from disk and rendering the snapshot again does not give the same bytes."""


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


CORRECTION_TEMPLATE = "documents/pdf/vat_invoice_correction.html"


def _figures(amount: Decimal, vat: Decimal | None) -> dict:
    return {
        "amount": _money(amount),
        "net": _money(amount - (vat or 0)),
        "vat": _money(vat) if vat is not None else content.NO_VAT,
    }


def _adjustment_context(document: Document) -> dict:
    """The КСФ's lines (Приложение № 2 to Постановление 1137): per service the values before (А, the corrected
    document's) and after (Б), and the increase (В) or decrease (Г); and the totals of В and Г."""
    zero = Decimal("0.00")
    before = {line["service"]: line for line in document.corrects.lines}
    after = {line["service"]: line for line in document.lines}
    rows, up, down = [], [zero, zero], [zero, zero]

    def side(line):
        if line is None:
            return {"quantity": "0", **_figures(zero, zero), "vat_label": "—"}
        vat = Decimal(line["vat_amount"]) if line["vat_amount"] is not None else None
        return {"quantity": line["quantity"], **_figures(Decimal(line["amount"]), vat), "vat_label": line["vat_label"]}

    for service in [*before, *[s for s in after if s not in before]]:
        old, new = before.get(service), after.get(service)
        amount = Decimal((new or {}).get("amount") or 0) - Decimal((old or {}).get("amount") or 0)
        vat = Decimal((new or {}).get("vat_amount") or 0) - Decimal((old or {}).get("vat_amount") or 0)
        blank = {"amount": "—", "net": "—", "vat": "—"}
        increase = _figures(amount, vat) if amount > 0 else blank
        decrease = _figures(-amount, -vat) if amount < 0 else blank
        if amount > 0:
            up = [up[0] + amount, up[1] + vat]
        elif amount < 0:
            down = [down[0] - amount, down[1] - vat]
        shown = new or old
        rows.append({"service": service, "okei": shown["okei"], "unit": shown["unit"], "before": side(old),
                     "after": side(new), "increase": increase, "decrease": decrease})  # fmt: skip
    return {
        "adjustment_lines": rows,
        "increase_total": _figures(up[0], up[1]),
        "decrease_total": _figures(down[0], down[1]),
    }


def is_adjustment(document: Document) -> bool:
    """A correction of amounts (корректировочный), as opposed to one of requisites only (исправленный)."""
    return bool(document.corrects_id) and document.extra.get("correction_kind", "adjustment") == "adjustment"


def template_of(document: Document) -> str:
    if document.kind == DocumentKind.VAT_INVOICE and is_adjustment(document):
        return CORRECTION_TEMPLATE
    return TEMPLATES[document.kind]


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
        root, depth = document.corrects, 1
        while root.corrects_id:
            root, depth = root.corrects, depth + 1
        corrected = {
            "number": str(document.extra.get("corrects_number")),
            "date": _day(document.extra.get("corrects_date")),
            "root_number": str(root.number),
            "root_date": root.date.strftime("%d.%m.%Y"),
            "fix_number": str(depth),
        }
    extra_context = _adjustment_context(document) if template_of(document) == CORRECTION_TEMPLATE else {}
    return {
        **extra_context,
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
        return render_to_string(template_of(document), context_of(document))


def render_pdf(document: Document) -> bytes:
    return html_to_pdf(render_html(document))


def statement_pdf(subscriber, statement, *, seller: dict | None = None) -> bytes:
    """A statement of account as PDF, from a statement the caller computed (``opening``, ``lines`` with date,
    kind label, description, amount and balance after, ``closing``): the portal's own statement, so the PDF
    and the page never disagree. Not numbered and not stored: it is a view of the ledger on a given day.
    More than ``MAX_STATEMENT_LINES`` lines: a ``ValidationError`` on ``date_from`` (``statement_too_long``)."""
    if len(statement.lines) > MAX_STATEMENT_LINES:
        message = _("The period has more than %(limit)d operations: choose a shorter period for the PDF.") % {
            "limit": MAX_STATEMENT_LINES
        }
        raise ValidationError({"date_from": ValidationError(message, code="statement_too_long")})
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
    """The document's PDF, rendered and stored on first need. Two renderers at once (the worker and a first
    download) both render, but only the one whose row is inserted writes the file, before its row commits: the
    other waits on the row's key, gets the winner's row and never touches the file."""
    existing = DocumentFile.objects.filter(document=document).first()
    if existing is not None:
        return existing
    data = render_pdf(document)
    relative = file_name(document)
    path = storage_dir() / relative
    make_private_directory(path.parent)
    try:
        with transaction.atomic():
            stored = DocumentFile.objects.create(
                document=document,
                path=relative,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                created_at=clock.now(),
            )
            write_private_file(path, data)
            return stored
    except IntegrityError:
        return DocumentFile.objects.get(document=document)


def _restore(document: Document, stored: DocumentFile, path: Path) -> bytes:
    """A stored PDF lost on disk (a restore without the files, a disk): render the snapshot again and put it
    back if it gives the very bytes recorded; otherwise ``FileUnavailable`` (the row is immutable, so the file
    must come from a backup)."""
    data = render_pdf(document)
    if hashlib.sha256(data).hexdigest() != stored.sha256:
        logger.error("document %s: %s is missing and a new render differs from its sha256", document.pk, stored.path)
        raise FileUnavailable(stored.path)
    make_private_directory(path.parent)
    write_private_file(path, data)
    logger.warning("document %s: %s was missing; rendered again from the snapshot", document.pk, stored.path)
    return data


def read_file(document: Document) -> bytes:
    """The stored PDF's bytes, checked against its sha256 (a file changed on disk is an error, not served)."""
    stored = stored_file(document)
    path = (storage_dir() / stored.path).resolve()
    if storage_dir().resolve() not in path.parents:
        raise SuspiciousFileOperation(stored.path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = _restore(document, stored, path)
    if hashlib.sha256(data).hexdigest() != stored.sha256:
        raise SuspiciousFileOperation(f"{stored.path}: the file does not match its sha256")
    return data


def download_name(document: Document) -> str:
    return f"{document.kind}-{document.year}-{document.number}.pdf"
