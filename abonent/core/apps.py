from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "abonent.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        # Periodic jobs register themselves when their tasks module is imported.
        from . import tasks  # noqa: F401
