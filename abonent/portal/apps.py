from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    name = "abonent.portal"
    label = "portal"
    verbose_name = _("Subscriber portal")

    def ready(self) -> None:
        from . import panels, seeding, tasks  # noqa: F401
