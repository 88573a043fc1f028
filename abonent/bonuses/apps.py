from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BonusesConfig(AppConfig):
    name = "abonent.bonuses"
    label = "bonuses"
    verbose_name = _("Bonuses")

    def ready(self) -> None:
        from . import events, panels, tasks  # noqa: F401
