from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "abonent.api"
    label = "api"
    verbose_name = _("REST API")

    def ready(self) -> None:
        from . import tasks  # noqa: F401
