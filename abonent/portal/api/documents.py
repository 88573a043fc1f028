"""The token's subscriber's documents in the portal's API: the list and each PDF. Another subscriber's document id
is a 404."""

from __future__ import annotations

from ninja import Schema

from abonent.api.errors import ErrorOut
from abonent.documents.api import DocumentOut, document_data, pdf_of
from abonent.documents.selectors import own_document, own_documents

from . import router


class MyDocumentListOut(Schema):
    items: list[DocumentOut]


@router.get("/documents", response={200: MyDocumentListOut, 401: ErrorOut}, summary="My documents")
def my_documents(request):
    return {"items": [document_data(d) for d in own_documents(request.subscriber)]}


@router.get(
    "/documents/{document_id}/pdf",
    response={200: None, 401: ErrorOut, 404: ErrorOut},
    summary="My document's PDF",
    openapi_extra={"responses": {200: {"content": {"application/pdf": {}}}}},
)
def my_document_pdf(request, document_id: int):
    return pdf_of(own_document(request.subscriber, document_id))
