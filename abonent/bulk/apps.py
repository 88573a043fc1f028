"""Work on many subscribers at once from the subscriber list: the CSV/XLSX export and the bulk actions (move to a
group, send a message, change the plan at the period's end), each previewed, confirmed once and audited."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BulkConfig(AppConfig):
    name = "abonent.bulk"
    label = "bulk"
    verbose_name = _("Bulk actions")

    def ready(self) -> None:
        from . import audiences, tasks  # noqa: F401
