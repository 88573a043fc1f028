"""The finance pages of the console: receivables ageing, billing runs, the ledger's verification (reads of billing,
subscribers and dunning; nothing imports this app)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "abonent.reports"
    label = "reports"
    verbose_name = _("Reports")
