from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidentsConfig(AppConfig):
    name = "abonent.helpdesk.incidents"
    label = "incidents"
    verbose_name = _("Mass incidents")

    def ready(self) -> None:
        from . import audiences, handlers, panels  # noqa: F401
