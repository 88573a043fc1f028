"""Files sent with a ticket's messages: checked (size, type by the first bytes), stored in a private directory and
opened again for the authorised views. Never under MEDIA or STATIC: no URL reaches a file without the checks.

Settings: ``ABONENT_HELPDESK_ATTACHMENT_MAX_BYTES`` (10 MB by default), ``ABONENT_HELPDESK_ATTACHMENTS_DIR``
(``$ABONENT_VAR_DIR/attachments``). Allowed: PNG, JPEG, GIF, WebP, PDF and plain UTF-8 text (.txt, .log, .csv). The
type is what the content says; the name's extension must agree with it, so a PE file renamed .png or an HTML page
named .pdf is refused. SVG is not taken (it carries scripts).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_FILES = 5
NAME_MAX_LENGTH = 200  # TicketAttachment.file_name
SNIFF_BYTES = 8192
CHUNK = 64 * 1024

# content type -> the extensions a file of that content may be named with
ALLOWED = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
    "text/plain": (".txt", ".log", ".csv"),
}
# Shown in the browser (an image, a PDF); text is downloaded, so no browser guesses it into HTML.
INLINE = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
_TEXT_CONTROLS_OK = frozenset("\t\n\r\f")


def max_bytes() -> int:
    return max(1, int(getattr(settings, "ABONENT_HELPDESK_ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES)))


def directory() -> Path:
    configured = getattr(settings, "ABONENT_HELPDESK_ATTACHMENTS_DIR", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "attachments"


def sniff(head: bytes) -> str | None:
    """The content type the first bytes of a file say, among the allowed ones; None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head and _is_text(head):
        return "text/plain"
    return None


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sniffed bytes may end inside a multi-byte character: only a cut at the very end is forgiven.
        if exc.start < len(head) - 3 or len(head) < SNIFF_BYTES:
            return False
        text = head[: exc.start].decode("utf-8")
    return not any((ch < " " and ch not in _TEXT_CONTROLS_OK) or ch == "\x7f" for ch in text)


@dataclass
class Upload:
    """A file as received: its name and a binary file object (Django's UploadedFile is one)."""

    name: str
    file: object
    size: int | None = None


@dataclass(frozen=True)
class CheckedUpload:
    name: str
    content_type: str
    size_bytes: int
    upload: Upload
    sha256: str = ""


def _error(message: str, code: str) -> ValidationError:
    return ValidationError({"attachment": ValidationError(message, code=code)})


def _clean_name(name: str) -> str:
    base = os.path.basename(str(name or "").replace("\\", "/")).strip()
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>|:*?')
    return base[-NAME_MAX_LENGTH:] or "file"


def _measure(upload: Upload, limit: int) -> tuple[bytes, int, str]:
    """The first bytes, the size and the SHA-256, reading at most ``limit + 1`` bytes (a client's Content-Length or
    the upload's ``size`` is not trusted alone). The digest tells a resent message from a new one with another file."""
    handle = upload.file
    handle.seek(0)
    head = handle.read(SNIFF_BYTES)
    digest = hashlib.sha256(head)
    size = len(head)
    while size <= limit:
        chunk = handle.read(CHUNK)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
    handle.seek(0)
    return head, size, digest.hexdigest()


def check(uploads: list[Upload]) -> list[CheckedUpload]:
    """Every upload checked before anything is stored; one ValidationError on the ``attachment`` field
    (``attachment_too_large``, ``attachment_type``, ``attachment_empty``, ``too_many_attachments``)."""
    if len(uploads) > MAX_FILES:
        raise _error(
            _("At most %(count)s files can be attached to one message.") % {"count": MAX_FILES}, "too_many_attachments"
        )
    limit = max_bytes()
    checked = []
    for upload in uploads:
        name = _clean_name(upload.name)
        if upload.size is not None and upload.size > limit:
            raise _too_large(name, limit)
        head, size, sha256 = _measure(upload, limit)
        if size > limit:
            raise _too_large(name, limit)
        if size == 0:
            raise _error(_("The file %(name)s is empty.") % {"name": name}, "attachment_empty")
        content_type = sniff(head)
        extension = os.path.splitext(name)[1].lower()
        if content_type is None or extension not in ALLOWED[content_type]:
            raise _error(
                _("%(name)s: only images (PNG, JPEG, GIF, WebP), PDF and text files (.txt, .log, .csv) are taken.")
                % {"name": name},
                "attachment_type",
            )
        checked.append(
            CheckedUpload(name=name, content_type=content_type, size_bytes=size, upload=upload, sha256=sha256)
        )
    return checked


def _too_large(name: str, limit: int) -> ValidationError:
    return _error(
        _("%(name)s is larger than %(limit)s MB, the most a file may be.")
        % {"name": name, "limit": f"{limit / 1024 / 1024:g}"},
        "attachment_too_large",
    )


def store(checked: CheckedUpload) -> tuple[str, str]:
    """Write the file under a fresh random name (``<2 hex>/<uuid>``); returns the stored name and its SHA-256. Written
    to a temporary name and renamed, so a crash leaves no half file under a name a row could point at."""
    stored_name = f"{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}"
    path = directory() / stored_name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    temporary = path.with_suffix(".part")
    handle = checked.upload.file
    handle.seek(0)
    try:
        with open(temporary, "wb") as out:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        os.replace(temporary, path)
    except BaseException:
        # A full disk or a torn read: no half-written ``.part`` left behind either.
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return stored_name, digest.hexdigest()


def remove(stored_name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory() / stored_name).unlink()


def path_of(stored_name: str) -> Path:
    """The file of a stored name; the name is ours (two hex path parts), never a user's, but is checked anyway."""
    path = (directory() / stored_name).resolve()
    if directory().resolve() not in path.parents:
        raise ValueError("stored name outside the attachments directory")
    return path
