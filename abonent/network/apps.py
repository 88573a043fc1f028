from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NetworkConfig(AppConfig):
    name = "abonent.network"
    label = "network"
    verbose_name = _("Network")

    def ready(self) -> None:
        from . import events, metrics, panels, seeding, tasks  # noqa: F401
