from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IncidentsConfig(AppConfig):
    name = "abonent.helpdesk.incidents"
    label = "incidents"
    verbose_name = _("Mass incidents")

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from . import audiences, handlers, panels, tasks  # noqa: F401
        from .affected import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="incidents_sqlite_functions")
