from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HelpdeskConfig(AppConfig):
    name = "abonent.helpdesk"
    label = "helpdesk"
    verbose_name = _("Helpdesk")

    def ready(self) -> None:
        from . import panels, seeding, tasks  # noqa: F401
