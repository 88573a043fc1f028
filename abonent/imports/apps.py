"""Migration from the old billing (docs/imports.md): CSV/XLSX files exported by Mikbill, ABillS and the like, mapped
to our fields, cleaned, checked for duplicates, dry-run with a reconciliation report, then imported idempotently by
the old system's ids. It sits on top: it writes the domain apps' tables only through their bulk import actions."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImportsConfig(AppConfig):
    name = "abonent.imports"
    label = "imports"
    verbose_name = _("Migration from the old billing")

    def ready(self) -> None:
        from . import panels, tasks  # noqa: F401
