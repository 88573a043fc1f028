"""Bank statements through the API: upload a 1CClientBankExchange file and get what its lines became.

No Idempotency-Key: the file's SHA-256 is the key (the same file again answers 200 with the first import), and
each document's key keeps an overlapping statement from taking a payment in twice."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Status

from abonent.api.errors import ErrorOut
from abonent.staff.permissions import Perm, check_perm

from .. import actions
from ..actions.statements import read_upload
from ..models import BankStatement
from . import router
from .schemas import StatementOut

UPLOAD_PATH = "/payments/statements"


def statement_data(statement: BankStatement, *, created: bool) -> dict:
    return {
        **{name: getattr(statement, name) for name in StatementOut.model_fields if name not in ("id", "created")},
        "id": statement.pk,
        "created": created,
    }


def _file(request) -> tuple[bytes, str]:
    """The file: the ``file`` part of a multipart form, or the raw body (``?filename=`` names it)."""
    if request.content_type == "multipart/form-data":
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ValidationError(_("Attach the statement file as “file”."), code="required")})
        return read_upload(upload), upload.name or ""
    return request.body, request.GET.get("filename", "")[:255]


@router.post(
    UPLOAD_PATH,
    response={
        200: StatementOut,
        201: StatementOut,
        400: ErrorOut,
        413: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        422: ErrorOut,
    },
    summary="Import a bank statement (1CClientBankExchange): 201 imported, 200 this file was imported before",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
                "text/plain": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "parameters": [
            {
                "in": "query",
                "name": "filename",
                "required": False,
                "schema": {"type": "string", "maxLength": 255},
                "description": "The file's name, for a raw body",
            }
        ],
    },
)
def import_statement(request):
    check_perm(request.user, Perm.PAYMENT_IMPORT)
    content, filename = _file(request)
    result = actions.do_import_statement(content, filename=filename, acting_user=request.user)
    return Status(201 if result.created else 200, statement_data(result.statement, created=result.created))
