"""Invoices, acts, VAT invoices (or УПД) and statements of account: numbered, rendered to PDF, never changed."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DocumentsConfig(AppConfig):
    name = "abonent.documents"
    label = "documents"
    verbose_name = _("Documents")

    def ready(self) -> None:
        from . import panels, tasks  # noqa: F401
