"""What the console's and the portal's views share about files: the response that serves one, and the status of a
form refused for one."""

from __future__ import annotations

from django.http import FileResponse, Http404

from . import attachments
from .models import TicketAttachment


def file_response(row: TicketAttachment) -> FileResponse:
    """The stored file with the type its content was sniffed as; images and PDF shown, text downloaded. The sandbox
    keeps a file opened in a tab from running anything under the site's origin."""
    try:
        handle = open(attachments.path_of(row.stored_name), "rb")  # noqa: SIM115 - FileResponse closes it
    except (FileNotFoundError, ValueError):
        raise Http404 from None
    response = FileResponse(
        handle,
        content_type=row.content_type,
        as_attachment=row.content_type not in attachments.INLINE,
        filename=row.file_name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    response["Cache-Control"] = "private, no-store"
    return response


def refusal_status(form) -> int:
    """413 when the refusal is a file over the size limit (a client may tell it from other errors), else 422."""
    too_large = any(
        getattr(e, "code", "") == "attachment_too_large" for e in form.errors.as_data().get("attachment", [])
    )
    return 413 if too_large else 422
