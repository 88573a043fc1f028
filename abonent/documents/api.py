"""Documents through the API (``document.view``): the list (keyset pages, newest first), one document with its
lines, and its PDF. Another branch's document is a 404, like a missing one."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.http import HttpResponse
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from abonent.api.errors import ApiError, ErrorOut
from abonent.api.idempotency import idempotent
from abonent.core.deadlines import is_deadline
from abonent.staff.permissions import Perm, check_perm
from abonent.subscribers.selectors import visible_subscribers

from . import actions, rendering, selectors
from .forms import parse_month
from .models import Document, DocumentKind

router = Router(tags=["Documents"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 410: ErrorOut, 422: ErrorOut,
          503: ErrorOut}  # fmt: skip


class DocumentLineOut(Schema):
    service: str
    quantity: int
    unit: str
    price: Decimal
    amount: Decimal
    vat_rate: int | None = Field(description="VAT percent; null: without VAT")
    vat_amount: Decimal | None


class DocumentOut(Schema):
    id: int
    kind: str = Field(description=", ".join(DocumentKind.values))
    number: int | None
    year: int | None
    date: dt.date
    subscriber_id: int
    account_number: str
    period_start: dt.date
    period_end: dt.date = Field(description="Exclusive")
    status: str
    total: Decimal
    vat_total: Decimal | None = Field(description="null: without VAT")
    corrects_id: int | None


class DocumentDetailOut(DocumentOut):
    lines: list[DocumentLineOut]
    seller: dict
    buyer: dict


class DocumentListOut(Schema):
    items: list[DocumentOut]
    next_before: int | None = Field(description="Pass as `before` for the next page; null on the last")


class DocumentFilterIn(Schema):
    kind: DocumentKind | None = None
    month: str | None = Field(
        None, description="YYYY-MM: documents whose period starts in it", pattern=r"^\d{4}-\d{2}$"
    )
    subscriber_id: int | None = None
    before: int | None = Field(None, ge=1)
    limit: int = Field(50, ge=1, le=200)


def document_data(document: Document) -> dict:
    return {
        "id": document.pk,
        "kind": document.kind,
        "number": document.number,
        "year": document.year,
        "date": document.date,
        "subscriber_id": document.subscriber_id,
        "account_number": document.subscriber.account_number,
        "period_start": document.period_start,
        "period_end": document.period_end,
        "status": document.status,
        "total": document.total,
        "vat_total": document.vat_total,
        "corrects_id": document.corrects_id,
    }


def document_detail(document: Document) -> dict:
    return {**document_data(document), "lines": document.lines, "seller": document.seller, "buyer": document.buyer}


def pdf_of(document: Document) -> HttpResponse:
    try:
        data = rendering.read_file(document)
    except rendering.FileUnavailable:
        message = _("The document's PDF file is unavailable. Ask the administrator to restore it from a backup.")
        raise ApiError(410, "file_unavailable", message) from None
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{rendering.download_name(document)}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _month(value: str) -> dt.date:
    try:
        return parse_month(value)
    except ValidationError as exc:  # 2026-13 matches the pattern but is no month
        raise ValidationError({"month": exc}) from None


class IssueIn(Schema):
    subscriber_id: int
    month: str = Field(description="YYYY-MM: a month that has ended", pattern=r"^\d{4}-\d{2}$")
    closing: str | None = Field(None, description="act (act + VAT invoice) or upd; default: the setting")


class IssuedOut(Schema):
    created: list[DocumentOut]
    existing: list[DocumentOut] = Field(description="The month's documents issued before (nothing is issued twice)")


@router.post("/documents/issue", response={200: IssuedOut, **ERRORS}, summary="Issue an organisation's month")
@idempotent(200, access=lambda request, **_kw: check_perm(request.user, Perm.DOCUMENT_MANAGE))
def issue_month(request, payload: IssueIn):
    """The act and VAT invoice (or УПД) of a closed month and the next month's invoice; documents of the month
    issued already come back in ``existing``."""
    check_perm(request.user, Perm.DOCUMENT_MANAGE)
    month = _month(payload.month)
    subscriber = visible_subscribers(request.user).filter(pk=payload.subscriber_id).first()
    if subscriber is None:
        message = _("No such subscriber.")
        raise ValidationError({"subscriber_id": ValidationError(message, code="unknown_subscriber")})
    try:
        issued = actions.do_issue_month_documents(subscriber, month, acting_user=request.user, closing=payload.closing)
    except OperationalError as exc:
        if not is_deadline(exc):
            raise
        message = _("Documents are being issued for this subscriber or series: try again in a minute.")
        raise ApiError(503, "busy", message) from exc
    except ValidationError as exc:
        # The action names the subscriber ``subscriber``; this endpoint's field is ``subscriber_id``.
        if hasattr(exc, "error_dict") and "subscriber" in exc.error_dict:
            exc.error_dict["subscriber_id"] = exc.error_dict.pop("subscriber")
        raise
    return {
        "created": [document_data(d) for d in issued.created],
        "existing": [document_data(d) for d in issued.existing],
    }


@router.get("/documents", response={200: DocumentListOut, **ERRORS}, summary="List documents")
def list_documents(request, filters: Query[DocumentFilterIn]):
    check_perm(request.user, Perm.DOCUMENT_VIEW)
    month = _month(filters.month) if filters.month else None
    rows, next_before = selectors.list_documents(
        request.user,
        selectors.DocumentFilters(
            kind=filters.kind or "", month=month, subscriber_id=filters.subscriber_id, before_id=filters.before
        ),
        limit=filters.limit,
    )
    return {"items": [document_data(d) for d in rows], "next_before": next_before}


@router.get("/documents/{document_id}", response={200: DocumentDetailOut, **ERRORS}, summary="One document")
def get_document(request, document_id: int):
    check_perm(request.user, Perm.DOCUMENT_VIEW)
    return document_detail(selectors.get_document(request.user, document_id))


@router.get(
    "/documents/{document_id}/pdf",
    response={200: None, **ERRORS},
    summary="A document's PDF",
    openapi_extra={"responses": {200: {"content": {"application/pdf": {}}}}},
)
def get_document_pdf(request, document_id: int):
    check_perm(request.user, Perm.DOCUMENT_VIEW)
    return pdf_of(selectors.get_document(request.user, document_id))
