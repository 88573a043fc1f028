"""The subscriber card's "Documents" panel (``document.view``): the subscriber's latest documents with their PDFs,
and the names of the documents' audit actions in the card's history."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from abonent.staff.permissions import Perm
from abonent.subscribers.history import register_action_labels
from abonent.subscribers.panels import Panel, register_panel

from . import selectors

RECENT = 10


def documents_context(request, subscriber, **_ignored) -> dict:
    return {"documents": selectors.documents_of(subscriber.pk, limit=RECENT)}


PANEL = register_panel(
    Panel("documents", _("Documents"), "documents/panels/documents.html", 14, documents_context, Perm.DOCUMENT_VIEW)
)

register_action_labels(
    {"document.issued": _("Document issued"), "document.run_started": _("Documents: month-end run started")},
    fields={"kind": _("kind"), "number": _("number"), "total": _("total"), "corrects": _("corrects")},
)
