"""The finance pages of the console (receivables ageing, billing runs, the ledger's verification) and the business
reports with their summary tables (reads of billing, payments, subscribers and dunning; nothing imports this app)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "abonent.reports"
    label = "reports"
    verbose_name = _("Reports")

    def ready(self):
        from . import business, movement_reports, tasks  # noqa: F401
