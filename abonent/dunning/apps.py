from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DunningConfig(AppConfig):
    name = "abonent.dunning"
    label = "dunning"
    verbose_name = _("Dunning")

    def ready(self) -> None:
        from . import events, panels, seeding, tasks  # noqa: F401

        events.install_probe()
